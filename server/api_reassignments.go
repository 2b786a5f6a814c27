package server

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Partition reassignment, answered as a one-node cluster: every partition
// lives on this node, the only valid assignment is [this node], and no
// reassignment is ever in progress.
func init() {
	register(kmsg.AlterPartitionAssignments, 0, 1, (*Server).handleAlterPartitionAssignments)
	register(kmsg.ListPartitionReassignments, 0, 0, (*Server).handleListPartitionReassignments)
}

func (s *Server) handleAlterPartitionAssignments(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	// v1 (KIP-860) echoes whether the replication factor may change.
	// With one broker no assignment can change it: any other replica set
	// names an unknown broker or one broker twice, refused below.
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			code, msg := s.checkReassignment(rt.Topic, rp.Partition, rp.Replicas)
			if code != nil {
				sp.ErrorCode, sp.ErrorMessage = code.Code, kmsg.StringPtr(msg)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (s *Server) checkReassignment(topic string, partition int32, replicas []int32) (*kerr.Error, string) {
	if s.meta.partition(topic, partition) == nil {
		return kerr.UnknownTopicOrPartition, "The partition does not exist."
	}
	switch {
	case replicas == nil: // cancel
		return kerr.NoReassignmentInProgress, fmt.Sprintf("No ongoing reassignment for %s-%d.", topic, partition)
	case len(replicas) == 0:
		return kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."
	}
	for _, id := range replicas {
		if id != s.cfg.NodeID {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", id)
		}
	}
	if len(replicas) > 1 {
		return kerr.InvalidReplicaAssignment, "The manual partition assignment includes the same replica more than once."
	}
	return nil, "" // already assigned so: nothing to move
}

func (s *Server) handleListPartitionReassignments(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListPartitionReassignmentsRequest)
	return req.ResponseKind(), nil
}
