package clusterstate

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/acl"
	"github.com/skiffmq/skiff/storage"
)

// Errors of topic changes.
var (
	ErrTopicExists    = errors.New("topic already exists")
	ErrTopicCollision = errors.New("topic name collision")
	ErrUnknownTopic   = errors.New("unknown topic")
)

// Options configure a State.
type Options struct {
	// Backend stores the metadata; required.
	Backend Backend
	// Logs opens this broker's partition logs; required.
	Logs *storage.Store
	// Defaults are the broker-level topic config defaults.
	Defaults ConfigDefaults
	// NodeID is this broker's id, the replica of every partition.
	NodeID int32
	// CountTraffic gives every topic TopicStats for its partitions to
	// count into; without it Partition.Stats is nil.
	CountTraffic bool
	// Placer places the replicas of new partitions on the cluster's
	// brokers; nil is a single node, which places every partition on
	// itself and does not store assignments. Set, the State is one
	// broker's view of a cluster: assignments are stored and the changes
	// other brokers save (Backend.Watch) are applied.
	Placer Placer
	Logger zerolog.Logger
	// OnChange, if set, is called with no lock held after an image
	// delivered by Backend.Watch (another broker's change, or the stored
	// form of this broker's own) was published: replication re-reads the
	// assignments then.
	OnChange func()
}

// Placer chooses the replicas of new partitions in a cluster. State calls
// it under changeMu: it must answer from memory (the live brokers it
// already knows), without I/O.
type Placer interface {
	// Place returns the replica lists of count new partitions of a topic,
	// numbered from from, with rf replicas each (0: the cluster's
	// default.replication.factor). An rf the live brokers cannot hold is
	// ErrInvalidReplicationFactor.
	Place(topic string, from, count int32, rf int16) ([][]int32, error)
}

// ErrInvalidReplicationFactor is a replication factor larger than the
// number of live brokers, or below 1 (Kafka's INVALID_REPLICATION_FACTOR).
var ErrInvalidReplicationFactor = errors.New("clusterstate: invalid replication factor")

