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
	for _, rt := range collapseDeleteRecords(req.Topics) {
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
					offset = p.Log.HighWatermark()
				}
				low, err := p.Log.DeleteRecordsBefore(offset)
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

// collapseDeleteRecords keeps one entry per partition, the last offset
// asked for winning, and one per topic, as Kafka collects the request in
// a map by partition: each entry moves the log start and writes its
// checkpoint, so a repeated partition must not do that over and over.
func collapseDeleteRecords(topics []kmsg.DeleteRecordsRequestTopic) []kmsg.DeleteRecordsRequestTopic {
	type at struct{ topic, partition int }
	type topicPartition struct {
		topic     string
		partition int32
	}
	topicAt := make(map[string]int, len(topics))
	partAt := make(map[topicPartition]at)
	var out []kmsg.DeleteRecordsRequestTopic
	for _, rt := range topics {
		ti, ok := topicAt[rt.Topic]
		if !ok {
			ti = len(out)
			topicAt[rt.Topic] = ti
			out = append(out, kmsg.DeleteRecordsRequestTopic{Topic: rt.Topic})
		}
		for _, rp := range rt.Partitions {
			k := topicPartition{rt.Topic, rp.Partition}
			if a, dup := partAt[k]; dup {
				out[a.topic].Partitions[a.partition].Offset = rp.Offset
				continue
			}
			partAt[k] = at{ti, len(out[ti].Partitions)}
			out[ti].Partitions = append(out[ti].Partitions, rp)
		}
	}
	return out
}
