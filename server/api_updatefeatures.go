package server

import (
	"errors"

	"github.com/skiffmq/skiff/clusterstate"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// UpdateFeatures v0-v2, as Kafka 4.1 advertises it: upgrades and
// downgrades the finalized feature levels (clusterstate/features.go),
// validated as Kafka's controller validates them. A refused request
// changes nothing and answers with a top-level error; v2 drops the
// per-feature results.
func init() { register(kmsg.UpdateFeatures, 0, 2, (*Server).handleUpdateFeatures) }

func (s *Server) handleUpdateFeatures(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.UpdateFeaturesRequest)
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	updates := make([]clusterstate.FeatureUpdate, 0, len(req.FeatureUpdates))
	for _, u := range req.FeatureUpdates {
		typ := u.UpgradeType
		if req.Version == 0 {
			// v0 has allow_downgrade instead of the upgrade type, and
			// Kafka 4.1 reads the upgrade type's default (upgrade) for it:
			// a v0 downgrade is refused however allow_downgrade is set.
			typ = clusterstate.UpgradeTypeUpgrade
		}
		updates = append(updates, clusterstate.FeatureUpdate{Name: u.Feature, Level: u.MaxVersionLevel, UpgradeType: typ})
	}
	if err := s.meta.UpdateFeatures(updates, req.ValidateOnly); err != nil {
		code := kerr.InvalidUpdateVersion
		var refused *clusterstate.FeatureUpdateError
		if !errors.As(err, &refused) {
			s.log.Error().Err(err).Msg("update features")
			code = kerr.KafkaStorageError
		}
		resp.ErrorCode, resp.ErrorMessage = code.Code, kmsg.StringPtr(err.Error())
		return resp, nil
	}
	if req.Version >= 2 {
		return resp, nil
	}
	// Kafka fills each result from ApiError.NONE, whose message is the
	// error's name.
	seen := map[string]bool{}
	for _, u := range req.FeatureUpdates {
		if seen[u.Feature] {
			continue
		}
		seen[u.Feature] = true
		res := kmsg.NewUpdateFeaturesResponseResult()
		res.Feature, res.ErrorMessage = u.Feature, kmsg.StringPtr("NONE")
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
