package server

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.CreatePartitions, 0, 3, (*Server).handleCreatePartitions) }

// handleCreatePartitions grows topics; partitions can only be added, and on
// a single node every new partition's replicas are exactly this node.
func (s *Server) handleCreatePartitions(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	// As for CreateTopics, Kafka fails the whole request if it would write
	// more than maxRecordsPerUserOp partition records.
	var added int64
	for _, rt := range req.Topics {
		if v, ok := s.meta.view(rt.Topic); ok && seen[rt.Topic] == 1 && !v.internal && rt.Count > v.partitions {
			added += int64(rt.Count - v.partitions)
		}
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if added > maxRecordsPerUserOp {
			st.ErrorCode = kerr.PolicyViolation.Code
			st.ErrorMessage = kmsg.StringPtr(excessiveBatchMessage)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		code, msg := s.createPartitions(&rt, seen[rt.Topic] > 1, req.ValidateOnly)
		if code != nil {
			st.ErrorCode = code.Code
			st.ErrorMessage = kmsg.StringPtr(msg)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (s *Server) createPartitions(rt *kmsg.CreatePartitionsRequestTopic, dup, validateOnly bool) (*kerr.Error, string) {
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
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != rt.Count-v.partitions {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("Increasing the number of partitions by %d but %d assignments provided.", rt.Count-v.partitions, len(rt.Assignment))
		}
		for _, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != s.cfg.NodeID {
				return kerr.InvalidReplicaAssignment, fmt.Sprintf("Replica assignment %v is invalid: this single-node cluster has only broker %d.", a.Replicas, s.cfg.NodeID)
			}
		}
	}
	if validateOnly {
		return nil, ""
	}
	if err := s.meta.addPartitions(rt.Topic, rt.Count); err != nil {
		if err == errUnknownTopic {
			return kerr.UnknownTopicOrPartition, fmt.Sprintf("Topic '%s' does not exist.", rt.Topic)
		}
		s.log.Error().Err(err).Str("topic", rt.Topic).Msg("adding partitions")
		return kerr.UnknownServerError, err.Error()
	}
	return nil, ""
}
