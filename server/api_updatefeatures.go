package server

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.UpdateFeatures, 0, 1, (*Server).handleUpdateFeatures) }

// handleUpdateFeatures refuses every update. Skiff has no KRaft feature
// levels: ApiVersions reports no supported and no finalized features, which
// is honest, because finalizing e.g. transaction.version=2 or
// metadata.version would tell clients to use protocol behaviour whose
// presence they infer from it. With nothing supported, every requested
// level is invalid, as Kafka answers for an unknown feature.
func (s *Server) handleUpdateFeatures(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.UpdateFeaturesRequest)
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	for _, u := range req.FeatureUpdates {
		res := kmsg.NewUpdateFeaturesResponseResult()
		res.Feature = u.Feature
		res.ErrorCode = kerr.InvalidUpdateVersion.Code
		res.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Invalid update version %d for feature %s. The broker does not support this feature.", u.MaxVersionLevel, u.Feature))
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
