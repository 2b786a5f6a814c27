package clusterstate

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/skiffmq/skiff/storage"
)

// InternalSegmentBytes is Kafka 4's testing-only override of segment.bytes
// (no 1 MiB minimum); when a topic sets it, it replaces segment.bytes.
const InternalSegmentBytes = "internal.segment.bytes"

// TopicConfig is a topic's effective configuration, parsed once from its
// overrides and the broker defaults, so that no request path parses a
// setting map. Values are already validated by whoever stored them.
type TopicConfig struct {
	// Storage is what the partition logs are opened and reconfigured with.
	Storage storage.Config

	CleanupDelete  bool // cleanup.policy includes delete
	CleanupCompact bool // cleanup.policy includes compact

	MaxMessageBytes   int64 // max.message.bytes
	LogAppendTime     bool  // message.timestamp.type=LogAppendTime
	TimestampAfterMs  int64 // message.timestamp.after.max.ms
	TimestampBeforeMs int64 // message.timestamp.before.max.ms

	MinInsyncReplicas     int32 // min.insync.replicas
	UncleanLeaderElection bool  // unclean.leader.election.enable
}

// ConfigDefaults are the broker-level values topic configs fall back to.
type ConfigDefaults struct {
	// Values maps a topic config name to the broker's default for it.
	Values map[string]string
	// ExplicitFlush is set when the broker config names
	// log.flush.interval.*: then logs follow Kafka's flush intervals
	// instead of fsyncing before acknowledging.
	ExplicitFlush bool
}

// ParseTopicConfig computes a topic's effective configuration.
func ParseTopicConfig(overrides map[string]string, d ConfigDefaults) TopicConfig {
	value := func(name string) string {
		if v, ok := overrides[name]; ok {
			return v
		}
		return d.Values[name]
	}
	long := func(name string) int64 { return parseLong(value(name)) }

	sc := storage.DefaultConfig()
	sc.SegmentBytes = long("segment.bytes")
	if v, ok := overrides[InternalSegmentBytes]; ok {
		sc.SegmentBytes = parseLong(v) // a test's small segments, below segment.bytes' minimum
	}
	sc.SegmentMs = long("segment.ms")
	sc.IndexIntervalBytes = int32(long("index.interval.bytes"))
	sc.RetentionMs = long("retention.ms")
	sc.RetentionBytes = long("retention.bytes")
	_, topicFlushMsgs := overrides["flush.messages"]
	_, topicFlushMs := overrides["flush.ms"]
	// Durable (fsync before acknowledging, group commit) unless the user
	// asked for Kafka's flush-interval behaviour explicitly.
	sc.Durable = !(d.ExplicitFlush || topicFlushMsgs || topicFlushMs)
	sc.FlushMessages = long("flush.messages")
	sc.FlushMs = long("flush.ms")
	if sc.FlushMessages == math.MaxInt64 {
		sc.FlushMessages = 0
	}
	if sc.FlushMs == math.MaxInt64 {
		sc.FlushMs = 0
	}

	policies := strings.Split(value("cleanup.policy"), ",")
	for i := range policies {
		policies[i] = strings.TrimSpace(policies[i])
	}
	sc.Compact = slices.Contains(policies, "compact")
	// The cleaner's settings; where neither the topic nor the broker names
	// one (a bare ConfigDefaults), storage's defaults stand.
	if v := value("min.cleanable.dirty.ratio"); v != "" {
		sc.MinCleanableDirtyRatio, _ = strconv.ParseFloat(strings.TrimSpace(v), 64) // validated
	}
	for name, dst := range map[string]*int64{"min.compaction.lag.ms": &sc.MinCompactionLagMs,
		"max.compaction.lag.ms": &sc.MaxCompactionLagMs, "delete.retention.ms": &sc.DeleteRetentionMs} {
		if value(name) != "" {
			*dst = long(name)
		}
	}
	return TopicConfig{
		Storage:               sc,
		CleanupDelete:         slices.Contains(policies, "delete"),
		CleanupCompact:        slices.Contains(policies, "compact"),
		MaxMessageBytes:       long("max.message.bytes"),
		LogAppendTime:         value("message.timestamp.type") == "LogAppendTime",
		TimestampAfterMs:      long("message.timestamp.after.max.ms"),
		TimestampBeforeMs:     long("message.timestamp.before.max.ms"),
		MinInsyncReplicas:     int32(long("min.insync.replicas")),
		UncleanLeaderElection: strings.EqualFold(strings.TrimSpace(value("unclean.leader.election.enable")), "true"),
	}
}

func parseLong(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}
