package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/storage"
)

// cluster holds the cluster metadata: the cluster id and every topic with
// its id, partitions and config overrides. It is small, kept in memory and
// persisted atomically to meta.json on every change.
//
// Lock order: saveMu, then mu. A change holds saveMu for its whole course
// and does its disk I/O with mu released, so produce, fetch and metadata
// requests, which take mu, never wait for a file to be opened or synced.
// New topics and partitions are reserved under mu, their logs opened and
// meta.json written holding only saveMu, and then published under mu.
// Smaller changes (deleting a topic, configs, quotas) are applied under mu,
// written with mu released and rolled back if the write fails. As saveMu
// serializes the writes, each snapshot of meta.json includes every change
// before it.
type cluster struct {
	cfg   *Config
	store *storage.Store
	log   zerolog.Logger
	path  string

	saveMu sync.Mutex // serializes metadata changes and meta.json writes
	// metaWrites counts meta.json writes, so that tests can check that a
	// request persists once however many topics it creates.
	metaWrites atomic.Int64

	mu struct {
		sync.RWMutex
		clusterID string
		topics    map[string]*topic
		byID      map[[16]byte]*topic
		quotas    map[string]*clientQuota // by quotaEntityKey; see api_quotas.go
		features  metaFeatures            // finalized feature levels; see features.go
	}
}

type topic struct {
	name     string
	id       [16]byte
	internal bool
	// configs holds the topic's overrides; guarded by cluster.mu.
	configs    map[string]string
	partitions []*partition
}

type partition struct {
	topic string
	index int32
	log   *storage.Log
}

// metaFile is the on-disk form of the cluster metadata.
type metaFile struct {
	ClusterID string        `json:"cluster_id"`
	Topics    []metaTopic   `json:"topics"`
	Quotas    []clientQuota `json:"client_quotas,omitempty"`
	// Features is absent in a meta.json written before feature levels.
	Features *metaFeatures `json:"features,omitempty"`
}

type metaTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"` // base64, as Kafka prints topic ids
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

const metaFileName = "meta.json"

func openCluster(cfg *Config, store *storage.Store, logger zerolog.Logger) (*cluster, error) {
	c := &cluster{cfg: cfg, store: store, log: logger, path: filepath.Join(cfg.DataDir, metaFileName)}
	c.mu.topics = make(map[string]*topic)
	c.mu.byID = make(map[[16]byte]*topic)

	var mf metaFile
	data, err := store.FS().ReadFile(c.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		mf.ClusterID = newClusterID()
	case err != nil:
		return nil, fmt.Errorf("server: reading cluster metadata: %w", err)
	default:
		if err := json.Unmarshal(data, &mf); err != nil {
			// It is only ever replaced atomically, so this is damage from
			// outside. Starting without it would forget every topic and
			// delete their partition directories as strays.
			return nil, fmt.Errorf("server: cluster metadata %s is corrupt (%w); restore it from a backup "+
				"(do not delete it: without it every topic is forgotten and its partition directories removed)", c.path, err)
		}
	}
	c.mu.clusterID = mf.ClusterID
	c.loadFeaturesLocked(mf.Features)
	c.mu.quotas = make(map[string]*clientQuota, len(mf.Quotas))
	for i := range mf.Quotas {
		q := mf.Quotas[i]
		c.mu.quotas[quotaEntityKey(q.Entity)] = &q
	}
	for _, mt := range mf.Topics {
		idBytes, err := base64.RawURLEncoding.DecodeString(mt.ID)
		if err != nil || len(idBytes) != 16 {
			return nil, fmt.Errorf("server: cluster metadata: topic %q has a bad id %q", mt.Name, mt.ID)
		}
		t := &topic{name: mt.Name, internal: isInternalTopic(mt.Name), configs: mt.Configs}
		copy(t.id[:], idBytes)
		if t.configs == nil {
			t.configs = map[string]string{}
		}
		if err := c.openPartitionsLocked(t, 0, mt.Partitions); err != nil {
			return nil, err
		}
		c.mu.topics[t.name] = t
		c.mu.byID[t.id] = t
	}
	if err := c.removeStrayLogs(); err != nil {
		return nil, err
	}
	// Nothing else runs yet: no lock is needed around this write.
	if err := c.writeMeta(c.snapshotLocked(nil, nil)); err != nil {
		return nil, err
	}
	return c, nil
}

