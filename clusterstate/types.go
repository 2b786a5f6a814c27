package clusterstate

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/skiffmq/skiff/storage"
)

// TopicID is a topic's 16-byte UUID (KIP-516). The zero id means "none".
type TopicID [16]byte

// String prints the id as Kafka prints topic ids: URL-safe base64 without
// padding.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// ParseTopicID reads an id printed by String.
func ParseTopicID(s string) (TopicID, error) {
	var id TopicID
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("clusterstate: bad topic id %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// Topic is one topic as published. A published Topic is never modified:
// a change publishes a new Topic value, so a reader may keep and use the
// pointer it looked up without any lock.
type Topic struct {
	Name     string
	ID       TopicID
	Internal bool
	// Overrides are the topic-level config overrides as stored. Handlers
	// that only need a value read Config, which is parsed once.
	Overrides map[string]string
	// Config is the effective configuration: Overrides over the broker
	// defaults, parsed when the topic was created, loaded or altered.
	Config     TopicConfig
	Partitions []*Partition
	// Stats are the topic's traffic counters, nil unless
	// Options.CountTraffic. A change that republishes the topic carries
	// the same pointer over; a topic deleted and created again starts
	// from zero.
	Stats *TopicStats
}

// Partition is one partition of a topic: where it is placed and, on this
// broker, its log.
type Partition struct {
	Topic string
	Index int32
	Assignment
	// Log is this broker's replica of the partition.
	Log *storage.Log
	// Stats is the topic's Stats, which the produce and fetch paths count
	// into without a lookup.
	Stats *TopicStats
}

// Assignment is a partition's placement. On one node this broker owns
// every partition (Replicas and ISR hold only it, epochs are 0); with
// Options.Replicated the assignments are part of the stored image, set by
// whoever places partitions and changed by leaders' ISR updates
// (AlterPartition).
type Assignment struct {
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	PartitionEpoch int32   `json:"partition_epoch"`
}

// Quota is one entity's client quotas (KIP-546). An entity part with a
// nil name is the default for its type.
type Quota struct {
	Entity []QuotaEntityPart  `json:"entity"`
	Values map[string]float64 `json:"values"`
}

// QuotaEntityPart is one (type, name) part of a quota entity.
type QuotaEntityPart struct {
	Type string  `json:"type"`
	Name *string `json:"name,omitempty"`
}

// QuotaEntityKey is a canonical form of an entity whose parts are sorted
// by type.
func QuotaEntityKey(parts []QuotaEntityPart) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Type)
		if p.Name == nil {
			b.WriteString("\x00<default>")
		} else {
			b.WriteString("=" + *p.Name)
		}
		b.WriteByte('\x01')
	}
	return b.String()
}

// QuotaOp sets (or with Remove, removes) one quota value of an entity.
type QuotaOp struct {
	Key    string
	Value  float64
	Remove bool
}
