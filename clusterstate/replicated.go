package clusterstate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrStalePartitionEpoch is returned by AlterPartition when the partition
// changed since the caller read it (Kafka's INVALID_UPDATE_VERSION): the
// caller reads the new assignment and decides again.
var ErrStalePartitionEpoch = errors.New("clusterstate: partition epoch is stale")

// startWatch follows the images other brokers save. The goroutine is owned
// by the State: Close stops it.
// Callers hold changeMu (from is the revision the State is at).
func (s *State) startWatchLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWatch, s.watchDone = cancel, make(chan struct{})
	from := s.rev
	updates := s.opts.Backend.Watch(ctx, from)
	go func() {
		defer close(s.watchDone)
		if updates == nil {
			return
		}
		for u := range updates {
			if s.applyUpdate(u) && s.opts.OnChange != nil {
				s.opts.OnChange()
			}
		}
	}()
}

// Close stops following other brokers' changes. The logs belong to the
// store, which closes them.
func (s *State) Close() {
	if s.stopWatch != nil {
		s.stopWatch()
		<-s.watchDone
	}
}

// applyUpdate publishes an image another broker saved: topics created or
// deleted elsewhere (their logs opened or deleted here), config overrides,
// partition counts and assignments, quotas and group configs. Images at
// or below the revision this State saved or applied last are its own or
// older, and ignored. It reports whether anything was applied.
func (s *State) applyUpdate(u Update) bool {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	if u.Revision <= s.rev {
		return false
	}
	s.rev = u.Revision
	cur := s.topics.Load()
	next := make(map[string]*Topic, len(u.Image.Topics))
	for _, it := range u.Image.Topics {
		id, err := ParseTopicID(it.ID)
		if err != nil {
			s.log.Error().Err(err).Str("topic", it.Name).Msg("clusterstate: ignoring a topic with a bad id from the cluster metadata")
			continue
		}
		old, ok := cur.byName[it.Name]
		if ok && old.ID != id {
			s.dropLogs(old.Partitions) // deleted and created again elsewhere
			ok = false
		}
		t := s.newTopic(it.Name, id, maps.Clone(it.Configs))
		var kept []*Partition
		if ok {
			t.Stats = old.Stats
			kept = slices.Clone(old.Partitions[:min(len(old.Partitions), int(it.Partitions))])
			if !maps.Equal(old.Overrides, t.Overrides) {
				for _, p := range kept {
					p.Log.SetConfig(t.Config.Storage)
				}
			}
		}
		for i, p := range kept {
			q := *p
			if i < len(it.Assignments) {
				q.Assignment = it.Assignments[i]
			}
			q.Stats = t.Stats
			kept[i] = &q
		}
		added, err := s.openPartitions(t, int32(len(kept)), it.Partitions, it.Assignments)
		if err != nil {
			s.log.Error().Err(err).Str("topic", it.Name).Msg("clusterstate: opening partitions created elsewhere")
		}
		t.Partitions = append(slices.Clip(kept), added...)
		next[t.Name] = t
	}
	var gone []*Topic
	for name, t := range cur.byName {
		if nt, ok := next[name]; !ok || nt.ID != t.ID {
			if !ok {
				gone = append(gone, t)
			}
		}
	}
	quotas := make(map[string]*Quota, len(u.Image.Quotas))
	for i := range u.Image.Quotas {
		q := u.Image.Quotas[i]
		quotas[QuotaEntityKey(q.Entity)] = &q
	}
	s.topics.Store(newTopicSet(next))
	s.quotas.Store(newQuotaSet(quotas))
	s.savedGroupCfgs = u.Image.GroupConfigs
	gc := s.savedGroupCfgs
	s.groupCfgs.Store(&gc)
	if u.Image.Features != nil {
		s.features.Store(loadFeatures(u.Image.Features))
	}
	for _, t := range gone {
		s.dropLogs(t.Partitions)
		s.log.Info().Str("topic", t.Name).Msg("topic deleted by another broker")
	}
	return true
}

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
