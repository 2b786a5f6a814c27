package server

import (
	"errors"
	"time"

	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WriteTxnMarkers v1 only: Kafka 4.0 removed v0 (KIP-896). In Kafka the
// transaction coordinator sends it to partition leaders; Skiff's own
// coordinator writes markers in process (txn.go), so this handler serves
// the Admin client's abortTransaction (KIP-664), which is how
// kafka-transactions.sh aborts a hanging transaction.
func init() { register(kmsg.WriteTxnMarkers, 1, 1, (*Server).handleWriteTxnMarkers) }

// handleWriteTxnMarkers appends each marker to each of its partitions as
// Kafka's broker does: an unknown partition gets UNKNOWN_TOPIC_OR_PARTITION,
// a marker older than the partition's producer epoch INVALID_PRODUCER_EPOCH,
// and a marker on __consumer_offsets goes to the group coordinator, which
// also applies or drops the producer's pending offsets.
func (s *Server) handleWriteTxnMarkers(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			for _, idx := range t.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = idx
				rp.ErrorCode = s.writeOneTxnMarker(t.Topic, idx, m)
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp, nil
}

// writeOneTxnMarker appends one marker durably and returns its error code.
func (s *Server) writeOneTxnMarker(topic string, idx int32, m kmsg.WriteTxnMarkersRequestMarker) int16 {
	p := s.meta.partition(topic, idx)
	if p == nil {
		return kerr.UnknownTopicOrPartition.Code
	}
	if topic == offsetsTopic {
		if err := s.groups.WriteTxnMarker(idx, m.ProducerID, m.ProducerEpoch, m.Committed); err != nil {
			s.log.Warn().Err(err).Str("topic", topic).Int32("partition", idx).Msg("writing a transaction marker")
			return kerr.NotLeaderForPartition.Code
		}
		return 0
	}
	now := time.Now().UnixMilli()
	batch, err := protocol.BuildControlBatch(nil, protocol.BatchHeader{
		BaseTimestamp: now, MaxTimestamp: now, ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch,
	}, m.Committed, m.CoordinatorEpoch)
	if err != nil {
		return kerr.UnknownServerError.Code
	}
	if _, err := p.log.Append(batch, storage.AppendOptions{LeaderEpoch: partitionLeaderEpoch, Sync: true}); err != nil {
		if !errors.Is(err, storage.ErrInvalidProducerEpoch) {
			s.log.Warn().Err(err).Str("topic", topic).Int32("partition", idx).Msg("writing a transaction marker")
		}
		return appendErrorCode(err).Code
	}
	return 0
}