// removeStrayLogs deletes partition directories that no topic owns: the
// remains of a topic deletion interrupted by a crash.
func (c *cluster) removeStrayLogs() error {
	names, err := c.store.LogNames()
	if err != nil {
		return err
	}
	for _, name := range names {
		i := strings.LastIndexByte(name, '-')
		if i < 0 {
			continue
		}
		t, ok := c.mu.topics[name[:i]]
		p, err := strconv.Atoi(name[i+1:])
		if ok && err == nil && p < len(t.partitions) {
			continue
		}
		c.log.Warn().Str("dir", name).Msg("removing partition directory of a deleted topic")
		if err := c.store.FS().RemoveAll(filepath.Join(c.cfg.DataDir, name)); err != nil {
			return fmt.Errorf("server: removing stray partition %s: %w", name, err)
		}
	}
	return nil
}

func newClusterID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newTopicID() [16]byte {
	var id [16]byte
	for id == ([16]byte{}) {
		rand.Read(id[:])
	}
	return id
}

func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

// snapshotLocked builds meta.json's content from the published topics,
// plus added (topics not yet published) and grown (published topics whose
// new partition count is not yet published). Configs are copied so that
// the snapshot can be encoded after mu is released. Callers hold mu.
func (c *cluster) snapshotLocked(added []*topic, grown map[string]int32) metaFile {
	mf := metaFile{ClusterID: c.mu.clusterID}
	add := func(t *topic, partitions int32) {
		mf.Topics = append(mf.Topics, metaTopic{
			Name:       t.name,
			ID:         base64.RawURLEncoding.EncodeToString(t.id[:]),
			Partitions: partitions,
			Configs:    maps.Clone(t.configs),
		})
	}
	for _, t := range c.mu.topics {
		n, ok := grown[t.name]
		if !ok {
			n = int32(len(t.partitions))
		}
		add(t, n)
	}
	for _, t := range added {
		add(t, int32(len(t.partitions)))
	}
	sort.Slice(mf.Topics, func(i, j int) bool { return mf.Topics[i].Name < mf.Topics[j].Name })
	mf.Quotas = c.quotasLocked()
	mf.Features = &metaFeatures{Levels: maps.Clone(c.mu.features.Levels), Epoch: c.mu.features.Epoch}
	return mf
}

// writeMeta writes meta.json atomically (temp file, fsync, rename, fsync
// of the directory). Callers hold saveMu and not mu.
func (c *cluster) writeMeta(mf metaFile) error {
	data, err := json.MarshalIndent(mf, "", "  ")
	if err != nil {
		return fmt.Errorf("server: encoding cluster metadata: %w", err)
	}
	c.metaWrites.Add(1)
	if err := storage.WriteFileAtomicFS(c.store.FS(), c.path, data); err != nil {
		return fmt.Errorf("server: saving cluster metadata: %w", err)
	}
	return nil
}

// saveMeta persists the published metadata after a change made under mu.
// Callers hold saveMu and not mu.
func (c *cluster) saveMeta() error {
	c.mu.RLock()
	mf := c.snapshotLocked(nil, nil)
	c.mu.RUnlock()
	return c.writeMeta(mf)
}

func (c *cluster) openPartitionsLocked(t *topic, from, to int32) error {
	ps, err := c.openPartitions(t.name, c.storageConfigLocked(t), from, to)
	t.partitions = append(t.partitions, ps...)
	return err
}

// openPartitions opens (creating if needed) the logs of partitions
// [from, to) of a topic. On error it returns the logs it did open, for the
// caller to drop. It takes no lock: the topic's names are reserved.
func (c *cluster) openPartitions(topicName string, cfg storage.Config, from, to int32) ([]*partition, error) {
	ps := make([]*partition, 0, to-from)
	for i := from; i < to; i++ {
		l, err := c.store.OpenLog(topicName+"-"+strconv.Itoa(int(i)), cfg)
		if err != nil {
			return ps, fmt.Errorf("server: opening %s-%d: %w", topicName, i, err)
		}
		ps = append(ps, &partition{topic: topicName, index: i, log: l})
	}
	return ps, nil
}

// topicConfigLocked returns the effective value of a topic config: the
// topic's override, else the broker-level default.
func (c *cluster) topicConfigLocked(t *topic, name string) string {
	if v, ok := t.configs[name]; ok {
		return v
	}
	return c.cfg.topicDefaults[name]
}

