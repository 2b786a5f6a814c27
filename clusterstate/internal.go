package clusterstate

import (
	"errors"
	"strconv"

	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The internal topics, which only the coordinators write.
const (
	OffsetsTopic  = "__consumer_offsets"
	TxnStateTopic = "__transaction_state"
)

// internalSegmentBytes is Kafka's default for offsets.topic.segment.bytes
// and transaction.state.log.segment.bytes.
const internalSegmentBytes = "104857600"

// IsInternal reports whether name is an internal topic.
func IsInternal(name string) bool { return name == OffsetsTopic || name == TxnStateTopic }

// ClientWriteError is the produce guard: the error a client's write to
// topic gets, nil if it may write. Kafka's ReplicaManager refuses client
// appends to internal topics with INVALID_TOPIC_EXCEPTION
// (internalTopicsAllowed is false for Produce); the coordinators append
// through InternalLog instead.
func ClientWriteError(topic string) *kerr.Error {
	if IsInternal(topic) {
		return kerr.InvalidTopicException
	}
	return nil
}

// InternalLog is the one adapter through which both coordinators append to
// and replay their internal topic's partitions.
type InternalLog struct{ l *storage.Log }

// AppendRecords appends batches built by a coordinator; with sync it
// returns once they are durable.
func (il InternalLog) AppendRecords(records []byte, sync bool) (int64, error) {
	res, err := il.l.Append(records, storage.AppendOptions{Sync: sync})
	return res.BaseOffset, err
}

// ReadRecords reads whole batches from offset, up to maxBytes (at least
// one batch), and returns the high watermark.
func (il InternalLog) ReadRecords(offset int64, maxBytes int) ([]byte, int64, error) {
	rr, err := il.l.Read(offset, maxBytes, true)
	return rr.Records, rr.HighWatermark, err
}

// InternalLogs returns an internal topic's partitions as coordinator logs,
// or nil if the topic does not exist yet.
func (s *State) InternalLogs(name string) []InternalLog {
	t, ok := s.Topic(name)
	if !ok {
		return nil
	}
	logs := make([]InternalLog, len(t.Partitions))
	for i, p := range t.Partitions {
		logs[i] = InternalLog{p.Log}
	}
	return logs
}

// EnsureInternalTopic creates an internal topic unless it exists, as Kafka
// does on first use: compacted, with the given number of partitions and
// segments of segmentBytes (offsets.topic.segment.bytes or
// transaction.state.log.segment.bytes; 0: Kafka's 100 MiB). It returns the
// topic's logs.
func (s *State) EnsureInternalTopic(name string, partitions int32, segmentBytes int64) ([]InternalLog, error) {
	if !IsInternal(name) {
		return nil, errors.New("clusterstate: " + name + " is not an internal topic")
	}
	if _, ok := s.Topic(name); !ok {
		seg := internalSegmentBytes
		if segmentBytes > 0 {
			seg = strconv.FormatInt(segmentBytes, 10)
		}
		r := s.CreateTopics([]NewTopic{{Name: name, Partitions: partitions, Configs: map[string]string{
			"cleanup.policy": "compact",
			"segment.bytes":  seg,
		}}})
		if err := r[0].Err; err != nil && !errors.Is(err, ErrTopicExists) {
			return nil, err
		}
	}
	return s.InternalLogs(name), nil
}
