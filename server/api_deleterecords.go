package server

import (
	"errors"

	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DeleteRecords, 0, 2, (*Server).handleDeleteRecords) }

// deleteToHighWatermark is DeleteRecords' "everything" offset.
const deleteToHighWatermark = -1

// handleDeleteRecords moves log start offsets forward; whole segments below
// the new start are deleted and the start offset survives a restart.
func (s *Server) handleDeleteRecords(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p := s.meta.partition(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case isInternalTopic(rt.Topic):
				sp.ErrorCode = kerr.InvalidTopicException.Code
			case rp.Offset < deleteToHighWatermark:
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
			default:
				offset := rp.Offset
				if offset == deleteToHighWatermark {
					offset = p.log.HighWatermark()
				}
				low, err := p.log.DeleteRecordsBefore(offset)
				switch {
				case errors.Is(err, storage.ErrOffsetOutOfRange):
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				case errors.Is(err, storage.ErrClosed):
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
				case err != nil:
					s.log.Error().Err(err).Str("topic", rt.Topic).Int32("partition", rp.Partition).Msg("delete records")
					sp.ErrorCode = kerr.KafkaStorageError.Code
				default:
					sp.LowWatermark = low
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
