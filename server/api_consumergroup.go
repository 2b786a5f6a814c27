package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The KIP-848 consumer group protocol, in which the broker assigns
// partitions.
func init() {
	register(kmsg.ConsumerGroupHeartbeat, 0, 1, (*Server).handleConsumerGroupHeartbeat)
	register(kmsg.ConsumerGroupDescribe, 0, 1, (*Server).handleConsumerGroupDescribe)
}

// consumerProtocolOff is the message Kafka answers the KIP-848 APIs with
// when group.version is finalized below 1 (UnsupportedVersionException's
// default message).
const consumerProtocolOff = "The version of API is not supported."

// consumerProtocolEnabled is Kafka's isConsumerGroupProtocolEnabled: the
// consumer protocol is served while group.version >= 1 is finalized.
func (s *Server) consumerProtocolEnabled() bool { return s.meta.featureLevel("group.version") >= 1 }

func (s *Server) handleConsumerGroupHeartbeat(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	if !s.consumerProtocolEnabled() {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedVersion.Code, kmsg.StringPtr(consumerProtocolOff)
		return resp, nil
	}
	return s.groups.ConsumerGroupHeartbeat(groupContext(r), req), nil
}

func (s *Server) handleConsumerGroupDescribe(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	req.Groups = distinctStrings(req.Groups) // as DescribeGroups
	if !s.consumerProtocolEnabled() {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
		for _, g := range req.Groups {
			dg := kmsg.NewConsumerGroupDescribeResponseGroup()
			dg.Group, dg.ErrorCode, dg.ErrorMessage = g, kerr.UnsupportedVersion.Code, kmsg.StringPtr(consumerProtocolOff)
			resp.Groups = append(resp.Groups, dg)
		}
		return resp, nil
	}
	return s.groups.ConsumerGroupDescribe(groupContext(r), req), nil
}
