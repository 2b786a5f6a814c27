package server

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/skiffmq/skiff/clusterstate"
	"github.com/skiffmq/skiff/coordinator"
)

// offsetsTopic is the internal topic the group coordinator persists
// committed offsets and group metadata to.
const offsetsTopic = clusterstate.OffsetsTopic

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
	cfg.StreamsSessionTimeout = ms("group.streams.session.timeout.ms")
	cfg.StreamsHeartbeatInterval = ms("group.streams.heartbeat.interval.ms")
	cfg.StreamsNumStandbyReplicas = int(parseLong(s.cfg.setting("group.streams.num.standby.replicas")))
	cfg.StreamsInitialRebalanceDelay = ms("group.streams.initial.rebalance.delay.ms")
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return coordinator.New(cfg, coordinator.Deps{
		Clock:               s.cfg.clock(),
		Logger:              s.log.With().Str("component", "groups").Logger(),
		Topics:              topicLookup{s.meta},
		Logs:                s.internalLogs(offsetsTopic),
		CreateLogs:          s.createOffsetsTopic,
		CreateStreamsTopics: s.createStreamsTopics,
		StreamsGroupConfigs: s.meta.groupConfigs(),
	})
}

// internalLogs returns an internal topic's partitions as coordinator logs,
// or nil if the topic does not exist yet.
func (s *Server) internalLogs(name string) []coordinator.Log {
	var logs []coordinator.Log
	for _, l := range s.meta.InternalLogs(name) {
		logs = append(logs, l)
	}
	return logs
}

// createOffsetsTopic creates __consumer_offsets on the first group write,
// as Kafka does, with offsets.topic.num.partitions partitions.
func (s *Server) createOffsetsTopic() ([]coordinator.Log, error) {
	if _, err := s.meta.EnsureInternalTopic(offsetsTopic, s.cfg.offsetsTopicPartitions, parseLong(s.cfg.setting("offsets.topic.segment.bytes"))); err != nil {
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
	return tp.Name, true
}

func (t topicLookup) TopicNames() []string { return t.c.topicNames() }
