package server

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.Metadata, 0, 13, (*Server).handleMetadata)
	beforeDecode[int16(kmsg.Metadata)] = collapseMetadataTopics
}

// authorizedOperationsOmitted is Kafka's value for "not requested".
const authorizedOperationsOmitted = -2147483648

func (s *Server) handleMetadata(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)

	b := kmsg.NewMetadataResponseBroker()
	b.NodeID = s.cfg.NodeID
	b.Host, b.Port = s.advertisedFor(r)
	resp.Brokers = append(resp.Brokers, b)
	resp.Brokers = append(resp.Brokers, s.peerBrokers()...)
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
	autoCreate := allowCreate && s.cfg.autoCreateTopics && s.autoCreateRecords(req.Topics) <= maxRecordsPerUserOp
	// Kafka answers each distinct topic once (it turns the list into a
	// set), so a request repeating a name cannot multiply the response.
	seenNames := make(map[string]bool, len(req.Topics))
	seenIDs := make(map[[16]byte]bool)
	for _, rt := range req.Topics {
		var name string
		switch {
		case rt.Topic != nil && seenNames[*rt.Topic], rt.Topic == nil && seenIDs[rt.TopicID]:
			continue
		case rt.Topic != nil:
			seenNames[*rt.Topic] = true
		default:
			seenIDs[rt.TopicID] = true
		}
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
			name = t.Name
		default:
			// An empty name is not a valid topic: Kafka answers it by name
			// with INVALID_TOPIC_EXCEPTION (Topic.validate).
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.ErrorCode = kerr.InvalidTopicException.Code
			mt.AuthorizedOperations = authorizedOperationsOmitted
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if _, ok := s.meta.view(name); !ok && autoCreate {
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

// autoCreateRecords counts the metadata records that auto-creating the
// missing topics named in a Metadata request would write. Kafka sends them
// to its controller as one CreateTopics, which fails whole beyond
// maxRecordsPerUserOp; the Metadata answer for each is then
// UNKNOWN_TOPIC_OR_PARTITION, as for any missing topic. Creating topics is
// disk work, so this also bounds what one request can make the broker do.
func (s *Server) autoCreateRecords(topics []kmsg.MetadataRequestTopic) int64 {
	var n int64
	seen := make(map[string]bool)
	for _, rt := range topics {
		if rt.Topic == nil || seen[*rt.Topic] {
			continue
		}
		name := *rt.Topic
		seen[name] = true
		if validateTopicName(name) != nil || isInternalTopic(name) {
			continue
		}
		if _, ok := s.meta.view(name); !ok {
			n += 1 + int64(s.cfg.numPartitions)
		}
	}
	return n
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
	t, ok := s.meta.topic(name)
	if !ok {
		// A name no topic could have is INVALID_TOPIC_EXCEPTION, as in
		// Kafka's KafkaApis.getTopicMetadata, not merely unknown.
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if validateTopicName(name) != nil {
			mt.ErrorCode = kerr.InvalidTopicException.Code
		}
		return mt
	}
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	for _, tp := range t.Partitions {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition = tp.Index
		p.Leader = tp.Leader
		p.LeaderEpoch = tp.LeaderEpoch
		p.Replicas = slices.Clone(tp.Replicas)
		p.ISR = slices.Clone(tp.ISR)
		p.OfflineReplicas = []int32{}
		mt.Partitions = append(mt.Partitions, p)
	}
	return mt
}
