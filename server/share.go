package server

import (
	"time"

	"github.com/skiffmq/skiff/coordinator"
	"github.com/skiffmq/skiff/coordinator/share"
	"github.com/skiffmq/skiff/protocol"
)

// shareStateTopic is the internal topic share-partition state is persisted
// to (KIP-932), in Kafka's ShareSnapshot/ShareUpdate record formats.
const shareStateTopic = "__share_group_state"

func init() {
	// Kept here rather than in configdocs.go so the share group settings
	// stay in one place.
	for k, v := range map[string]string{
		"group.share.record.lock.duration.ms":          "How long a share group member holds the acquisition lock on records it fetched (KIP-932).",
		"group.share.delivery.count.limit":             "Deliveries of a record to share group members before it is archived.",
		"group.share.partition.max.record.locks":       "Most offsets in flight (between SPSO and SPEO) in one share-partition.",
		"group.share.session.timeout.ms":               "The session timeout of share group members.",
		"group.share.heartbeat.interval.ms":            "The heartbeat interval told to share group members.",
		"group.share.max.size":                         "The most members a share group may have.",
		"share.coordinator.state.topic.num.partitions": "Partitions of __share_group_state, where share-partition state is persisted.",
	} {
		brokerConfigDocs[k] = v
	}
}

// newShares builds the share coordinator from the broker settings and the
// state replayed from __share_group_state.
func (s *Server) newShares() (*share.Coordinator, error) {
	ms := func(name string) time.Duration {
		return time.Duration(parseLong(s.cfg.setting(name))) * time.Millisecond
	}
	set := share.Settings{
		Partition: share.Config{
			LockDuration:   ms("group.share.record.lock.duration.ms"),
			DeliveryLimit:  int16(parseLong(s.cfg.setting("group.share.delivery.count.limit"))),
			MaxRecordLocks: int(parseLong(s.cfg.setting("group.share.partition.max.record.locks"))),
		},
		Group: share.GroupConfig{
			SessionTimeout:    ms("group.share.session.timeout.ms"),
			HeartbeatInterval: ms("group.share.heartbeat.interval.ms"),
			MaxSize:           int(parseLong(s.cfg.setting("group.share.max.size"))),
		},
	}
	replayed, err := share.ReplayLogs(s.internalLogs(shareStateTopic), s.log)
	if err != nil {
		return nil, err
	}
	return share.New(set, share.Deps{
		Clock:    coordinator.SystemClock(),
		Topics:   topicLookup{s.meta},
		Logs:     shareLogs{s},
		Store:    shareStore{s},
		Replayed: replayed,

		GroupConfigs: s.meta.groupConfigs(),
	})
}

// shareLogs tells the share coordinator where partitions start and end.
type shareLogs struct{ s *Server }

func (l shareLogs) Offsets(topic string, p int32) (logStart, hwm, lso int64, ok bool) {
	part := l.s.meta.partition(topic, p)
	if part == nil {
		return 0, 0, 0, false
	}
	return part.Log.LogStartOffset(), part.Log.HighWatermark(), part.Log.LastStableOffset(), true
}

// shareStore appends share state records to __share_group_state, creating
// the topic on the first write, one durable batch per partition written.
type shareStore struct{ s *Server }

func (st shareStore) Write(recs []share.KV) error {
	logs := st.s.internalLogs(shareStateTopic)
	if logs == nil {
		n := int32(parseLong(st.s.cfg.setting("share.coordinator.state.topic.num.partitions")))
		_, err := st.s.meta.createTopic(shareStateTopic, n, map[string]string{
			"cleanup.policy": "compact",
			"segment.bytes":  offsetsTopicSegmentBytes,
		})
		if err != nil && err != errTopicExists {
			return err
		}
		if logs = st.s.internalLogs(shareStateTopic); logs == nil {
			return errTopicExists // cannot happen: the topic was just created
		}
	}
	byPart := make(map[int][]protocol.Record)
	for _, r := range recs {
		p := int(coordinator.OffsetsPartitionFor(r.Route, len(logs)))
		byPart[p] = append(byPart[p], protocol.Record{OffsetDelta: int32(len(byPart[p])), Key: r.Key, Value: r.Value})
	}
	now := time.Now().UnixMilli()
	for p, rs := range byPart {
		h := protocol.BatchHeader{PartitionLeaderEpoch: -1, BaseTimestamp: now, MaxTimestamp: now,
			ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		batch, err := protocol.BuildBatch(nil, h, protocol.CodecNone, rs)
		if err != nil {
			return err
		}
		if _, err := logs[p].AppendRecords(batch, true); err != nil {
			return err
		}
	}
	return nil
}
