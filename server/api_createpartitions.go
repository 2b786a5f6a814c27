package server

import (
	"errors"
	"fmt"
	"slices"

	"github.com/skiffmq/skiff/clusterstate"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.CreatePartitions, 0, 3, (*Server).handleCreatePartitions) }

// handleCreatePartitions grows topics; partitions can only be added. On a
// single node every new partition's replicas are exactly this node; in a
// cluster they are placed on the live brokers with the topic's
// replication factor, or as the request assigns them.
func (s *Server) handleCreatePartitions(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	tooMany := s.partitionsToAdd(req.Topics, seen) > maxPartitionsPerRequest
	quota := s.mutationQuotaFor(r, createPartitionsStrictQuota)
	defer quota.done(r)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var code *kerr.Error
		var msg string
		if tooMany && seen[rt.Topic] == 1 {
			code, msg = kerr.PolicyViolation, errExcessiveBatch
		} else {
			code, msg = s.createPartitions(&rt, seen[rt.Topic] > 1, req.ValidateOnly, quota)
		}
		if code != nil {
			st.ErrorCode = code.Code
			st.ErrorMessage = kmsg.StringPtr(msg)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// errExcessiveBatch is the message of the POLICY_VIOLATION Kafka's
// controller answers when a request would write more than its
// MAX_RECORDS_PER_USER_OP (10,000) metadata records.
const errExcessiveBatch = "Unable to perform excessively large batch operation."

// partitionsToAdd is how many partitions the request would add in total
// (one metadata record each in Kafka), counting only growing topics that
// exist and appear once. It is checked before anything is created, so an
// oversized request creates nothing.
func (s *Server) partitionsToAdd(topics []kmsg.CreatePartitionsRequestTopic, seen map[string]int) int64 {
	var total int64
	for _, rt := range topics {
		if seen[rt.Topic] > 1 {
			continue
		}
		if v, ok := s.meta.view(rt.Topic); ok && rt.Count > v.partitions {
			total += int64(rt.Count - v.partitions)
		}
	}
	return total
}

func (s *Server) createPartitions(rt *kmsg.CreatePartitionsRequestTopic, dup, validateOnly bool, quota *mutationQuota) (*kerr.Error, string) {
	if dup {
		return kerr.InvalidRequest, "Duplicate topic in request."
	}
	v, ok := s.meta.view(rt.Topic)
	if !ok {
		return kerr.UnknownTopicOrPartition, fmt.Sprintf("Topic '%s' does not exist.", rt.Topic)
	}
	if v.internal {
		// The group coordinator maps groups to a fixed number of partitions.
		return kerr.InvalidRequest, fmt.Sprintf("Skiff does not add partitions to the internal topic %s.", rt.Topic)
	}
	switch {
	case rt.Count < v.partitions:
		return kerr.InvalidPartitions, fmt.Sprintf("Topic currently has %d partitions, which is higher than the requested %d.", v.partitions, rt.Count)
	case rt.Count == v.partitions:
		return kerr.InvalidPartitions, fmt.Sprintf("Topic already has %d partitions.", v.partitions)
	}
	var manual [][]int32 // in a cluster: the request's replicas of each new partition
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != rt.Count-v.partitions {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("Increasing the number of partitions by %d but %d assignments provided.", rt.Count-v.partitions, len(rt.Assignment))
		}
		live := s.liveBrokers()
		for _, a := range rt.Assignment {
			if live == nil {
				if len(a.Replicas) != 1 || a.Replicas[0] != s.cfg.NodeID {
					return kerr.InvalidReplicaAssignment, fmt.Sprintf("Replica assignment %v is invalid: this single-node cluster has only broker %d.", a.Replicas, s.cfg.NodeID)
				}
				continue
			}
			if len(a.Replicas) == 0 {
				return kerr.InvalidReplicaAssignment, "Replica assignment has no replicas."
			}
			seen := map[int32]bool{}
			for _, id := range a.Replicas {
				if seen[id] || !live[id] {
					return kerr.InvalidReplicaAssignment, fmt.Sprintf("Replica assignment %v is invalid: each replica must be a distinct registered broker.", a.Replicas)
				}
				seen[id] = true
			}
			manual = append(manual, slices.Clone(a.Replicas))
		}
	}
	if !quota.record(rt.Count - v.partitions) {
		return kerr.ThrottlingQuotaExceeded, kerr.ThrottlingQuotaExceeded.Description
	}
	if validateOnly {
		return nil, ""
	}
	if err := s.meta.addPartitions(rt.Topic, rt.Count, manual); err != nil {
		if err == errUnknownTopic {
			return kerr.UnknownTopicOrPartition, fmt.Sprintf("Topic '%s' does not exist.", rt.Topic)
		}
		if errors.Is(err, clusterstate.ErrInvalidReplicationFactor) {
			return kerr.InvalidReplicationFactor, err.Error()
		}
		s.log.Error().Err(err).Str("topic", rt.Topic).Msg("adding partitions")
		return kerr.UnknownServerError, err.Error()
	}
	return nil, ""
}
