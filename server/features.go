package server

import (
	"github.com/skiffmq/skiff/clusterstate"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Feature levels (KIP-584) are held by clusterstate (features.go there
// says which features Skiff supports and why); the server reports them in
// ApiVersions, changes them through UpdateFeatures and switches behaviour
// on them (group.version gates the KIP-848 consumer protocol).

// featureLevel returns the finalized level of a feature (0 if none).
func (c *cluster) featureLevel(name string) int16 { return c.FeatureLevel(name) }

// fillFeatures adds the supported and finalized features to an ApiVersions
// v3+ response. As Kafka, a feature finalized at level 0 is not listed as
// finalized.
func (s *Server) fillFeatures(resp *kmsg.ApiVersionsResponse) {
	levels, epoch := s.meta.Features()
	for _, f := range clusterstate.SupportedFeatures {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = f.Name, f.Min, f.Max
		resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		if l := levels[f.Name]; l > 0 {
			ff := kmsg.NewApiVersionsResponseFinalizedFeature()
			ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = f.Name, l, l
			resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
		}
	}
	resp.FinalizedFeaturesEpoch = epoch
}