// State owns the cluster metadata: the cluster id, the topics with their
// ids, typed configs, partition assignments and logs, the client quotas
// the finalized feature levels and the ACLs.
//
// Readers never lock: the topics, the quotas and the feature levels are
// published as immutable snapshots behind atomic pointers, replaced whole
// by each change (copy on write). Changes take changeMu for their whole course;
// they build the next snapshot, open logs and save the image while
// holding nothing else, and publish the snapshot when the save succeeded.
// So a change's disk I/O never holds up produce, fetch or metadata
// requests, and each saved image includes every change before it.
type State struct {
	opts Options
	log  zerolog.Logger

	// changeMu serializes changes, including their backend writes. Lock
	// order: changeMu before any partition or storage lock; nothing that
	// serves produce or fetch takes it.
	changeMu sync.Mutex
	rev      Revision // stored revision; guarded by changeMu

	clusterID string // set once by Open
	topics    atomic.Pointer[topicSet]
	quotas    atomic.Pointer[quotaSet]
	features  atomic.Pointer[Features]
	// groupCfgs are the published group configs; never modified.
	groupCfgs atomic.Pointer[map[string]map[string]string]
	// savedGroupCfgs is what the next save writes; guarded by changeMu.
	savedGroupCfgs map[string]map[string]string
	// acls are the published ACLs, never nil; savedACLs is what the next
	// save writes, guarded by changeMu.
	acls      atomic.Pointer[acl.Set]
	savedACLs *acl.Set

	// stopWatch ends the goroutine applying other brokers' changes
	// (Backend.Watch); watchDone is closed when it has returned.
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// topicSet is one published snapshot of the topics; never modified.
type topicSet struct {
	byName map[string]*Topic
	byID   map[TopicID]*Topic
	byKey  map[string]string // collision key -> name
	names  []string          // sorted
}

// quotaSet is one published snapshot of the quotas; never modified.
type quotaSet struct {
	byKey  map[string]*Quota
	sorted []Quota // by key
}

func newTopicSet(topics map[string]*Topic) *topicSet {
	ts := &topicSet{
		byName: topics,
		byID:   make(map[TopicID]*Topic, len(topics)),
		byKey:  make(map[string]string, len(topics)),
		names:  make([]string, 0, len(topics)),
	}
	for name, t := range topics {
		ts.byID[t.ID] = t
		ts.byKey[collisionKey(name)] = name
		ts.names = append(ts.names, name)
	}
	sort.Strings(ts.names)
	return ts
}

func newQuotaSet(byKey map[string]*Quota) *quotaSet {
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	qs := &quotaSet{byKey: byKey, sorted: make([]Quota, 0, len(keys))}
	for _, k := range keys {
		qs.sorted = append(qs.sorted, *byKey[k])
	}
	return qs
}

// Open loads the stored metadata, opens every partition log, removes the
// directories of partitions that no topic owns (the remains of a deletion
// interrupted by a crash) and saves the metadata back, so that a new
// cluster id is durable before anyone sees it. With a shared backend
// (etcd) another broker may save first; Open then loads again. It then
// applies the changes that Backend.Watch delivers until Close.
func Open(opts Options) (*State, error) {
	if opts.Backend == nil || opts.Logs == nil {
		return nil, errors.New("clusterstate: Backend and Logs are required")
	}
	for attempt := 0; ; attempt++ {
		s, err := openOnce(opts)
		if errors.Is(err, ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.startWatch()
		return s, nil
	}
}

func openOnce(opts Options) (*State, error) {
	s := &State{opts: opts, log: opts.Logger}
	img, rev, err := opts.Backend.Load(context.Background())
	if err != nil {
		return nil, err
	}
	s.rev = rev
	s.clusterID = img.ClusterID
	if s.clusterID == "" {
		s.clusterID = newClusterID()
	}
	quotas := make(map[string]*Quota, len(img.Quotas))
	for i := range img.Quotas {
		q := img.Quotas[i]
		quotas[QuotaEntityKey(q.Entity)] = &q
	}
	s.quotas.Store(newQuotaSet(quotas))
	s.savedGroupCfgs = img.GroupConfigs
	s.groupCfgs.Store(&s.savedGroupCfgs)
	s.features.Store(loadFeatures(img.Features))
	s.savedACLs = acl.NewSet(img.ACLs)
	s.acls.Store(s.savedACLs)

	topics := make(map[string]*Topic, len(img.Topics))
	for _, it := range img.Topics {
		id, err := ParseTopicID(it.ID)
		if err != nil {
			s.closeLogs(topics)
			return nil, fmt.Errorf("clusterstate: cluster metadata: topic %q: %w", it.Name, err)
		}
		t := s.newTopic(it.Name, id, it.Configs)
		ps, err := s.openPartitions(t, 0, it.Partitions, it.Assignments)
		t.Partitions = ps
		topics[t.Name] = t
		if err != nil {
			s.closeLogs(topics)
			return nil, err
		}
	}
	s.topics.Store(newTopicSet(topics))
	if err := s.removeStrayLogs(); err != nil {
		s.closeLogs(topics)
		return nil, err
	}
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	// A broker joining a cluster whose metadata exists (it has a cluster
	// id) has nothing to save, and saving would race the other brokers'
	// changes for nothing. etcd's revision is not 0 even for an empty
	// prefix, so the cluster id is what tells.
	if opts.Placer == nil || img.ClusterID == "" {
		if err := s.saveLocked(s.topics.Load(), s.quotas.Load()); err != nil {
			s.closeLogs(topics)
			return nil, err
		}
	}
	return s, nil
}

// closeLogs closes logs opened by a failed Open; the Store would close
// them too, but only when it is closed itself.
func (s *State) closeLogs(topics map[string]*Topic) {
	for _, t := range topics {
		for _, p := range t.Partitions {
			_ = p.Log.Close()
		}
	}
}

func (s *State) newTopic(name string, id TopicID, overrides map[string]string) *Topic {
	if overrides == nil {
		overrides = map[string]string{}
	}
	t := &Topic{
		Name:      name,
		ID:        id,
		Internal:  IsInternal(name),
		Overrides: overrides,
		Config:    ParseTopicConfig(overrides, s.opts.Defaults),
	}
	if s.opts.CountTraffic {
		t.Stats = new(TopicStats)
	}
	return t
}

// removeStrayLogs deletes partition directories that no topic owns.
func (s *State) removeStrayLogs() error {
	names, err := s.opts.Logs.LogNames()
	if err != nil {
		return err
	}
	ts := s.topics.Load()
	for _, name := range names {
		i := strings.LastIndexByte(name, '-')
		if i < 0 {
			continue
		}
		t, ok := ts.byName[name[:i]]
		p, err := strconv.Atoi(name[i+1:])
		if ok && err == nil && p < len(t.Partitions) {
			continue
		}
		s.log.Warn().Str("dir", name).Msg("removing partition directory of a deleted topic")
		if err := s.opts.Logs.FS().RemoveAll(filepath.Join(s.opts.Logs.Dir(), name)); err != nil {
			return fmt.Errorf("clusterstate: removing stray partition %s: %w", name, err)
		}
	}
	return nil
}

// image builds the persisted form of a snapshot.
func (s *State) image(ts *topicSet, qs *quotaSet, fs *Features) Image {
	img := Image{ClusterID: s.clusterID, Topics: make([]ImageTopic, 0, len(ts.names)), Features: fs}
	for _, name := range ts.names {
		t := ts.byName[name]
		it := ImageTopic{
			Name:       t.Name,
			ID:         t.ID.String(),
			Partitions: int32(len(t.Partitions)),
			Configs:    maps.Clone(t.Overrides),
		}
		if s.opts.Placer != nil {
			it.Assignments = make([]Assignment, len(t.Partitions))
			for i, p := range t.Partitions {
				it.Assignments[i] = p.Assignment
			}
		}
		img.Topics = append(img.Topics, it)
	}
	if len(qs.sorted) > 0 {
		img.Quotas = qs.sorted
	}
	if len(s.savedGroupCfgs) > 0 {
		img.GroupConfigs = s.savedGroupCfgs
	}
	if s.savedACLs.Len() > 0 {
		img.ACLs = s.savedACLs.Bindings()
	}
	return img
}

// saveLocked stores the image of a snapshot with the published feature
// levels. Callers hold changeMu.
func (s *State) saveLocked(ts *topicSet, qs *quotaSet) error {
	return s.saveAllLocked(ts, qs, s.features.Load())
}

// saveAllLocked stores the image of a snapshot. Callers hold changeMu.
func (s *State) saveAllLocked(ts *topicSet, qs *quotaSet, fs *Features) error {
	rev, err := s.opts.Backend.Save(context.Background(), s.image(ts, qs, fs), s.rev)
	if err != nil {
		return err
	}
	s.rev = rev
	return nil
}

func newClusterID() string {
	var b [16]byte
	randRead(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ClusterID is the cluster's id, fixed when the metadata was first saved.
func (s *State) ClusterID() string { return s.clusterID }

// Topic returns a published topic.
func (s *State) Topic(name string) (*Topic, bool) {
	t, ok := s.topics.Load().byName[name]
	return t, ok
}

// TopicByID returns a published topic by id.
func (s *State) TopicByID(id TopicID) (*Topic, bool) {
	t, ok := s.topics.Load().byID[id]
	return t, ok
}

// Partition returns a topic's partition, or nil if either does not exist.
func (s *State) Partition(topic string, index int32) *Partition {
	t, ok := s.topics.Load().byName[topic]
	if !ok || index < 0 || int(index) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[index]
}

// TopicNames returns every topic name, sorted. The slice is shared: do
// not modify it.
func (s *State) TopicNames() []string { return s.topics.Load().names }

// Topics returns every published topic of one snapshot, sorted by name,
// in a slice the caller owns (a metrics scrape walks them all).
func (s *State) Topics() []*Topic {
	ts := s.topics.Load()
	out := make([]*Topic, len(ts.names))
	for i, name := range ts.names {
		out[i] = ts.byName[name]
	}
	return out
}

// CollidingTopic returns an existing topic whose name differs from name
// only by '.' versus '_', which Kafka forbids because their metric names
// would be the same; "" if there is none.
func (s *State) CollidingTopic(name string) string {
	if other, ok := s.topics.Load().byKey[collisionKey(name)]; ok && other != name {
		return other
	}
	return ""
}

func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// Quotas returns every stored quota, sorted by entity. The slice is
// shared: do not modify it or its maps.
func (s *State) Quotas() []Quota { return s.quotas.Load().sorted }

// EnforceRetention applies retention to the partitions of every topic
// whose cleanup.policy includes delete.
func (s *State) EnforceRetention(now time.Time) {
	ts := s.topics.Load()
	for _, name := range ts.names {
		if t := ts.byName[name]; t.Config.CleanupDelete {
			s.enforceRetentionOf(t.Partitions, now)
		}
	}
}

func (s *State) enforceRetentionOf(parts []*Partition, now time.Time) {
	for _, p := range parts {
		n, err := p.Log.EnforceRetention(now)
		if err != nil {
			s.log.Error().Err(err).Str("topic", p.Topic).Int32("partition", p.Index).Msg("retention")
		} else if n > 0 {
			s.log.Info().Str("topic", p.Topic).Int32("partition", p.Index).Int("segments", n).Msg("deleted segments past retention")
		}
	}
}

func randRead(b []byte) { _, _ = rand.Read(b) }
