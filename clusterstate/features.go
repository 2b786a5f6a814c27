package clusterstate

import (
	"fmt"
	"maps"
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
//   - share.version 0-1, finalized 1 as Kafka 4.2 does (share groups are
//     production-ready there and on by default): v1 enables share groups
//     (KIP-932); at 0 their APIs answer UNSUPPORTED_VERSION, as Kafka's
//     KafkaApis does when share groups are not enabled.
//   - streams.version 0-1, finalized 1 as Kafka 4.2 does (KIP-1071 streams
//     groups are production-ready there): v1 enables streams groups; at 0
//     StreamsGroupHeartbeat and StreamsGroupDescribe answer
//     UNSUPPORTED_VERSION.
//
// Not listed: kraft.version (Skiff has no KRaft quorum) and
// eligible.leader.replicas.version (no ELR).

// FeatureSpec is one feature Skiff supports.
type FeatureSpec struct {
	Name     string
	Min, Max int16 // the supported range
	Initial  int16 // the level a new cluster finalizes
}

// SupportedFeatures in the order ApiVersions lists them. Do not modify.
var SupportedFeatures = []FeatureSpec{
	{Name: "group.version", Min: 0, Max: 1, Initial: 1},
	{Name: "metadata.version", Min: 27, Max: 27, Initial: 27},
	{Name: "share.version", Min: 0, Max: 1, Initial: 1},
	{Name: "streams.version", Min: 0, Max: 1, Initial: 1},
	{Name: "transaction.version", Min: 0, Max: 2, Initial: 2},
}

func featureSpecFor(name string) (FeatureSpec, bool) {
	for _, f := range SupportedFeatures {
		if f.Name == name {
			return f, true
		}
	}
	return FeatureSpec{}, false
}

// Features is the finalized feature state, as published and as the Image
// stores it. A published Features is never modified.
type Features struct {
	// Levels holds every supported feature's level, 0 included, so a
	// downgrade to 0 survives a restart.
	Levels map[string]int16 `json:"levels"`
	// Epoch grows with every change (Kafka's FinalizedFeaturesEpoch, which
	// there is the metadata log offset of the change).
	Epoch int64 `json:"epoch"`
}

// initialFeatures is what a new cluster, or one whose meta.json predates
// feature levels, finalizes.
func initialFeatures() *Features {
	f := &Features{Levels: make(map[string]int16, len(SupportedFeatures)), Epoch: 1}
	for _, sp := range SupportedFeatures {
		f.Levels[sp.Name] = sp.Initial
	}
	return f
}

// loadFeatures returns the stored levels, filling in features that an
// image written by an older Skiff does not name and ignoring levels this
// Skiff does not support.
func loadFeatures(stored *Features) *Features {
	f := initialFeatures()
	if stored == nil {
		return f
	}
	f.Epoch = max(stored.Epoch, 1)
	for name, level := range stored.Levels {
		if sp, ok := featureSpecFor(name); ok && level >= sp.Min && level <= sp.Max {
			f.Levels[name] = level
		}
	}
	return f
}

// FeatureLevel returns the finalized level of a feature (0 if none). It
// takes no lock.
func (s *State) FeatureLevel(name string) int16 { return s.features.Load().Levels[name] }

// Features returns the finalized levels and their epoch. The map is
// shared: do not modify it.
func (s *State) Features() (map[string]int16, int64) {
	f := s.features.Load()
	return f.Levels, f.Epoch
}

// Upgrade types of UpdateFeatures v1+ (Kafka's FeatureUpdate.UpgradeType).
const (
	UpgradeTypeUpgrade         int8 = 1
	UpgradeTypeSafeDowngrade   int8 = 2
	UpgradeTypeUnsafeDowngrade int8 = 3
)

// FeatureUpdate is one requested change of a finalized level.
type FeatureUpdate struct {
	Name        string
	Level       int16
	UpgradeType int8
}

// FeatureUpdateError is a refused UpdateFeatures: nothing was changed.
// Its message is the top-level one Kafka's controller answers with.
type FeatureUpdateError struct{ Msg string }

func (e *FeatureUpdateError) Error() string { return e.Msg }

// validateFeatureUpdate checks one update against the current levels as
// Kafka's controller does (FeatureControlManager.updateFeature), in the
// same order, and returns the reason it is refused, or "".
func (s *State) validateFeatureUpdate(cur *Features, u FeatureUpdate) string {
	if u.UpgradeType < UpgradeTypeUpgrade || u.UpgradeType > UpgradeTypeUnsafeDowngrade {
		return "The controller does not support the given upgrade type."
	}
	if u.Level < 0 {
		return "A feature version cannot be less than 0."
	}
	sp, ok := featureSpecFor(u.Name)
	if !ok {
		return fmt.Sprintf("Local controller %d does not support this feature.", s.opts.NodeID)
	}
	if u.Level < sp.Min || u.Level > sp.Max {
		return fmt.Sprintf("Local controller %d only supports versions %d-%d", s.opts.NodeID, sp.Min, sp.Max)
	}
	if u.Level < cur.Levels[u.Name] && u.UpgradeType == UpgradeTypeUpgrade {
		return "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."
	}
	// Kafka's safe/unsafe distinction only matters for metadata.version,
	// which Skiff supports at one level; the other features lose nothing
	// when downgraded.
	return ""
}

// UpdateFeatures validates updates all together and, unless validateOnly,
// applies them as one change with one new epoch: saved through the
// Backend holding only changeMu, then published. A refused request
// returns a *FeatureUpdateError and changes nothing; a failed save
// changes nothing either. Updates that change no level save nothing and
// keep the epoch, as Kafka writes no record for them.
func (s *State) UpdateFeatures(updates []FeatureUpdate, validateOnly bool) error {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	cur := s.features.Load()
	for _, u := range updates {
		if reason := s.validateFeatureUpdate(cur, u); reason != "" {
			return &FeatureUpdateError{Msg: fmt.Sprintf(
				"The update failed for all features since the following feature had an error: Invalid update version %d for feature %s. %s",
				u.Level, u.Name, reason)}
		}
	}
	next := &Features{Levels: maps.Clone(cur.Levels), Epoch: cur.Epoch}
	for _, u := range updates {
		next.Levels[u.Name] = u.Level
	}
	if validateOnly || maps.Equal(next.Levels, cur.Levels) {
		return nil
	}
	next.Epoch++
	if err := s.saveAllLocked(s.topics.Load(), s.quotas.Load(), next); err != nil {
		return err
	}
	s.features.Store(next)
	return nil
}
