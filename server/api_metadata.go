package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.Metadata, 0, 13, (*Server).handleMetadata) }

// authorizedOperationsOmitted is Kafka's value for "not requested".
const authorizedOperationsOmitted = -2147483648

func (s *Server) handleMetadata(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)

	b := kmsg.NewMetadataResponseBroker()
	b.NodeID = s.cfg.NodeID
	b.Host, b.Port = s.advertisedFor(r)
	resp.Brokers = append(resp.Brokers, b)
	clusterID := s.meta.clusterID()
	resp.ClusterID = &clusterID
	resp.ControllerID = s.cfg.NodeID
	resp.AuthorizedOperations = authorizedOperationsOmitted

	// v0: an empty list means all topics; v1+: null means all topics.
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	// v0-v3 always allow auto-creation; v4+ say so in the request.
	allowCreate := req.Version < 4 || req.AllowAutoTopicCreation
	if all {
		for _, name := range s.meta.topicNames() {
			resp.Topics = append(resp.Topics, s.metadataTopic(req, name))
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		var name string
		switch {
		case rt.Topic != nil && *rt.Topic != "":
			name = *rt.Topic
		case rt.TopicID != [16]byte{}:
			t, ok := s.meta.topicByID(rt.TopicID)
			if !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				mt.AuthorizedOperations = authorizedOperationsOmitted
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			name = t.name
		default:
			mt := kmsg.NewMetadataResponseTopic()
			mt.ErrorCode = kerr.InvalidTopicException.Code
			mt.AuthorizedOperations = authorizedOperationsOmitted
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if _, ok := s.meta.view(name); !ok && allowCreate && s.cfg.autoCreateTopics {
			if code := s.autoCreateTopic(name); code != 0 {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = kmsg.StringPtr(name)
				mt.ErrorCode = code
				mt.AuthorizedOperations = authorizedOperationsOmitted
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		resp.Topics = append(resp.Topics, s.metadataTopic(req, name))
	}
	return resp, nil
}

// autoCreateTopic creates a topic with the broker defaults on first use, as
// auto.create.topics.enable does. It returns a Kafka error code.
func (s *Server) autoCreateTopic(name string) int16 {
	if err := validateTopicName(name); err != nil {
		return kerr.InvalidTopicException.Code
	}
	if isInternalTopic(name) {
		return kerr.UnknownTopicOrPartition.Code
	}
	_, err := s.meta.createTopic(name, s.cfg.numPartitions, nil)
	switch {
	case err == nil, err == errTopicExists:
		return 0
	default:
		s.log.Warn().Err(err).Str("topic", name).Msg("auto-creating topic")
		return kerr.InvalidTopicException.Code
	}
}

func (s *Server) metadataTopic(req *kmsg.MetadataRequest, name string) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(name)
	mt.AuthorizedOperations = authorizedOperationsOmitted
	if req.IncludeTopicAuthorizedOperations {
		mt.AuthorizedOperations = operationsBitfield(topicOperations)
	}
	v, ok := s.meta.view(name)
	if !ok {
		// A name no topic could have is INVALID_TOPIC_EXCEPTION, as in
		// Kafka's KafkaApis.getTopicMetadata, not merely unknown.
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if validateTopicName(name) != nil {
			mt.ErrorCode = kerr.InvalidTopicException.Code
		}
		return mt
	}
	mt.TopicID = v.id
	mt.IsInternal = v.internal
	for i := int32(0); i < v.partitions; i++ {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = i
		p.Leader = s.cfg.NodeID
		p.LeaderEpoch = 0
		p.Replicas = []int32{s.cfg.NodeID}
		p.ISR = []int32{s.cfg.NodeID}
		p.OfflineReplicas = []int32{}
		mt.Partitions = append(mt.Partitions, p)
	}
	return mt
}
