package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch v0-v1 were removed in Kafka 4.0 (KIP-896).
func init() { register(kmsg.OffsetForLeaderEpoch, 2, 4, (*Server).handleOffsetForLeaderEpoch) }

// Kafka's "undefined" epoch and end offset.
const (
	undefinedEpoch       = -1
	undefinedEpochOffset = -1
)

// handleOffsetForLeaderEpoch answers from the fact that every batch is
// written at leader epoch 0 (partitionLeaderEpoch) and the epoch never
// changes: epoch 0 ends at the log's visible end; a later epoch is unknown
// to the log, which Kafka answers with an undefined epoch and offset. The
// answer depends on nothing but the log, so it is the same after a restart.
func (s *Server) handleOffsetForLeaderEpoch(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = undefinedEpoch, undefinedEpochOffset
			p := s.meta.partition(rt.Topic, rp.Partition)
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.CurrentLeaderEpoch > partitionLeaderEpoch:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			case rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < partitionLeaderEpoch:
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case rp.LeaderEpoch == partitionLeaderEpoch:
				sp.LeaderEpoch, sp.EndOffset = partitionLeaderEpoch, p.Log.HighWatermark()
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
