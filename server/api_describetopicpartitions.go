package server

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeTopicPartitions, 0, 0, (*Server).handleDescribeTopicPartitions) }

// maxDescribePartitions is Kafka's max.request.partition.size.limit default.
const maxDescribePartitions = 2000

// handleDescribeTopicPartitions (KIP-966) describes topics in name order,
// at most response_partition_limit partitions per response, and says where
// to continue with next_cursor.
func (s *Server) handleDescribeTopicPartitions(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeTopicPartitionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	limit := req.ResponsePartitionLimit
	if limit <= 0 || limit > maxDescribePartitions {
		limit = maxDescribePartitions
	}

	var names []string
	explicit := len(req.Topics) > 0
	if explicit {
		for _, t := range req.Topics {
			names = append(names, t.Topic)
		}
		slices.Sort(names)
		names = slices.Compact(names)
	} else {
		names = s.meta.topicNames()
	}
	startTopic, startPart := "", int32(0)
	if req.Cursor != nil {
		startTopic, startPart = req.Cursor.Topic, max(req.Cursor.Partition, 0)
	}

	var used int32
	for i, name := range names {
		if name < startTopic {
			continue
		}
		first := int32(0)
		if name == startTopic {
			first = startPart
		}
		mt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		mt.Topic = kmsg.StringPtr(name)
		// Kafka always reports the topic operations the caller may
		// perform here (the request cannot opt out); without an
		// authorizer that is every one.
		mt.AuthorizedOperations = operationsBitfield(topicOperations)
		v, ok := s.meta.view(name)
		if !ok {
			if explicit {
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				resp.Topics = append(resp.Topics, mt)
			}
			continue
		}
		mt.TopicID, mt.IsInternal = v.id, v.internal
		p := first
		for ; p < v.partitions && used < limit; p++ {
			tp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
			tp.Partition, tp.LeaderID, tp.LeaderEpoch = p, s.cfg.NodeID, partitionLeaderEpoch
			tp.Replicas, tp.ISR = []int32{s.cfg.NodeID}, []int32{s.cfg.NodeID}
			if a := s.meta.partition(name, p); a != nil {
				// The published assignment (this node alone, epoch 0, on
				// a single node).
				tp.LeaderID, tp.LeaderEpoch = a.Leader, a.LeaderEpoch
				tp.Replicas, tp.ISR = slices.Clone(a.Replicas), slices.Clone(a.ISR)
			}
			tp.EligibleLeaderReplicas, tp.LastKnownELR, tp.OfflineReplicas = []int32{}, []int32{}, []int32{}
			mt.Partitions = append(mt.Partitions, tp)
			used++
		}
		resp.Topics = append(resp.Topics, mt)
		if used >= limit {
			next := kmsg.NewDescribeTopicPartitionsResponseNextCursor()
			switch {
			case p < v.partitions:
				next.Topic, next.Partition = name, p
			case i+1 < len(names):
				next.Topic, next.Partition = names[i+1], 0
			default:
				return resp, nil
			}
			resp.NextCursor = &next
			return resp, nil
		}
	}
	return resp, nil
}
