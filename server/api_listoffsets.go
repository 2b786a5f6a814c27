package server

import (
	"math"

	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ListOffsets, 1, 10, (*Server).handleListOffsets) }

// Special timestamps of ListOffsets.
const (
	listLatest              = -1
	listEarliest            = -2
	listMaxTimestamp        = -3 // v7+
	listEarliestLocal       = -4 // v8+, KIP-405
	listEarliestPendingUpld = -5 // v9+, KIP-1023
)

func (s *Server) handleListOffsets(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	readCommitted := req.IsolationLevel == 1

	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			p := s.meta.partition(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				if code := s.checkLeaderEpoch(p, rp.CurrentLeaderEpoch, req.ReplicaID != debuggingReplicaID); code != nil {
					sp.ErrorCode = code.Code
					break
				}
				sp.ErrorCode = listOffset(p.Log, rp.Timestamp, readCommitted, &sp)
				if sp.LeaderEpoch >= 0 {
					// The partition's current epoch (0 on a single node).
					sp.LeaderEpoch = p.LeaderEpoch
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// listOffset resolves one partition's timestamp query into sp and returns
// the error code.
func listOffset(l *storage.Log, ts int64, readCommitted bool, sp *kmsg.ListOffsetsResponseTopicPartition) int16 {
	switch ts {
	case listLatest:
		// read_committed consumers start from the last stable offset, which
		// without open transactions is the high watermark.
		sp.Offset, sp.LeaderEpoch = l.HighWatermark(), partitionLeaderEpoch
		if readCommitted {
			sp.Offset = min(l.LastStableOffset(), sp.Offset)
		}
		return 0
	case listEarliest, listEarliestLocal:
		sp.Offset, sp.LeaderEpoch = l.LogStartOffset(), partitionLeaderEpoch
		return 0
	case listEarliestPendingUpld:
		// No tiered storage: nothing is pending upload.
		return 0
	case listMaxTimestamp:
		batch, ok, err := l.MaxTimestampBatch()
		if err != nil {
			return kerr.KafkaStorageError.Code
		}
		if ok {
			h, _ := protocol.ParseBatchHeader(batch)
			return setRecordAtTimestamp(batch, h.MaxTimestamp, math.MinInt64, sp)
		}
		return 0
	}
	if ts < 0 {
		return kerr.InvalidRequest.Code
	}
	// The batch found may straddle the log start offset (DeleteRecords
	// can cut into a batch); records below it are gone, so as Kafka's
	// LogSegment.findOffsetByTimestamp the answer is never below it.
	logStart := l.LogStartOffset()
	batch, ok, err := l.FindTimestamp(ts)
	if err != nil {
		return kerr.KafkaStorageError.Code
	}
	if !ok {
		return 0
	}
	return setRecordAtTimestamp(batch, ts, logStart, sp)
}

func setRecordAtTimestamp(batch []byte, ts, minOffset int64, sp *kmsg.ListOffsetsResponseTopicPartition) int16 {
	offset, t, found, err := recordAtTimestamp(batch, ts, minOffset)
	if err != nil {
		return kerr.CorruptMessage.Code
	}
	if found {
		sp.Offset, sp.Timestamp, sp.LeaderEpoch = offset, t, partitionLeaderEpoch
	}
	return 0
}

// recordAtTimestamp finds the first record in batch at or after minOffset
// whose timestamp is at least ts and returns its offset and timestamp.
// LogAppendTime batches carry one timestamp for every record. The records
// are walked as a stream, skipping keys and values, so that a batch which
// decompresses to millions of records costs a fixed amount of memory per
// request, not one slot per record.
func recordAtTimestamp(batch []byte, ts, minOffset int64) (offset, timestamp int64, found bool, err error) {
	h, err := protocol.ParseBatchHeader(batch)
	if err != nil {
		return 0, 0, false, err
	}
	if h.IsLogAppendTime() {
		return max(h.BaseOffset, minOffset), h.MaxTimestamp, h.MaxTimestamp >= ts && h.LastOffset() >= minOffset, nil
	}
	var it protocol.RecordIterator
	defer it.Close()
	if err := it.Reset(batch, protocol.IterSkipKeyValue, protocol.DefaultMaxDecompressedSize); err != nil {
		return 0, 0, false, err
	}
	for it.Next() {
		rec := it.Record()
		if t := h.BaseTimestamp + rec.TimestampDelta; t >= ts && h.BaseOffset+int64(rec.OffsetDelta) >= minOffset {
			return h.BaseOffset + int64(rec.OffsetDelta), t, true, nil
		}
	}
	return 0, 0, false, it.Err()
}