func (c *cluster) storageConfigLocked(t *topic) storage.Config {
	get := func(name string) int64 { return parseLong(c.topicConfigLocked(t, name)) }
	sc := storage.DefaultConfig()
	sc.SegmentBytes = get("segment.bytes")
	if v, ok := t.configs[internalSegmentBytes]; ok {
		sc.SegmentBytes = parseLong(v) // a test's small segments, below segment.bytes' minimum
	}
	sc.SegmentMs = get("segment.ms")
	sc.IndexIntervalBytes = int32(get("index.interval.bytes"))
	sc.RetentionMs = get("retention.ms")
	sc.RetentionBytes = get("retention.bytes")
	_, topicFlushMsgs := t.configs["flush.messages"]
	_, topicFlushMs := t.configs["flush.ms"]
	// Durable (fsync before acknowledging, group commit) unless the user
	// asked for Kafka's flush-interval behaviour explicitly.
	sc.Durable = !(c.cfg.explicitFlush || topicFlushMsgs || topicFlushMs)
	sc.FlushMessages = get("flush.messages")
	sc.FlushMs = get("flush.ms")
	if sc.FlushMessages == math.MaxInt64 {
		sc.FlushMessages = 0
	}
	if sc.FlushMs == math.MaxInt64 {
		sc.FlushMs = 0
	}
	return sc
}

func (c *cluster) clusterID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.mu.clusterID
}

func (c *cluster) topic(name string) (*topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.mu.topics[name]
	return t, ok
}

func (c *cluster) topicByID(id [16]byte) (*topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.mu.byID[id]
	return t, ok
}

// partition returns a topic's partition, or nil if either does not exist.
func (c *cluster) partition(topicName string, p int32) *partition {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.mu.topics[topicName]
	if !ok || p < 0 || int(p) >= len(t.partitions) {
		return nil
	}
	return t.partitions[p]
}

// topicNames returns every topic name, sorted.
func (c *cluster) topicNames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.mu.topics))
	for n := range c.mu.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// topicView is a consistent snapshot of one topic for building responses.
type topicView struct {
	name       string
	id         [16]byte
	internal   bool
	partitions int32
}

func (c *cluster) view(name string) (topicView, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.mu.topics[name]
	if !ok {
		return topicView{}, false
	}
	return topicView{name: t.name, id: t.id, internal: t.internal, partitions: int32(len(t.partitions))}, true
}

// createTopic creates a topic with the given partitions and config
// overrides (already validated). errTopicExists if it exists.
func (c *cluster) createTopic(name string, partitions int32, configs map[string]string) (topicView, error) {
	r := c.createTopics([]newTopic{{name: name, partitions: partitions, configs: configs}})
	return r[0].view, r[0].err
}

// collidingTopicLocked returns an existing topic whose name differs from
// name only by '.' versus '_', which Kafka forbids because metric names
// would collide.
func (c *cluster) collidingTopicLocked(name string) string {
	norm := collisionKey(name)
	for other := range c.mu.topics {
		if other != name && collisionKey(other) == norm {
			return other
		}
	}
	return ""
}

// collisionKey is what two topic names must not share: their metric names
// are the same when they differ only by '.' versus '_'.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

func (c *cluster) dropLogs(ps []*partition) {
	for _, p := range ps {
		if err := p.log.Delete(); err != nil {
			c.log.Error().Err(err).Str("topic", p.topic).Int32("partition", p.index).Msg("deleting partition log")
		}
	}
}

// deleteTopic removes a topic: first from the persisted metadata, then its
// logs, so a crash in between leaves only stray directories that the next
// start removes.
func (c *cluster) deleteTopic(name string) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	t, ok := c.mu.topics[name]
	if !ok {
		c.mu.Unlock()
		return errUnknownTopic
	}
	delete(c.mu.topics, name)
	delete(c.mu.byID, t.id)
	c.mu.Unlock()
	if err := c.saveMeta(); err != nil {
		c.mu.Lock()
		c.mu.topics[name] = t
		c.mu.byID[t.id] = t
		c.mu.Unlock()
		return err
	}
	c.dropLogs(t.partitions)
	c.log.Info().Str("topic", name).Msg("topic deleted")
	return nil
}

func (c *cluster) enforceRetention(now time.Time) {
	c.mu.RLock()
	var parts []*partition
	for _, t := range c.mu.topics {
		if strings.Contains(c.topicConfigLocked(t, "cleanup.policy"), "delete") {
			parts = append(parts, t.partitions...)
		}
	}
	c.mu.RUnlock()
	for _, p := range parts {
		n, err := p.log.EnforceRetention(now)
		if err != nil {
			c.log.Error().Err(err).Str("topic", p.topic).Int32("partition", p.index).Msg("retention")
		} else if n > 0 {
			c.log.Info().Str("topic", p.topic).Int32("partition", p.index).Int("segments", n).Msg("deleted segments past retention")
		}
	}
}

var (
	errTopicExists    = errors.New("topic already exists")
	errTopicCollision = errors.New("topic name collision")
	errUnknownTopic   = errors.New("unknown topic")
)

func (c *cluster) collidingTopic(name string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.collidingTopicLocked(name)
}
