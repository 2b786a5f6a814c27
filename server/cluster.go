package server

import (
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/clusterstate"
	"github.com/skiffmq/skiff/storage"
)

// cluster is the server's handle on the cluster metadata, which
// clusterstate owns: these methods keep the names and shapes the handlers
// have always called, and hold no state or lock of their own.
type cluster struct {
	*clusterstate.State
	// metaWrites counts meta.json writes, so that tests can check that a
	// request persists once however many topics it creates.
	metaWrites writeCounter
}

// writeCounter reads the file backend's count of saves.
type writeCounter struct{ b *clusterstate.FileBackend }

func (w writeCounter) Load() int64 {
	if w.b == nil {
		return 0
	}
	return w.b.Writes()
}

type (
	topic     = clusterstate.Topic
	partition = clusterstate.Partition
	// metaFile is the on-disk form of the cluster metadata.
	metaFile = clusterstate.Image
)

const metaFileName = clusterstate.FileName

var (
	errTopicExists    = clusterstate.ErrTopicExists
	errTopicCollision = clusterstate.ErrTopicCollision
	errUnknownTopic   = clusterstate.ErrUnknownTopic
)

func openCluster(cfg *Config, store *storage.Store, logger zerolog.Logger, onChange func()) (*cluster, error) {
	// meta.json goes through the store's FS, so that MemFS crash and
	// fault tests cover it as they cover the logs.
	backend := clusterstate.NewFileBackend(store.FS(), filepath.Join(cfg.DataDir, metaFileName))
	var shared clusterstate.Backend = backend
	var placer clusterstate.Placer
	if cfg.Cluster != nil {
		// The cluster's metadata is etcd's; meta.json is not written.
		shared, placer = cfg.Cluster.Backend(), cfg.Cluster
	}
	st, err := clusterstate.Open(clusterstate.Options{
		Backend:      shared,
		Placer:       placer,
		Logs:         store,
		Defaults:     clusterstate.ConfigDefaults{Values: cfg.topicDefaults, ExplicitFlush: cfg.explicitFlush},
		NodeID:       cfg.NodeID,
		CountTraffic: !cfg.DisableMetrics,
		Logger:       logger,
		OnChange:     onChange,
	})
	if err != nil {
		return nil, err
	}
	return &cluster{State: st, metaWrites: writeCounter{backend}}, nil
}

func isInternalTopic(name string) bool { return clusterstate.IsInternal(name) }

func (c *cluster) clusterID() string { return c.ClusterID() }

func (c *cluster) topic(name string) (*topic, bool) { return c.Topic(name) }

func (c *cluster) topicByID(id [16]byte) (*topic, bool) { return c.TopicByID(id) }

// partition returns a topic's partition, or nil if either does not exist.
func (c *cluster) partition(topicName string, p int32) *partition { return c.Partition(topicName, p) }

// partitions returns a topic's partitions, nil if it does not exist. The
// slice is the published one: do not modify it.
func (c *cluster) partitions(name string) []*partition {
	t, ok := c.Topic(name)
	if !ok {
		return nil
	}
	return t.Partitions
}

// topicNames returns every topic name, sorted, in a slice the caller owns
// (the coordinators and handlers may sort or trim what they get).
func (c *cluster) topicNames() []string { return slices.Clone(c.TopicNames()) }

// topicView is a consistent snapshot of one topic for building responses.
type topicView struct {
	name       string
	id         [16]byte
	internal   bool
	partitions int32
}

func viewOf(t *topic) topicView {
	return topicView{name: t.Name, id: t.ID, internal: t.Internal, partitions: int32(len(t.Partitions))}
}

func (c *cluster) view(name string) (topicView, bool) {
	t, ok := c.Topic(name)
	if !ok {
		return topicView{}, false
	}
	return viewOf(t), true
}

// topicOverrides returns a copy of a topic's config overrides.
func (c *cluster) topicOverrides(name string) (map[string]string, bool) {
	t, ok := c.Topic(name)
	if !ok {
		return nil, false
	}
	return maps.Clone(t.Overrides), true
}

func (c *cluster) collidingTopic(name string) string { return c.CollidingTopic(name) }

// newTopic is one topic of a create request, already validated.
type newTopic struct {
	name       string
	partitions int32
	configs    map[string]string
	// In a cluster: the replication factor, or the request's replicas of
	// each partition.
	replication int16
	replicas    [][]int32
}

// createResult is the outcome of creating one newTopic.
type createResult struct {
	view topicView
	err  error // errTopicExists, errTopicCollision or a storage error
}

// createTopics creates topics together, with one metadata write for all
// of them (see clusterstate.State.CreateTopics). Results are in specs'
// order.
func (c *cluster) createTopics(specs []newTopic) []createResult {
	in := make([]clusterstate.NewTopic, len(specs))
	for i, sp := range specs {
		in[i] = clusterstate.NewTopic{Name: sp.name, Partitions: sp.partitions, Configs: sp.configs,
			ReplicationFactor: sp.replication, Replicas: sp.replicas}
	}
	out := make([]createResult, len(specs))
	for i, r := range c.CreateTopics(in) {
		out[i].err = r.Err
		if r.Topic != nil {
			out[i].view = viewOf(r.Topic)
		}
	}
	return out
}

// createTopic creates a topic with the given partitions and config
// overrides (already validated). errTopicExists if it exists.
func (c *cluster) createTopic(name string, partitions int32, configs map[string]string) (topicView, error) {
	r := c.createTopics([]newTopic{{name: name, partitions: partitions, configs: configs}})
	return r[0].view, r[0].err
}

func (c *cluster) deleteTopic(name string) error { return c.DeleteTopic(name) }

func (c *cluster) setTopicConfigs(name string, overrides map[string]string) error {
	return c.SetTopicConfigs(name, overrides)
}

// addPartitions grows a topic; replicas, in a cluster, are the request's
// assignment of the new partitions (nil: placed on the live brokers).
func (c *cluster) addPartitions(name string, total int32, replicas [][]int32) error {
	return c.AddPartitionsWith(name, total, replicas)
}

func (c *cluster) enforceRetention(now time.Time) { c.EnforceRetention(now) }
