package server

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.UpdateFeatures, 0, 2, (*Server).handleUpdateFeatures) }

// handleUpdateFeatures refuses every update. Skiff has no KRaft feature
// levels: ApiVersions reports no supported and no finalized features, which
// is honest, because finalizing e.g. transaction.version=2 or
// metadata.version would tell clients to use protocol behaviour whose
// presence they infer from it. With nothing supported, every requested
// level is invalid, as Kafka answers for an unknown feature. Kafka's
// controller applies a request's updates all or nothing: one bad update
// fails the request with a top-level error and no per-feature results.
func (s *Server) handleUpdateFeatures(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.UpdateFeaturesRequest)
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	if len(req.FeatureUpdates) == 0 {
		return resp, nil
	}
	u := req.FeatureUpdates[0]
	resp.ErrorCode = kerr.InvalidUpdateVersion.Code
	resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("The update failed for all features since the following feature had an error: Invalid update version %d for feature %s. The broker does not support this feature.", u.MaxVersionLevel, u.Feature))
	return resp, nil
}
