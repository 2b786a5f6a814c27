package clusterstate

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/skiffmq/skiff/acl"
)

// startWatch applies the images that Backend.Watch delivers (other
// brokers' changes, and the stored form of this broker's own) until
// Close. A backend with a single writer delivers nothing and no goroutine
// is started.
func (s *State) startWatch() {
	ctx, cancel := context.WithCancel(context.Background())
	s.changeMu.Lock()
	from := s.rev
	s.changeMu.Unlock()
	ch := s.opts.Backend.Watch(ctx, from)
	if ch == nil {
		cancel()
		return
	}
	s.stopWatch = cancel
	s.watchDone = make(chan struct{})
	go func() {
		defer close(s.watchDone)
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-ch:
				if !ok {
					return
				}
				s.changeMu.Lock()
				applied := s.applyLocked(u.Image, u.Revision)
				s.changeMu.Unlock()
				if applied && s.opts.OnChange != nil {
					s.opts.OnChange()
				}
			}
		}
	}()
}

// Close stops applying other brokers' changes. It does not close the
// logs, which belong to the storage.Store.
func (s *State) Close() {
	if s.stopWatch != nil {
		s.stopWatch()
		<-s.watchDone
	}
}

// Revision is the stored revision this broker's snapshot reflects.
func (s *State) Revision() Revision {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	return s.rev
}

// applyLocked makes img, stored at rev, the published snapshot: topics
// created elsewhere get their logs opened, deleted ones lose theirs, and
// changed assignments and configs are republished (the logs carry over).
//
// An image older than the snapshot is skipped: the snapshot then holds
// this broker's own save, based on everything it had applied, and the
// backend delivers the stored state at that save's revision (which also
// holds whatever the skipped image added) right after. Callers hold
// changeMu. It reports whether img was published.
//
// Partitions whose assignment changed are published as new values: a
// published *Partition is never written, since request paths and
// replication read it without a lock.
func (s *State) applyLocked(img Image, rev Revision) bool {
	if rev < s.rev {
		return false
	}
	cur := s.topics.Load()
	next := make(map[string]*Topic, len(img.Topics))
	var gone [][]*Partition
	var reconfigured []*Topic
	for _, it := range img.Topics {
		id, err := ParseTopicID(it.ID)
		if err != nil {
			s.log.Error().Err(err).Str("topic", it.Name).Msg("ignoring a stored topic with a bad id")
			continue
		}
		old, ok := cur.byName[it.Name]
		if ok && old.ID != id {
			// Deleted and created again elsewhere: the directories
			// have the same names, so the old logs go first.
			s.dropLogs(old.Partitions)
			ok = false
		}
		if !ok {
			t := s.newTopic(it.Name, id, maps.Clone(it.Configs))
			ps, err := s.openPartitions(t, 0, it.Partitions, it.Assignments)
			if err != nil {
				s.log.Error().Err(err).Str("topic", it.Name).Msg("opening the logs of a topic created on another broker")
				s.dropLogs(ps)
				continue
			}
			t.Partitions = ps
			next[t.Name] = t
			continue
		}
		t := old
		configChanged := !maps.Equal(old.Overrides, it.Configs) && !(len(old.Overrides) == 0 && len(it.Configs) == 0)
		if configChanged {
			t = s.newTopic(it.Name, id, maps.Clone(it.Configs))
			t.Stats = old.Stats
			reconfigured = append(reconfigured, t)
		} else {
			cp := *old
			t = &cp
		}
		parts := make([]*Partition, 0, it.Partitions)
		for i := int32(0); i < it.Partitions && int(i) < len(old.Partitions); i++ {
			op := old.Partitions[i]
			a := op.Assignment
			if int(i) < len(it.Assignments) {
				a = it.Assignments[i]
			}
			if a.Equal(op.Assignment) {
				parts = append(parts, op)
				continue
			}
			np := *op
			np.Assignment = a
			parts = append(parts, &np)
		}
		if n := int32(len(old.Partitions)); it.Partitions > n {
			var assigns []Assignment
			if int(n) < len(it.Assignments) {
				assigns = it.Assignments[n:]
			}
			ps, err := s.openPartitions(t, n, it.Partitions, assigns)
			if err != nil {
				s.log.Error().Err(err).Str("topic", it.Name).Msg("opening partitions added on another broker")
				s.dropLogs(ps)
			} else {
				parts = append(parts, ps...)
			}
		}
		t.Partitions = parts
		next[t.Name] = t
	}
	for name, t := range cur.byName {
		if _, ok := next[name]; !ok {
			gone = append(gone, t.Partitions)
		}
	}
	quotas := make(map[string]*Quota, len(img.Quotas))
	for i := range img.Quotas {
		q := img.Quotas[i]
		quotas[QuotaEntityKey(q.Entity)] = &q
	}
	s.topics.Store(newTopicSet(next))
	s.quotas.Store(newQuotaSet(quotas))
	s.savedGroupCfgs = img.GroupConfigs
	gc := img.GroupConfigs
	s.groupCfgs.Store(&gc)
	if img.Features != nil {
		s.features.Store(loadFeatures(img.Features))
	}
	s.savedACLs = acl.NewSet(img.ACLs)
	s.acls.Store(s.savedACLs)
	s.rev = rev
	for _, ps := range gone {
		s.dropLogs(ps)
	}
	for _, t := range reconfigured {
		for _, p := range t.Partitions {
			p.Log.SetConfig(t.Config.Storage)
		}
		if t.Config.CleanupDelete {
			s.enforceRetentionOf(t.Partitions, time.Now())
		}
	}
	return true
}

// UpdateAssignments replaces the assignments of some partitions of the
// topic name, if it still has the id the caller decided on, and saves
// them guarded on the revision they were based on: a concurrent change
// of the topic makes the save fail with ErrConflict and nothing is
// published. The controller's leader elections go through it.
func (s *State) UpdateAssignments(name string, id TopicID, changes map[int32]Assignment) error {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	cur := s.topics.Load()
	old, ok := cur.byName[name]
	if !ok || old.ID != id {
		return ErrUnknownTopic
	}
	t := *old
	t.Partitions = make([]*Partition, len(old.Partitions))
	copy(t.Partitions, old.Partitions)
	for i, a := range changes {
		if i < 0 || int(i) >= len(t.Partitions) {
			return fmt.Errorf("clusterstate: %s has no partition %d", name, i)
		}
		np := *t.Partitions[i]
		np.Assignment = a
		t.Partitions[i] = &np
	}
	next := maps.Clone(cur.byName)
	next[name] = &t
	ts := newTopicSet(next)
	if err := s.saveLocked(ts, s.quotas.Load()); err != nil {
		return err
	}
	s.topics.Store(ts)
	return nil
}
