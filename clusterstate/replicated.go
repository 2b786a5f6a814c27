package clusterstate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrStalePartitionEpoch is returned by AlterPartition when the partition
// changed since the caller read it (Kafka's INVALID_UPDATE_VERSION): the
// caller reads the new assignment and decides again.
var ErrStalePartitionEpoch = errors.New("clusterstate: partition epoch is stale")

// AlterPartition replaces a partition's ISR, as a leader does when a
// follower falls behind or catches up (Kafka's AlterPartition): only if
// the partition epoch is still epoch (else ErrStalePartitionEpoch), with
// the partition epoch bumped, saved with a revision-guarded Save
// (ErrConflict if another broker saved meanwhile; its image arrives
// through Watch and the caller tries again). It returns the published
// assignment.
func (s *State) AlterPartition(topic string, index int32, isr []int32, epoch int32) (Assignment, error) {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	cur := s.topics.Load()
	old, ok := cur.byName[topic]
	if !ok || index < 0 || int(index) >= len(old.Partitions) {
		return Assignment{}, ErrUnknownTopic
	}
	p := old.Partitions[index]
	if p.PartitionEpoch != epoch {
		return p.Assignment, fmt.Errorf("%w: %s-%d is at %d, not %d", ErrStalePartitionEpoch, topic, index, p.PartitionEpoch, epoch)
	}
	q := *p
	q.ISR = slices.Clone(isr)
	q.PartitionEpoch++
	t := *old
	t.Partitions = slices.Clone(old.Partitions)
	t.Partitions[index] = &q
	next := maps.Clone(cur.byName)
	next[topic] = &t
	ts := newTopicSet(next)
	if err := s.saveLocked(ts, s.quotas.Load()); err != nil {
		return p.Assignment, err
	}
	s.topics.Store(ts)
	s.log.Info().Str("topic", topic).Int32("partition", index).Ints32("isr", isr).
		Int32("partition_epoch", q.PartitionEpoch).Msg("ISR changed")
	return q.Assignment, nil
}
