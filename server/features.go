package server

import (
	"fmt"
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Feature levels (KIP-584). Kafka's controller finalizes a level for each
// feature; clients read the finalized levels from ApiVersions (v3+) and
// switch protocol behaviour on them, e.g. a transactional producer uses
// KIP-890 part 2 (EndTxn v5, Produce v12 without AddPartitionsToTxn) only
// when transaction.version >= 2 is finalized. So Skiff lists only the
// features whose behaviour it implements, at the levels it implements:
//
//   - metadata.version 27 (Kafka 4.1's 4.1-IV1), the level of the API table
//     Skiff advertises. Only that level: Skiff has no older behaviour to
//     downgrade to, so a downgrade is refused as out of range.
//   - transaction.version 0-2, finalized 2: v2 is KIP-890 part 2 (epoch bump
//     at every transaction end, partitions added implicitly by Produce v12
//     and TxnOffsetCommit v5). Levels 0 and 1 make clients fall back to the
//     v1 protocol, which Skiff also serves.
//   - group.version 0-1, finalized 1: v1 is the KIP-848 consumer protocol.
//
// Not listed: kraft.version (Skiff has no KRaft quorum),
// eligible.leader.replicas.version (no ELR) and share.version (no share
// groups yet).

// featureSpec is one feature Skiff supports.
type featureSpec struct {
	name     string
	min, max int16 // the supported range
	initial  int16 // the level a new cluster finalizes
}

// supportedFeatures in the order ApiVersions lists them.
var supportedFeatures = []featureSpec{
	{name: "group.version", min: 0, max: 1, initial: 1},
	{name: "metadata.version", min: 27, max: 27, initial: 27},
	{name: "transaction.version", min: 0, max: 2, initial: 2},
}

func featureSpecFor(name string) (featureSpec, bool) {
	for _, f := range supportedFeatures {
		if f.name == name {
			return f, true
		}
	}
	return featureSpec{}, false
}

// metaFeatures is the finalized feature state as meta.json keeps it.
type metaFeatures struct {
	// Levels holds every supported feature's level, 0 included, so a
	// downgrade to 0 survives a restart.
	Levels map[string]int16 `json:"levels"`
	// Epoch grows with every change (Kafka's FinalizedFeaturesEpoch, which
	// there is the metadata log offset of the change).
	Epoch int64 `json:"epoch"`
}

// initialFeatures is what a new cluster, or one whose meta.json predates
// feature levels, finalizes.
func initialFeatures() metaFeatures {
	mf := metaFeatures{Levels: map[string]int16{}, Epoch: 1}
	for _, f := range supportedFeatures {
		mf.Levels[f.name] = f.initial
	}
	return mf
}

// loadFeaturesLocked installs the persisted levels, filling in features a
// meta.json written by an older Skiff does not name.
func (c *cluster) loadFeaturesLocked(persisted *metaFeatures) {
	c.mu.features = initialFeatures()
	if persisted == nil {
		return
	}
	c.mu.features.Epoch = max(persisted.Epoch, 1)
	for name, level := range persisted.Levels {
		if f, ok := featureSpecFor(name); ok && level >= f.min && level <= f.max {
			c.mu.features.Levels[name] = level
		}
	}
}

// featureLevel returns the finalized level of a feature (0 if none).
func (c *cluster) featureLevel(name string) int16 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.mu.features.Levels[name]
}

// finalizedFeatures returns a copy of the finalized levels and their epoch.
func (c *cluster) finalizedFeatures() (map[string]int16, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return maps.Clone(c.mu.features.Levels), c.mu.features.Epoch
}

// fillFeatures adds the supported and finalized features to an ApiVersions
// v3+ response. As Kafka, a feature finalized at level 0 is not listed as
// finalized.
func (s *Server) fillFeatures(resp *kmsg.ApiVersionsResponse) {
	levels, epoch := s.meta.finalizedFeatures()
	for _, f := range supportedFeatures {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = f.name, f.min, f.max
		resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		if l := levels[f.name]; l > 0 {
			ff := kmsg.NewApiVersionsResponseFinalizedFeature()
			ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = f.name, l, l
			resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
		}
	}
	resp.FinalizedFeaturesEpoch = epoch
}

// Upgrade types of UpdateFeatures v1+ (Kafka's FeatureUpdate.UpgradeType):
// 1 upgrade only, 2 safe downgrade, 3 unsafe downgrade.
const (
	upgradeTypeUpgrade         int8 = 1
	upgradeTypeUnsafeDowngrade int8 = 3
)

// featureUpdate is one requested change.
type featureUpdate struct {
	name        string
	level       int16
	upgradeType int8
}

// validateFeatureUpdateLocked checks one update against the current levels
// as Kafka's controller does (FeatureControlManager.updateFeature), in the
// same order, and returns the reason it is refused, or "".
func (c *cluster) validateFeatureUpdateLocked(u featureUpdate, nodeID int32) string {
	if u.upgradeType < upgradeTypeUpgrade || u.upgradeType > upgradeTypeUnsafeDowngrade {
		return "The controller does not support the given upgrade type."
	}
	if u.level < 0 {
		return "A feature version cannot be less than 0."
	}
	f, ok := featureSpecFor(u.name)
	if !ok {
		return fmt.Sprintf("Local controller %d does not support this feature.", nodeID)
	}
	if u.level < f.min || u.level > f.max {
		return fmt.Sprintf("Local controller %d only supports versions %d-%d", nodeID, f.min, f.max)
	}
	if u.level < c.mu.features.Levels[u.name] && u.upgradeType == upgradeTypeUpgrade {
		return "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."
	}
	// Kafka's safe/unsafe distinction only matters for metadata.version,
	// which Skiff supports at one level; the other features lose nothing
	// when downgraded.
	return ""
}

// updateFeatures validates updates all together and, unless validateOnly,
// applies and persists them, as one change with one new epoch. On refusal
// it returns Kafka's top-level message.
func (c *cluster) updateFeatures(updates []featureUpdate, validateOnly bool, nodeID int32) (*kerr.Error, string, error) {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	for _, u := range updates {
		if reason := c.validateFeatureUpdateLocked(u, nodeID); reason != "" {
			c.mu.Unlock()
			return kerr.InvalidUpdateVersion, fmt.Sprintf("The update failed for all features since the following feature had an error: Invalid update version %d for feature %s. %s",
				u.level, u.name, reason), nil
		}
	}
	old := c.mu.features
	next := metaFeatures{Levels: maps.Clone(old.Levels), Epoch: old.Epoch}
	for _, u := range updates {
		next.Levels[u.name] = u.level
	}
	if validateOnly || maps.Equal(next.Levels, old.Levels) {
		c.mu.Unlock()
		return nil, "", nil
	}
	next.Epoch++
	c.mu.features = next
	c.mu.Unlock()
	if err := c.saveMeta(); err != nil {
		c.mu.Lock()
		c.mu.features = old
		c.mu.Unlock()
		return nil, "", err
	}
	return nil, "", nil
}
