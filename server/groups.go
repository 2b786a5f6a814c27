package server

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/skiffmq/skiff/coordinator"
	"github.com/skiffmq/skiff/storage"
)

// offsetsTopic is the internal topic the group coordinator persists
// committed offsets and group metadata to.
const offsetsTopic = "__consumer_offsets"

// offsetsTopicSegmentBytes is Kafka's offsets.topic.segment.bytes default.
const offsetsTopicSegmentBytes = "104857600"

// newGroups builds the group coordinator from the broker settings and the
// existing __consumer_offsets partitions (replayed by coordinator.New).
func (s *Server) newGroups() (*coordinator.Groups, error) {
	cfg := coordinator.DefaultConfig()
	ms := func(name string) time.Duration {
		return time.Duration(parseLong(s.cfg.setting(name))) * time.Millisecond
	}
	cfg.InitialRebalanceDelay = ms("group.initial.rebalance.delay.ms")
	cfg.MinSessionTimeout = ms("group.min.session.timeout.ms")
	cfg.MaxSessionTimeout = ms("group.max.session.timeout.ms")
	cfg.MaxGroupSize = int(parseLong(s.cfg.setting("group.max.size")))
	cfg.OffsetsRetention = time.Duration(parseLong(s.cfg.setting("offsets.retention.minutes"))) * time.Minute
	cfg.OffsetsRetentionCheckInterval = ms("offsets.retention.check.interval.ms")
	cfg.OffsetMetadataMaxBytes = int(parseLong(s.cfg.setting("offset.metadata.max.bytes")))
	cfg.ConsumerHeartbeatInterval = ms("group.consumer.heartbeat.interval.ms")
	cfg.ConsumerSessionTimeout = ms("group.consumer.session.timeout.ms")
	cfg.ConsumerAssignors = strings.Split(s.cfg.setting("group.consumer.assignors"), ",")
	for i := range cfg.ConsumerAssignors {
		cfg.ConsumerAssignors[i] = strings.TrimSpace(cfg.ConsumerAssignors[i])
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return coordinator.New(cfg, coordinator.Deps{
		Clock:      s.cfg.clock(),
		Logger:     s.log.With().Str("component", "groups").Logger(),
		Topics:     topicLookup{s.meta},
		Logs:       s.internalLogs(offsetsTopic),
		CreateLogs: s.createOffsetsTopic,
	})
}

// internalLogs returns an internal topic's partitions as coordinator logs,
// or nil if the topic does not exist yet.
func (s *Server) internalLogs(name string) []coordinator.Log {
	v, ok := s.meta.view(name)
	if !ok {
		return nil
	}
	logs := make([]coordinator.Log, v.partitions)
	for i := range logs {
		logs[i] = internalLog{s.meta.partition(name, int32(i)).log}
	}
	return logs
}

// createOffsetsTopic creates __consumer_offsets on the first group write,
// as Kafka does, compacted and with offsets.topic.num.partitions partitions.
func (s *Server) createOffsetsTopic() ([]coordinator.Log, error) {
	_, err := s.meta.createTopic(offsetsTopic, s.cfg.offsetsTopicPartitions, map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  s.cfg.setting("offsets.topic.segment.bytes"),
	})
	if err != nil && err != errTopicExists {
		return nil, err
	}
	return s.internalLogs(offsetsTopic), nil
}

// groupContext carries the client identity the coordinator derives member
// ids from and reports in DescribeGroups (Kafka prints hosts as "/ip").
func groupContext(r *request) context.Context {
	host := r.remote.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return coordinator.WithClientInfo(r.ctx, coordinator.ClientInfo{ClientID: r.clientID, Host: "/" + host})
}

// internalLog adapts a partition log to what the coordinator needs.
type internalLog struct{ l *storage.Log }

func (il internalLog) AppendRecords(records []byte, sync bool) (int64, error) {
	res, err := il.l.Append(records, storage.AppendOptions{Sync: sync})
	return res.BaseOffset, err
}

func (il internalLog) ReadRecords(offset int64, maxBytes int) ([]byte, int64, error) {
	rr, err := il.l.Read(offset, maxBytes, true)
	return rr.Records, rr.HighWatermark, err
}

// topicLookup answers the coordinator's metadata questions.
type topicLookup struct{ c *cluster }

func (t topicLookup) PartitionCount(topic string) (int32, bool) {
	v, ok := t.c.view(topic)
	return v.partitions, ok
}

func (t topicLookup) TopicID(topic string) ([16]byte, bool) {
	v, ok := t.c.view(topic)
	return v.id, ok
}

func (t topicLookup) TopicNameByID(id [16]byte) (string, bool) {
	tp, ok := t.c.topicByID(id)
	if !ok {
		return "", false
	}
	return tp.name, true
}

func (t topicLookup) TopicNames() []string { return t.c.topicNames() }
