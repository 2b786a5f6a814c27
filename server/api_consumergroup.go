package server

import "github.com/twmb/franz-go/pkg/kmsg"

// The KIP-848 consumer group protocol, in which the broker assigns
// partitions.
func init() {
	register(kmsg.ConsumerGroupHeartbeat, 0, 1, (*Server).handleConsumerGroupHeartbeat)
	register(kmsg.ConsumerGroupDescribe, 0, 1, (*Server).handleConsumerGroupDescribe)
}

func (s *Server) handleConsumerGroupHeartbeat(r *request) (kmsg.Response, error) {
	return s.groups.ConsumerGroupHeartbeat(groupContext(r), r.kreq.(*kmsg.ConsumerGroupHeartbeatRequest)), nil
}

func (s *Server) handleConsumerGroupDescribe(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	req.Groups = distinctStrings(req.Groups) // as DescribeGroups
	return s.groups.ConsumerGroupDescribe(groupContext(r), req), nil
}
