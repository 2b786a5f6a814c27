package server

import (
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.CreateTopics, 2, 7, (*Server).handleCreateTopics) }

// maxTopicNameLength is Kafka's limit (255 minus room for partition suffixes).
const maxTopicNameLength = 249

func (s *Server) handleCreateTopics(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)

	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(e *kerr.Error, msg string) {
			st.ErrorCode = e.Code
			st.ErrorMessage = kmsg.StringPtr(msg)
			resp.Topics = append(resp.Topics, st)
		}
		if seen[rt.Topic] > 1 {
			fail(kerr.InvalidRequest, fmt.Sprintf("Create topics request from client `%s` contains multiple entries for the following topics: %s", r.clientID, rt.Topic))
			continue
		}
		partitions, repl, configs, kerrCode, msg := s.validateNewTopic(&rt)
		if kerrCode != nil {
			fail(kerrCode, msg)
			continue
		}
		if _, exists := s.meta.view(rt.Topic); exists {
			fail(kerr.TopicAlreadyExists, fmt.Sprintf("Topic '%s' already exists.", rt.Topic))
			continue
		}
		var id [16]byte
		if !req.ValidateOnly {
			v, err := s.meta.createTopic(rt.Topic, partitions, configs)
			switch {
			case errors.Is(err, errTopicExists):
				fail(kerr.TopicAlreadyExists, fmt.Sprintf("Topic '%s' already exists.", rt.Topic))
				continue
			case errors.Is(err, errTopicCollision):
				fail(kerr.InvalidTopicException, err.Error())
				continue
			case err != nil:
				s.log.Error().Err(err).Str("topic", rt.Topic).Msg("creating topic")
				fail(kerr.UnknownServerError, err.Error())
				continue
			}
			id = v.id
		} else if clash := s.meta.collidingTopic(rt.Topic); clash != "" {
			fail(kerr.InvalidTopicException, fmt.Sprintf("Topic '%s' collides with existing topic: %s", rt.Topic, clash))
			continue
		}
		st.TopicID = id
		st.NumPartitions, st.ReplicationFactor = partitions, repl
		if req.Version >= 5 {
			st.Configs = s.createdTopicConfigs(configs)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// validateNewTopic applies Kafka's CreateTopics checks to one topic and
// resolves -1 defaults.
func (s *Server) validateNewTopic(rt *kmsg.CreateTopicsRequestTopic) (partitions int32, repl int16, configs map[string]string, code *kerr.Error, msg string) {
	if err := validateTopicName(rt.Topic); err != nil {
		return 0, 0, nil, kerr.InvalidTopicException, err.Error()
	}
	partitions, repl = rt.NumPartitions, rt.ReplicationFactor
	if len(rt.ReplicaAssignment) > 0 {
		if partitions != -1 || repl != -1 {
			return 0, 0, nil, kerr.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
		}
		sort.Slice(rt.ReplicaAssignment, func(i, j int) bool {
			return rt.ReplicaAssignment[i].Partition < rt.ReplicaAssignment[j].Partition
		})
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return 0, 0, nil, kerr.InvalidReplicaAssignment, "Partitions should be a consecutive 0-based integer sequence"
			}
			if len(a.Replicas) != 1 || a.Replicas[0] != s.cfg.NodeID {
				return 0, 0, nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("Replica assignment for partition %d must be exactly [%d] on this single-node cluster", a.Partition, s.cfg.NodeID)
			}
		}
		partitions, repl = int32(len(rt.ReplicaAssignment)), 1
	}
	if partitions == -1 {
		partitions = s.cfg.numPartitions
	}
	if repl == -1 {
		repl = s.cfg.defaultReplication
	}
	if partitions <= 0 {
		return 0, 0, nil, kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value."
	}
	if repl <= 0 {
		return 0, 0, nil, kerr.InvalidReplicationFactor, "Replication factor must be larger than 0."
	}
	if repl > 1 {
		return 0, 0, nil, kerr.InvalidReplicationFactor, fmt.Sprintf("Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only 1 broker(s) are registered.", repl, repl)
	}
	configs = make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			return 0, 0, nil, kerr.InvalidConfig, fmt.Sprintf("Null value not supported for topic configs: %s", c.Name)
		}
		d, ok := findTopicConfig(c.Name)
		if !ok {
			return 0, 0, nil, kerr.InvalidConfig, fmt.Sprintf("Unknown topic config name: %s", c.Name)
		}
		if err := d.validateValue(*c.Value); err != nil {
			return 0, 0, nil, kerr.InvalidConfig, err.Error()
		}
		configs[c.Name] = *c.Value
	}
	return partitions, repl, configs, nil, ""
}

// createdTopicConfigs lists a new topic's effective configs (CreateTopics v5+).
func (s *Server) createdTopicConfigs(overrides map[string]string) []kmsg.CreateTopicsResponseTopicConfig {
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(topicConfigDefs))
	for _, d := range topicConfigDefs {
		if d.internal {
			continue
		}
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = d.name
		v, src := s.cfg.topicDefaults[d.name], kmsg.ConfigSourceDefaultConfig
		if s.cfg.staticTopicDefaults[d.name] {
			src = kmsg.ConfigSourceStaticBrokerConfig
		}
		if ov, ok := overrides[d.name]; ok {
			v, src = ov, kmsg.ConfigSourceDynamicTopicConfig
		}
		c.Value = kmsg.StringPtr(v)
		c.Source = int8(src)
		out = append(out, c)
	}
	return out
}

// validateTopicName applies Kafka's topic name rules.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("Topic name is illegal, it can't be empty")
	case name == "." || name == "..":
		return errors.New("Topic name cannot be \".\" or \"..\"")
	case len(name) > maxTopicNameLength:
		return fmt.Errorf("Topic name is illegal, it can't be longer than %d characters, topic name: %s", maxTopicNameLength, name)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("Topic name %q is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}
