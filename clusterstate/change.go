package clusterstate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// NewTopic is one topic to create, already validated.
type NewTopic struct {
	Name       string
	Partitions int32
	Configs    map[string]string
	// ReplicationFactor is the replicas of each partition in a cluster;
	// 0 is default.replication.factor. A single node ignores it.
	ReplicationFactor int16
	// Replicas, if set, are the replicas of each partition as the
	// request gave them (CreateTopics' manual assignment), validated by
	// the caller; the Placer is not asked then.
	Replicas [][]int32
}

// CreateResult is the outcome of creating one NewTopic.
type CreateResult struct {
	Topic *Topic // the published topic, when Err is nil
	Err   error  // ErrTopicExists, ErrTopicCollision or a storage error
}

// CreateTopics creates topics together: their names are reserved under
// changeMu, their logs opened and the metadata saved once for all of them,
// and then they are published. A request creating thousands of topics thus
// costs one metadata write. Results are in specs' order.
//
// In a cluster another broker may change the metadata first: the save
// then conflicts (ErrConflict), and the topics of that save are tried
// again once this broker has applied the newer metadata, so that a topic
// someone else created meanwhile is ErrTopicExists, as Kafka's controller
// answers the second of two concurrent creations.
func (s *State) CreateTopics(specs []NewTopic) []CreateResult {
	res := s.createTopicsOnce(specs)
	for attempt := 0; attempt < conflictRetries; attempt++ {
		var again []int
		for i, r := range res {
			if errors.Is(r.Err, ErrConflict) {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			break
		}
		s.awaitNewerThan(s.Revision())
		retry := make([]NewTopic, len(again))
		for j, i := range again {
			retry[j] = specs[i]
		}
		for j, r := range s.createTopicsOnce(retry) {
			res[again[j]] = r
		}
	}
	return res
}

// conflictRetries bounds how often a conflicting change is tried again.
const conflictRetries = 5

// awaitNewerThan waits, briefly, until the watch has applied metadata
// newer than rev. Without a watch (one node) nothing else writes and it
// returns at once.
func (s *State) awaitNewerThan(rev Revision) {
	if s.stopWatch == nil {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.Revision() <= rev && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *State) createTopicsOnce(specs []NewTopic) []CreateResult {
	res := make([]CreateResult, len(specs))
	s.changeMu.Lock()
	defer s.changeMu.Unlock()

	// Reserve. Only changeMu holders publish, so what is checked here
	// still holds when the topics are published.
	cur := s.topics.Load()
	var created []*Topic
	var idx []int                                   // index in specs of each created topic
	reserved := make(map[string]string, len(specs)) // collision key -> name
	for i, sp := range specs {
		if _, ok := cur.byName[sp.Name]; ok {
			res[i].Err = ErrTopicExists
			continue
		}
		key := collisionKey(sp.Name)
		if other, ok := reserved[key]; ok {
			if other == sp.Name {
				res[i].Err = ErrTopicExists
			} else {
				res[i].Err = fmt.Errorf("%w: %q collides with topic %q", ErrTopicCollision, sp.Name, other)
			}
			continue
		}
		if other, ok := cur.byKey[key]; ok {
			res[i].Err = fmt.Errorf("%w: %q collides with existing topic %q", ErrTopicCollision, sp.Name, other)
			continue
		}
		reserved[key] = sp.Name
		created = append(created, s.newTopic(sp.Name, s.newTopicIDLocked(cur, created), sp.Configs))
		idx = append(idx, i)
	}
	if len(created) == 0 {
		return res
	}

	// Open the logs; the topics are not visible yet.
	var kept []*Topic
	var keptIdx []int
	for j, t := range created {
		sp := specs[idx[j]]
		assigns, err := s.placeLocked(t.Name, 0, sp.Partitions, sp.ReplicationFactor, sp.Replicas)
		if err != nil {
			res[idx[j]].Err = err
			continue
		}
		ps, err := s.openPartitions(t, 0, sp.Partitions, assigns)
		if err != nil {
			s.dropLogs(ps)
			res[idx[j]].Err = err
			continue
		}
		t.Partitions = ps
		kept = append(kept, t)
		keptIdx = append(keptIdx, idx[j])
	}
	if len(kept) == 0 {
		return res
	}

	// Save once for the whole request, then publish.
	next := maps.Clone(cur.byName)
	for _, t := range kept {
		next[t.Name] = t
	}
	ts := newTopicSet(next)
	if err := s.saveLocked(ts, s.quotas.Load()); err != nil {
		for j, t := range kept {
			s.dropLogs(t.Partitions)
			res[keptIdx[j]].Err = err
		}
		return res
	}
	s.topics.Store(ts)
	for j, t := range kept {
		res[keptIdx[j]].Topic = t
	}
	if len(kept) == 1 {
		s.log.Info().Str("topic", kept[0].Name).Int("partitions", len(kept[0].Partitions)).Msg("topic created")
	} else {
		s.log.Info().Int("topics", len(kept)).Msg("topics created")
	}
	return res
}

// newTopicIDLocked returns a fresh topic id that neither a published topic
// nor one being created uses. Callers hold changeMu.
func (s *State) newTopicIDLocked(cur *topicSet, creating []*Topic) TopicID {
	for {
		var id TopicID
		for id == (TopicID{}) {
			randRead(id[:])
		}
		taken := false
		if _, ok := cur.byID[id]; ok {
			taken = true
		}
		for _, t := range creating {
			taken = taken || t.ID == id
		}
		if !taken {
			return id
		}
	}
}

// placeLocked returns the assignments of count new partitions of a topic,
// as given (manual) or from the Placer: every replica in the ISR, the first one leading. It
// returns nil on a single node (openPartitions then places locally).
// Callers hold changeMu.
func (s *State) placeLocked(topic string, from, count int32, rf int16, manual [][]int32) ([]Assignment, error) {
	if s.opts.Placer == nil {
		return nil, nil
	}
	replicas := manual
	if len(replicas) == 0 {
		var err error
		if replicas, err = s.opts.Placer.Place(topic, from, count, rf); err != nil {
			return nil, err
		}
	}
	out := make([]Assignment, len(replicas))
	for i, r := range replicas {
		out[i] = Assignment{Replicas: r, ISR: slices.Clone(r), Leader: r[0]}
	}
	return out, nil
}

// openPartitions opens (creating if needed) the logs of partitions
// [from, to) of t, with assigns[i-from] as partition i's assignment (this
// node alone where assigns has none). On error it returns the logs it did
// open, for the caller to drop. It takes no lock: t is not published, or
// its new partitions are reserved by the caller holding changeMu.
//
// In a cluster every broker opens a log for every partition, replica or
// not: the request paths may then rely on Partition.Log, and a broker
// that is not the leader answers NOT_LEADER_OR_FOLLOWER before touching
// it.
func (s *State) openPartitions(t *Topic, from, to int32, assigns []Assignment) ([]*Partition, error) {
	ps := make([]*Partition, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		l, err := s.opts.Logs.OpenLog(t.Name+"-"+strconv.Itoa(int(i)), t.Config.Storage)
		if err != nil {
			return ps, fmt.Errorf("clusterstate: opening %s-%d: %w", t.Name, i, err)
		}
		a := s.localAssignment()
		if j := int(i - from); j < len(assigns) {
			a = assigns[j]
		}
		// A leader places its epoch at its log end when elected (KIP-101),
		// so that OffsetForLeaderEpoch answers for it before any append.
		if a.Leader == s.opts.NodeID {
			l.AssignEpoch(a.LeaderEpoch)
		}
		ps = append(ps, &Partition{Topic: t.Name, Index: i, Assignment: a, Log: l, Stats: t.Stats})
	}
	return ps, nil
}

// localAssignment places a partition on this broker alone.
func (s *State) localAssignment() Assignment {
	return Assignment{Replicas: []int32{s.opts.NodeID}, ISR: []int32{s.opts.NodeID}, Leader: s.opts.NodeID}
}

func (s *State) dropLogs(ps []*Partition) {
	for _, p := range ps {
		if err := p.Log.Delete(); err != nil {
			s.log.Error().Err(err).Str("topic", p.Topic).Int32("partition", p.Index).Msg("deleting partition log")
		}
	}
}

// DeleteTopic removes a topic: first from the stored metadata, then its
// logs, so that a crash in between leaves only stray directories that the
// next Open removes.
func (s *State) DeleteTopic(name string) error {
	return s.DeleteTopics([]string{name})[0]
}

// DeleteTopics removes topics with one metadata save for all of them (a
// test harness resetting the broker, or a DeleteTopics request naming
// many). The error of each name is ErrUnknownTopic, the save's error, or
// nil; results are in names' order.
func (s *State) DeleteTopics(names []string) []error {
	errs := make([]error, len(names))
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	cur := s.topics.Load()
	next := maps.Clone(cur.byName)
	var gone []*Topic
	for i, name := range names {
		t, ok := next[name]
		if !ok {
			errs[i] = ErrUnknownTopic
			continue
		}
		delete(next, name)
		gone = append(gone, t)
	}
	if len(gone) == 0 {
		return errs
	}
	ts := newTopicSet(next)
	if err := s.saveLocked(ts, s.quotas.Load()); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	s.topics.Store(ts)
	for _, t := range gone {
		s.dropLogs(t.Partitions)
		s.log.Info().Str("topic", t.Name).Msg("topic deleted")
	}
	return errs
}

// SetTopicConfigs replaces a topic's overrides (already validated), saves
// them and applies them to every partition log. When retention may have
// tightened it is enforced right away rather than at the next
// log.retention.check.interval.ms.
func (s *State) SetTopicConfigs(name string, overrides map[string]string) error {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	cur := s.topics.Load()
	old, ok := cur.byName[name]
	if !ok {
		return ErrUnknownTopic
	}
	t := s.newTopic(name, old.ID, maps.Clone(overrides))
	t.Partitions = old.Partitions
	t.Stats = old.Stats // the partitions count into it
	next := maps.Clone(cur.byName)
	next[name] = t
	ts := newTopicSet(next)
	if err := s.saveLocked(ts, s.quotas.Load()); err != nil {
		return err
	}
	s.topics.Store(ts)
	for _, p := range t.Partitions {
		p.Log.SetConfig(t.Config.Storage)
	}
	s.log.Info().Str("topic", name).Interface("configs", overrides).Msg("topic configs changed")
	if t.Config.CleanupDelete {
		s.enforceRetentionOf(t.Partitions, time.Now())
	}
	return nil
}

// AddPartitions grows a topic to total partitions. The new logs are
// opened and the metadata saved before the partitions are published.
func (s *State) AddPartitions(name string, total int32) error {
	return s.AddPartitionsWith(name, total, nil)
}

// AddPartitionsWith grows a topic to total partitions, with the new
// partitions' replicas as given (CreatePartitions' manual assignment,
// validated by the caller) or, for nil, placed by the Placer with the
// topic's replication factor.
func (s *State) AddPartitionsWith(name string, total int32, replicas [][]int32) error {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	cur := s.topics.Load()
	old, ok := cur.byName[name]
	if !ok {
		return ErrUnknownTopic
	}
	from := int32(len(old.Partitions))
	if total <= from {
		return fmt.Errorf("clusterstate: topic %s already has %d partitions", name, from)
	}
	var rf int16
	if len(old.Partitions) > 0 {
		rf = int16(len(old.Partitions[0].Replicas))
	}
	assigns, err := s.placeLocked(name, from, total-from, rf, replicas)
	if err != nil {
		return err
	}
	ps, err := s.openPartitions(old, from, total, assigns)
	if err != nil {
		s.dropLogs(ps)
		return err
	}
	t := *old
	t.Partitions = append(old.Partitions[:from:from], ps...)
	next := maps.Clone(cur.byName)
	next[name] = &t
	ts := newTopicSet(next)
	if err := s.saveLocked(ts, s.quotas.Load()); err != nil {
		s.dropLogs(ps)
		return err
	}
	s.topics.Store(ts)
	s.log.Info().Str("topic", name).Int32("partitions", total).Msg("partitions added")
	return nil
}

// AlterQuota applies ops to one entity (parts in canonical order) and
// saves the result; an entity left without values is removed.
func (s *State) AlterQuota(entity []QuotaEntityPart, ops []QuotaOp) error {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	cur := s.quotas.Load()
	key := QuotaEntityKey(entity)
	q := &Quota{Entity: entity, Values: map[string]float64{}}
	if old := cur.byKey[key]; old != nil {
		q.Values = maps.Clone(old.Values)
	}
	for _, op := range ops {
		if op.Remove {
			delete(q.Values, op.Key)
		} else {
			q.Values[op.Key] = op.Value
		}
	}
	next := maps.Clone(cur.byKey)
	if len(q.Values) == 0 {
		delete(next, key)
	} else {
		next[key] = q
	}
	qs := newQuotaSet(next)
	if err := s.saveLocked(s.topics.Load(), qs); err != nil {
		return err
	}
	s.quotas.Store(qs)
	return nil
}

// GroupConfigs returns a copy of every group's configs.
func (s *State) GroupConfigs() map[string]map[string]string {
	cur := *s.groupCfgs.Load()
	out := make(map[string]map[string]string, len(cur))
	for g, cfg := range cur {
		out[g] = maps.Clone(cfg)
	}
	return out
}

// SetGroupConfigs replaces one group's configs (an empty cfg removes the
// group's entry), saves the metadata, and publishes the change only once
// it is saved; on failure nothing changes.
func (s *State) SetGroupConfigs(group string, cfg map[string]string) error {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	prev := s.savedGroupCfgs
	next := maps.Clone(prev)
	if next == nil {
		next = map[string]map[string]string{}
	}
	if len(cfg) == 0 {
		delete(next, group)
	} else {
		next[group] = maps.Clone(cfg)
	}
	s.savedGroupCfgs = next
	if err := s.saveLocked(s.topics.Load(), s.quotas.Load()); err != nil {
		s.savedGroupCfgs = prev
		return err
	}
	s.groupCfgs.Store(&next)
	return nil
}
