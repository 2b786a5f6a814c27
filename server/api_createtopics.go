package server

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/skiffmq/skiff/clusterstate"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.CreateTopics, 2, 7, (*Server).handleCreateTopics) }

// maxTopicNameLength is Kafka's limit (255 minus room for partition suffixes).
const maxTopicNameLength = 249

// maxPartitionsPerRequest is Kafka's MAX_PARTITIONS_PER_BATCH
// (ReplicationControlManager): a CreateTopics request that would create
// more partitions in total is refused whole, before any work, because
// such requests exhausted memory there and file descriptors here.
const maxPartitionsPerRequest = 10_000

// errExcessivePartitions is Kafka's message for that refusal.
const errExcessivePartitions = "Excessively large number of partitions per request."

func (s *Server) handleCreateTopics(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)

	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	tooMany := s.requestedPartitions(req.Topics, seen) > maxPartitionsPerRequest
	if !tooMany && s.createTopicsRecords(req, seen) > maxRecordsPerUserOp {
		// Kafka's controller fails the whole operation when it would write
		// more metadata records than it allows, so every topic gets it.
		for _, rt := range req.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic = rt.Topic
			st.NumPartitions, st.ReplicationFactor = -1, -1
			st.ErrorCode = kerr.PolicyViolation.Code
			st.ErrorMessage = kmsg.StringPtr(errExcessiveBatch)
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}

	// pending maps a topic to create to its place in the response, so
	// that every topic of the request is created (and persisted) at once.
	var specs []newTopic
	var pending []int
	quota := s.mutationQuotaFor(r, createTopicsStrictQuota)
	defer quota.done(r)
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
		if tooMany {
			fail(kerr.PolicyViolation, errExcessivePartitions)
			continue
		}
		partitions, repl, replicas, configs, kerrCode, msg := s.validateNewTopic(&rt)
		if kerrCode != nil {
			fail(kerrCode, msg)
			continue
		}
		if _, exists := s.meta.view(rt.Topic); exists {
			fail(kerr.TopicAlreadyExists, fmt.Sprintf("Topic '%s' already exists.", rt.Topic))
			continue
		}
		// Counted for validate-only requests too, as Kafka's controller
		// does (it builds the records, then drops them).
		if !quota.record(partitions) {
			fail(kerr.ThrottlingQuotaExceeded, kerr.ThrottlingQuotaExceeded.Description)
			continue
		}
		if req.ValidateOnly {
			if clash := s.meta.collidingTopic(rt.Topic); clash != "" {
				fail(kerr.InvalidTopicException, fmt.Sprintf("Topic '%s' collides with existing topic: %s", rt.Topic, clash))
				continue
			}
		} else {
			specs = append(specs, newTopic{name: rt.Topic, partitions: partitions, configs: configs, replication: repl, replicas: replicas})
			pending = append(pending, len(resp.Topics))
		}
		st.NumPartitions, st.ReplicationFactor = partitions, repl
		if req.Version >= 5 {
			st.Configs = s.createdTopicConfigs(configs)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(specs) == 0 {
		return resp, nil
	}
	for i, res := range s.meta.createTopics(specs) {
		st := &resp.Topics[pending[i]]
		var code *kerr.Error
		switch {
		case res.err == nil:
			st.TopicID = res.view.id
			continue
		case errors.Is(res.err, errTopicExists):
			code, st.ErrorMessage = kerr.TopicAlreadyExists, kmsg.StringPtr(fmt.Sprintf("Topic '%s' already exists.", st.Topic))
		case errors.Is(res.err, errTopicCollision):
			code, st.ErrorMessage = kerr.InvalidTopicException, kmsg.StringPtr(res.err.Error())
		case errors.Is(res.err, clusterstate.ErrInvalidReplicationFactor):
			// A broker left between the check and the placement.
			code, st.ErrorMessage = kerr.InvalidReplicationFactor, kmsg.StringPtr(res.err.Error())
		default:
			s.log.Error().Err(res.err).Str("topic", st.Topic).Msg("creating topic")
			code, st.ErrorMessage = kerr.UnknownServerError, kmsg.StringPtr(res.err.Error())
		}
		st.ErrorCode = code.Code
		st.NumPartitions, st.ReplicationFactor, st.Configs = -1, -1, nil
	}
	return resp, nil
}

// maxRecordsPerUserOp is Kafka's bound on the metadata records one admin
// operation may write (QuorumController.MAX_RECORDS_PER_USER_OP): past it
// the operation fails whole with POLICY_VIOLATION (errExcessiveBatch).
const maxRecordsPerUserOp = 10_000

