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

// debuggingReplicaID may ask a follower (Kafka's
// ListOffsetsRequest.DEBUGGING_REPLICA_ID); everyone else must ask the
// leader.
const debuggingReplicaID = -2

// handleOffsetForLeaderEpoch answers from the log's leader-epoch cache
// (KIP-101) as Kafka's Partition.lastOffsetForLeaderEpoch does: first the
// CurrentLeaderEpoch check (older: FENCED_LEADER_EPOCH, newer:
// UNKNOWN_LEADER_EPOCH), then leadership (NOT_LEADER_OR_FOLLOWER), then
// the end of the largest epoch not above the one asked for (the newest
// ends at the log end); an epoch the log cannot place is answered with
// undefined epoch and offset and no error.
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
			if p == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if code := s.checkLeaderEpoch(p, rp.CurrentLeaderEpoch, req.ReplicaID != debuggingReplicaID); code != nil {
				sp.ErrorCode = code.Code
			} else {
				sp.LeaderEpoch, sp.EndOffset = p.Log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// checkLeaderEpoch is Kafka's checkCurrentLeaderEpoch followed by the
// leadership check: a client's epoch older than the partition's is fenced,
// a newer one unknown (this broker has not learned of it yet), -1 skips
// the check; then, if requireLeader, only the leader answers.
func (s *Server) checkLeaderEpoch(p *partition, current int32, requireLeader bool) *kerr.Error {
	switch {
	case current >= 0 && current < p.LeaderEpoch:
		return kerr.FencedLeaderEpoch
	case current > p.LeaderEpoch:
		return kerr.UnknownLeaderEpoch
	case requireLeader && p.Leader != s.cfg.NodeID:
		return kerr.NotLeaderForPartition
	}
	return nil
}
