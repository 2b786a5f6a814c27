package server

import (
	"errors"
	"time"

	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WriteTxnMarkers v1 (v0 was removed in Kafka 4.0, KIP-896). Skiff's own
// transaction coordinator writes its markers in-process (writeTxnMarkers);
// this API is what an administrator uses to end a hanging transaction the
// coordinator no longer knows of: Admin.abortTransaction and
// `kafka-transactions abort` (KIP-664) send it to the partition leader.
func init() {
	register(kmsg.WriteTxnMarkers, 1, 1, (*Server).handleWriteTxnMarkers)
}

func (s *Server) handleWriteTxnMarkers(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	now := time.Now().UnixMilli()
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			for _, pi := range t.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = pi
				rp.ErrorCode = s.writeOneTxnMarker(t.Topic, pi, now, m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch)
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	return resp, nil
}

// writeOneTxnMarker appends a marker to one partition and returns the
// Kafka error code. As in Kafka, a marker from an older coordinator epoch
// than the producer's last marker is refused (TRANSACTION_COORDINATOR_FENCED)
// and one from an older producer epoch is INVALID_PRODUCER_EPOCH.
func (s *Server) writeOneTxnMarker(topic string, partition int32, now, pid int64, epoch int16, commit bool, coordinatorEpoch int32) int16 {
	if topic == offsetsTopic {
		if err := s.groups.WriteTxnMarker(partition, pid, epoch, commit); err != nil {
			return kerr.KafkaStorageError.Code
		}
		return 0
	}
	p := s.meta.partition(topic, partition)
	if p == nil {
		return kerr.UnknownTopicOrPartition.Code
	}
	// Kafka checks the producer epoch, then the coordinator epoch
	// (ProducerAppendInfo.appendEndTxnMarker); the append below checks the
	// producer epoch again under the log's lock.
	for _, pr := range p.Log.Producers() {
		switch {
		case pr.ProducerID != pid:
		case epoch < pr.ProducerEpoch:
			return kerr.InvalidProducerEpoch.Code
		case pr.CoordinatorEpoch > coordinatorEpoch:
			return kerr.TransactionCoordinatorFenced.Code
		}
	}
	err := appendTxnMarker(p, now, pid, epoch, commit, coordinatorEpoch)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	}
	return appendErrorCode(err).Code
}