// createTopicsRecords counts the records Kafka's controller would write
// for the topics of req that it would create: a topic record, one per
// partition and one per config.
func (s *Server) createTopicsRecords(req *kmsg.CreateTopicsRequest, seen map[string]int) int64 {
	var n int64
	for i := range req.Topics {
		rt := &req.Topics[i]
		if seen[rt.Topic] > 1 {
			continue
		}
		partitions, _, _, configs, code, _ := s.validateNewTopic(rt)
		if code != nil {
			continue
		}
		if _, exists := s.meta.view(rt.Topic); exists {
			continue
		}
		n += 1 + int64(partitions) + int64(len(configs))
	}
	return n
}

// requestedPartitions is the upper bound Kafka's controller puts on what a
// CreateTopics request creates (validateTotalNumberOfPartitions): each
// topic's count, the broker default for -1, or its number of assignments.
// Duplicated topics are refused on their own and not counted.
func (s *Server) requestedPartitions(topics []kmsg.CreateTopicsRequestTopic, seen map[string]int) int64 {
	var total int64
	for _, rt := range topics {
		switch {
		case seen[rt.Topic] > 1:
		case len(rt.ReplicaAssignment) > 0:
			total += int64(len(rt.ReplicaAssignment))
		case rt.NumPartitions == -1:
			total += int64(s.cfg.numPartitions)
		case rt.NumPartitions > 0:
			total += int64(rt.NumPartitions)
		}
	}
	return total
}

// validateNewTopic applies Kafka's CreateTopics checks to one topic and
// resolves -1 defaults.
func (s *Server) validateNewTopic(rt *kmsg.CreateTopicsRequestTopic) (partitions int32, repl int16, replicas [][]int32, configs map[string]string, code *kerr.Error, msg string) {
	if err := validateTopicName(rt.Topic); err != nil {
		return 0, 0, nil, nil, kerr.InvalidTopicException, err.Error()
	}
	partitions, repl = rt.NumPartitions, rt.ReplicationFactor
	if len(rt.ReplicaAssignment) > 0 {
		if partitions != -1 || repl != -1 {
			return 0, 0, nil, nil, kerr.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
		}
		sort.Slice(rt.ReplicaAssignment, func(i, j int) bool {
			return rt.ReplicaAssignment[i].Partition < rt.ReplicaAssignment[j].Partition
		})
		live := s.liveBrokers()
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return 0, 0, nil, nil, kerr.InvalidReplicaAssignment, "Partitions should be a consecutive 0-based integer sequence"
			}
			if live == nil {
				if len(a.Replicas) != 1 || a.Replicas[0] != s.cfg.NodeID {
					return 0, 0, nil, nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("Replica assignment for partition %d must be exactly [%d] on this single-node cluster", a.Partition, s.cfg.NodeID)
				}
				continue
			}
			// Kafka's controller (ReplicationControlManager) checks the
			// same: replicas on registered brokers, none twice, and as
			// many for every partition.
			if len(a.Replicas) == 0 || len(a.Replicas) != len(rt.ReplicaAssignment[0].Replicas) {
				return 0, 0, nil, nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).", len(a.Replicas), len(rt.ReplicaAssignment[0].Replicas))
			}
			seenReplica := map[int32]bool{}
			for _, id := range a.Replicas {
				if seenReplica[id] {
					return 0, 0, nil, nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes the broker %d more than once.", id)
				}
				seenReplica[id] = true
				if !live[id] {
					return 0, 0, nil, nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", id)
				}
			}
			replicas = append(replicas, slices.Clone(a.Replicas))
		}
		partitions, repl = int32(len(rt.ReplicaAssignment)), int16(len(rt.ReplicaAssignment[0].Replicas))
	}
	if partitions == -1 {
		partitions = s.cfg.numPartitions
	}
	if repl == -1 {
		repl = s.cfg.defaultReplication
	}
	if partitions <= 0 {
		return 0, 0, nil, nil, kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value."
	}
	if repl <= 0 {
		return 0, 0, nil, nil, kerr.InvalidReplicationFactor, "Replication factor must be larger than 0."
	}
	if n := s.liveBrokerCount(); int(repl) > n {
		return 0, 0, nil, nil, kerr.InvalidReplicationFactor, fmt.Sprintf("Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are registered.", repl, repl, n)
	}
	configs = make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			return 0, 0, nil, nil, kerr.InvalidConfig, fmt.Sprintf("Null value not supported for topic configs: %s", c.Name)
		}
		d, ok := findTopicConfig(c.Name)
		if !ok {
			return 0, 0, nil, nil, kerr.InvalidConfig, fmt.Sprintf("Unknown topic config name: %s", c.Name)
		}
		if err := d.validateValue(*c.Value); err != nil {
			return 0, 0, nil, nil, kerr.InvalidConfig, err.Error()
		}
		configs[c.Name] = *c.Value
	}
	if err := validateTopicConfigSet(configs, s.cfg.topicDefaults); err != nil {
		return 0, 0, nil, nil, kerr.InvalidConfig, err.Error()
	}
	return partitions, repl, replicas, configs, nil, ""
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
