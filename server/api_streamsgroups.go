package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/coordinator"
)

// Streams groups (KIP-1071): Kafka Streams applications with
// group.protocol=streams. Kafka 4.2 serves v0 of both APIs and finalizes
// streams.version 1 on new clusters; at 0 the APIs answer
// UNSUPPORTED_VERSION, as KafkaApis does when isStreamsGroupProtocolEnabled
// is false, and stay in ApiVersions.
func init() {
	register(kmsg.StreamsGroupHeartbeat, 0, 0, (*Server).handleStreamsGroupHeartbeat)
	register(kmsg.StreamsGroupDescribe, 0, 0, (*Server).handleStreamsGroupDescribe)
}

const streamsVersionFeature = "streams.version"

// streamsProtocolOff is Kafka's message when streams.version is 0.
const streamsProtocolOff = "The version of API is not supported."

func (s *Server) streamsGroupsEnabled() bool { return s.meta.featureLevel(streamsVersionFeature) >= 1 }

func (s *Server) handleStreamsGroupHeartbeat(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.StreamsGroupHeartbeatRequest)
	if !s.streamsGroupsEnabled() {
		resp := req.ResponseKind().(*kmsg.StreamsGroupHeartbeatResponse)
		resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedVersion.Code, kmsg.StringPtr(streamsProtocolOff)
		return resp, nil
	}
	return s.groups.StreamsGroupHeartbeat(groupContext(r), req), nil
}

func (s *Server) handleStreamsGroupDescribe(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.StreamsGroupDescribeRequest)
	req.Groups = distinctStrings(req.Groups)
	if !s.streamsGroupsEnabled() {
		resp := req.ResponseKind().(*kmsg.StreamsGroupDescribeResponse)
		for _, g := range req.Groups {
			dg := kmsg.NewStreamsGroupDescribeResponseGroup()
			dg.Group, dg.ErrorCode, dg.ErrorMessage = g, kerr.UnsupportedVersion.Code, kmsg.StringPtr(streamsProtocolOff)
			resp.Groups = append(resp.Groups, dg)
		}
		return resp, nil
	}
	return s.groups.StreamsGroupDescribe(groupContext(r), req), nil
}

// createStreamsTopics creates the repartition and changelog topics a
// streams group needs, with the partition counts and configs its topology
// asks for, as Kafka's broker does after a heartbeat. Configs the broker
// refuses are dropped rather than failing the creation; a topic that
// someone else created in between is fine.
func (s *Server) createStreamsTopics(topics []coordinator.StreamsInternalTopic) {
	specs := make([]newTopic, 0, len(topics))
	for _, it := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = it.Name, it.Partitions, -1
		for k, v := range it.Configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		partitions, _, _, configs, code, msg := s.validateNewTopic(&rt)
		if code != nil && len(rt.Configs) > 0 {
			s.log.Warn().Str("topic", it.Name).Str("error", msg).Msg("streams internal topic configs refused; creating it with the defaults")
			rt.Configs = nil
			partitions, _, _, configs, code, msg = s.validateNewTopic(&rt)
		}
		if code != nil {
			s.log.Warn().Str("topic", it.Name).Str("error", msg).Msg("cannot create streams internal topic")
			continue
		}
		specs = append(specs, newTopic{name: it.Name, partitions: partitions, configs: configs})
	}
	for i, res := range s.meta.createTopics(specs) {
		if res.err != nil && res.err != errTopicExists {
			s.log.Warn().Err(res.err).Str("topic", specs[i].name).Msg("creating streams internal topic")
		}
	}
}
