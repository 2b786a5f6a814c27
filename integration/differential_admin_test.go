package integration

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Differential scenarios for the admin APIs: topics, partitions, configs,
// cluster, log dirs, ACLs, quotas, reassignments, features.

func init() { diffScenarioLists = append(diffScenarioLists, diffAdminScenarios) }

var diffAdminScenarios = []diffScenario{
	{name: "ApiVersions", run: func(c *diffConn) []any {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "skiff-differential", "1.0"
		resp := c.do(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
			c.t.Fatalf("%s: ApiVersions answered %v with %d keys", c.tgt.name, kerr.ErrorForCode(resp.ErrorCode), len(resp.ApiKeys))
		}
		// Compared: the error, the version range of every API key and
		// the level of every finalized feature (one element per key or
		// feature, so each difference is its own; the features' epoch is
		// the cluster's history).
		var keys []diffAPIRange
		for _, k := range resp.ApiKeys {
			keys = append(keys, diffAPIRange{Name: kmsg.NameForKey(k.ApiKey), ApiKey: k.ApiKey, Min: k.MinVersion, Max: k.MaxVersion})
		}
		var features []diffFeatureLevel
		for _, f := range resp.FinalizedFeatures {
			features = append(features, diffFeatureLevel{Name: f.Name, Min: f.MinVersionLevel, Max: f.MaxVersionLevel})
		}
		return []any{resp.ErrorCode, keys, features}
	}},
	{name: "DescribeQuorum", run: func(c *diffConn) []any {
		// The metadata partition, and one that is not: compared are the
		// errors, the leader being this node, and who votes and observes
		// (offsets and epochs are each quorum's own history).
		req := kmsg.NewPtrDescribeQuorumRequest()
		for _, p := range []int32{0, 1} {
			rt := kmsg.NewDescribeQuorumRequestTopic()
			rt.Topic = "__cluster_metadata"
			rp := kmsg.NewDescribeQuorumRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp := c.do(req).(*kmsg.DescribeQuorumResponse)
		out := []any{resp.ErrorCode}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				out = append(out, rt.Topic, rp.Partition, rp.ErrorCode)
				if rp.ErrorCode == 0 {
					out = append(out, rp.LeaderID == c.nodeID(), len(rp.CurrentVoters), len(rp.Observers))
				}
			}
		}
		return out
	}},
	{name: "WriteTxnMarkersUnknownTopic", run: func(c *diffConn) []any {
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.Committed = 4242, 0, false
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic = c.name("missing")
		mt.Partitions = []int32{0}
		m.Topics = append(m.Topics, mt)
		req.Markers = append(req.Markers, m)
		return []any{c.do(req).(*kmsg.WriteTxnMarkersResponse).Markers}
	}},
	{name: "SASLOnPlaintextListener", run: func(c *diffConn) []any {
		// The SASL requests on a listener that does not do SASL.
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = "PLAIN"
		hsResp := c.do(hs).(*kmsg.SASLHandshakeResponse)
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.SASLAuthBytes = []byte("\x00user\x00pass")
		authResp := c.do(auth).(*kmsg.SASLAuthenticateResponse)
		return []any{hsResp.ErrorCode, authResp.ErrorCode}
	}},
	{name: "UserSCRAMCredentials", run: func(c *diffConn) []any {
		user := c.name("user")
		describe := func() *kmsg.DescribeUserSCRAMCredentialsResponse {
			req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
			u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
			u.Name = user
			req.Users = append(req.Users, u)
			return c.do(req).(*kmsg.DescribeUserSCRAMCredentialsResponse)
		}
		before := describe()
		alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		up.Name, up.Mechanism, up.Iterations = user, 2, 8192 // SCRAM-SHA-512
		up.Salt, up.SaltedPassword = []byte("0123456789abcdef"), make([]byte, 64)
		alter.Upsertions = append(alter.Upsertions, up)
		low := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		low.Name, low.Mechanism, low.Iterations = c.name("weak"), 1, 10 // below the minimum
		low.Salt, low.SaltedPassword = []byte("salt"), make([]byte, 32)
		alter.Upsertions = append(alter.Upsertions, low)
		altered := c.do(alter).(*kmsg.AlterUserSCRAMCredentialsResponse)
		var after *kmsg.DescribeUserSCRAMCredentialsResponse
		for range 50 { // Kafka applies the change through its controller
			if after = describe(); len(after.Results) == 1 && after.Results[0].ErrorCode == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return []any{before.ErrorCode, before.Results, altered.Results, after.Results}
	}},
	{name: "ApiVersionsBadSoftwareName", run: func(c *diffConn) []any {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "bad name!", "1.0"
		return []any{c.do(req).(*kmsg.ApiVersionsResponse).ErrorCode}
	}},
	{name: "MetadataKnownAndUnknownTopic", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 3, nil)
		req := kmsg.NewPtrMetadataRequest()
		for _, name := range []string{topic, c.name("missing")} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
		resp := c.do(req).(*kmsg.MetadataResponse)
		return []any{len(resp.Brokers), resp.Topics}
	}},
	{name: "MetadataInvalidTopicName", run: func(c *diffConn) []any {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("bad/name")
		req.Topics = append(req.Topics, rt)
		return []any{c.do(req).(*kmsg.MetadataResponse).Topics}
	}},
	{name: "MetadataByTopicID", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 2, nil)
		req := kmsg.NewPtrMetadataRequest()
		known := kmsg.NewMetadataRequestTopic()
		known.TopicID = c.topicID(topic)
		unknown := kmsg.NewMetadataRequestTopic()
		unknown.TopicID = [16]byte{7, 7, 7}
		req.Topics = append(req.Topics, known, unknown)
		return []any{c.do(req).(*kmsg.MetadataResponse).Topics}
	}},
	{name: "CreateTopicsReplicaAssignment", run: func(c *diffConn) []any {
		node := c.nodeID()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30000
		add := func(name string, replicas ...[]int32) {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
			for i, r := range replicas {
				a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
				a.Partition, a.Replicas = int32(i), r
				rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
			}
			req.Topics = append(req.Topics, rt)
		}
		add(c.name("ok"), []int32{node}, []int32{node})
		add(c.name("no-such-broker"), []int32{node + 100})
		add(c.name("duplicate-replica"), []int32{node, node})
		resp := c.do(req).(*kmsg.CreateTopicsResponse)
		codes := map[string][2]int32{}
		for _, t := range resp.Topics {
			codes[t.Topic] = [2]int32{int32(t.ErrorCode), t.NumPartitions}
		}
		return []any{codes}
	}},
	{name: "CreateTopicsEdgeCases", run: func(c *diffConn) []any {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30000
		add := func(name string, partitions int32, repl int16, configs map[string]string) {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, repl
			for _, k := range slices.Sorted(maps.Keys(configs)) {
				cfg := kmsg.NewCreateTopicsRequestTopicConfig()
				cfg.Name, cfg.Value = k, kmsg.StringPtr(configs[k])
				rt.Configs = append(rt.Configs, cfg)
			}
			req.Topics = append(req.Topics, rt)
		}
		add(c.name("ok"), 2, 1, map[string]string{"cleanup.policy": "compact", "retention.ms": "1000"})
		add(c.name("zero-partitions"), 0, 1, nil)
		add(c.name("repl3"), 1, 3, nil)
		add(c.name("bad-config"), 1, 1, map[string]string{"no.such.config": "1"})
		add(c.name("bad-value"), 1, 1, map[string]string{"retention.ms": "soon"})
		add("bad/name", 1, 1, nil)
		add(c.name("defaults"), -1, -1, nil)
		first := c.do(req).(*kmsg.CreateTopicsResponse)
		// The same again: the created ones now exist.
		again := c.do(req).(*kmsg.CreateTopicsResponse)
		return []any{first, again}
	}},
	{name: "CreateTopicsValidateOnly", run: func(c *diffConn) []any {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.ValidateOnly, req.TimeoutMillis = true, 30000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = c.name("v"), 4, 1
		req.Topics = append(req.Topics, rt)
		resp := c.do(req)
		md := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(c.name("v"))
		md.Topics = append(md.Topics, mt)
		return []any{resp, c.do(md).(*kmsg.MetadataResponse).Topics[0].ErrorCode}
	}},
	{name: "DeleteTopicsByNameAndID", run: func(c *diffConn) []any {
		a, b := c.name("a"), c.name("b")
		c.createTopic(a, 1, nil)
		c.createTopic(b, 1, nil)
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = 30000
		byName := kmsg.NewDeleteTopicsRequestTopic()
		byName.Topic = kmsg.StringPtr(a)
		byID := kmsg.NewDeleteTopicsRequestTopic()
		byID.TopicID = c.topicID(b)
		missing := kmsg.NewDeleteTopicsRequestTopic()
		missing.Topic = kmsg.StringPtr(c.name("missing"))
		unknownID := kmsg.NewDeleteTopicsRequestTopic()
		unknownID.TopicID = [16]byte{1, 2, 3}
		req.Topics = append(req.Topics, byName, byID, missing, unknownID)
		resp := c.do(req).(*kmsg.DeleteTopicsResponse)
		// The topic deleted by id comes back with its name.
		return []any{resp}
	}},
	{name: "CreatePartitions", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 2, nil)
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis = 30000
		add := func(name string, count int32) {
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = name, count
			req.Topics = append(req.Topics, rt)
		}
		add(topic, 4)
		add(c.name("missing"), 2)
		first := c.do(req)
		req.Topics = nil
		add(topic, 3) // fewer than it has
		shrink := c.do(req)
		req.Topics = nil
		add(topic, 4) // as many as it has
		same := c.do(req)
		return []any{first, shrink, same}
	}},
	{name: "CreatePartitionsValidateOnly", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis, req.ValidateOnly = 30000, true
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topic, 5
		req.Topics = append(req.Topics, rt)
		resp := c.do(req)
		md := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		md.Topics = append(md.Topics, mt)
		return []any{resp, len(c.do(md).(*kmsg.MetadataResponse).Topics[0].Partitions)}
	}},
	{name: "DescribeConfigsTopic", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, map[string]*string{"retention.ms": kmsg.StringPtr("123456"), "cleanup.policy": kmsg.StringPtr("compact")})
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.IncludeSynonyms = true
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		res.ConfigNames = []string{"retention.ms", "cleanup.policy", "segment.bytes", "max.message.bytes", "min.insync.replicas", "compression.type", "message.timestamp.type"}
		// retention.ms from the broker's static log.retention.hours.
		plain := c.name("plain")
		c.createTopic(plain, 1, nil)
		fromBroker := kmsg.NewDescribeConfigsRequestResource()
		fromBroker.ResourceType, fromBroker.ResourceName = kmsg.ConfigResourceTypeTopic, plain
		fromBroker.ConfigNames = []string{"retention.ms", "segment.ms"}
		req.Resources = append(req.Resources, fromBroker)
		missing := kmsg.NewDescribeConfigsRequestResource()
		missing.ResourceType, missing.ResourceName = kmsg.ConfigResourceTypeTopic, c.name("missing")
		req.Resources = append(req.Resources, res, missing)
		return []any{c.do(req)}
	}},
	{name: "DescribeConfigsBroker", run: func(c *diffConn) []any {
		req := kmsg.NewPtrDescribeConfigsRequest()
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(c.nodeID()))
		res.ConfigNames = []string{"log.retention.hours", "num.partitions", "auto.create.topics.enable", "message.max.bytes", "default.replication.factor"}
		bad := kmsg.NewDescribeConfigsRequestResource()
		bad.ResourceType, bad.ResourceName = kmsg.ConfigResourceTypeBroker, "not-a-number"
		req.Resources = append(req.Resources, res, bad)
		resp := c.do(req).(*kmsg.DescribeConfigsResponse)
		// The broker resource is named after the node id, which differs.
		for i := range resp.Resources {
			resp.Resources[i].ResourceName = ""
		}
		return []any{resp}
	}},
	{name: "AlterConfigsTopic", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")})
		req := kmsg.NewPtrAlterConfigsRequest()
		add := func(name string, cfgs map[string]string) {
			res := kmsg.NewAlterConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, name
			for _, k := range slices.Sorted(maps.Keys(cfgs)) {
				cfg := kmsg.NewAlterConfigsRequestResourceConfig()
				cfg.Name, cfg.Value = k, kmsg.StringPtr(cfgs[k])
				res.Configs = append(res.Configs, cfg)
			}
			req.Resources = append(req.Resources, res)
		}
		add(topic, map[string]string{"segment.ms": "600000"})
		add(c.name("missing"), map[string]string{"segment.ms": "600000"})
		c.createTopic(c.name("t2"), 1, nil)
		add(c.name("t2"), map[string]string{"no.such.config": "x"})
		resp := c.do(req)
		return []any{resp, describeTopicConfigs(c, topic, "retention.ms", "segment.ms")}
	}},
	{name: "IncrementalAlterConfigsTopic", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("delete")})
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		op := func(name string, o kmsg.IncrementalAlterConfigOp, v *string) {
			cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			cfg.Name, cfg.Op, cfg.Value = name, o, v
			res.Configs = append(res.Configs, cfg)
		}
		op("retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("7777"))
		op("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("compact"))
		req.Resources = append(req.Resources, res)
		first := c.do(req)
		req.Resources[0].Configs = nil
		res.Configs = nil
		op("retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil)
		op("cleanup.policy", kmsg.IncrementalAlterConfigOpSubtract, kmsg.StringPtr("delete"))
		req.Resources[0] = res
		second := c.do(req)
		res.Configs = nil
		op("retention.ms", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("1")) // not a list
		req.Resources[0] = res
		bad := c.do(req)
		return []any{first, second, bad, describeTopicConfigs(c, topic, "retention.ms", "cleanup.policy")}
	}},
	{name: "IncrementalAlterConfigsValidateOnly", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.ValidateOnly = true
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Op, cfg.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("4242")
		res.Configs = append(res.Configs, cfg)
		req.Resources = append(req.Resources, res)
		return []any{c.do(req), describeTopicConfigs(c, topic, "retention.ms")}
	}},
	{name: "AlterBrokerConfigs", run: func(c *diffConn) []any {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.ValidateOnly = true
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(c.nodeID()))
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Op, cfg.Value = "log.dirs", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("/elsewhere") // read-only in Kafka too
		res.Configs = append(res.Configs, cfg)
		req.Resources = append(req.Resources, res)
		resp := c.do(req).(*kmsg.IncrementalAlterConfigsResponse)
		for i := range resp.Resources {
			resp.Resources[i].ResourceName = "" // the node id
		}
		return []any{resp}
	}},
	{name: "DescribeCluster", run: func(c *diffConn) []any {
		return []any{c.do(kmsg.NewPtrDescribeClusterRequest())}
	}},
	{name: "DescribeLogDirs", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 2, nil)
		c.produce(topic, 0, "a", "b", "c")
		req := kmsg.NewPtrDescribeLogDirsRequest()
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0, 1, 7}
		req.Topics = append(req.Topics, rt)
		resp := c.do(req).(*kmsg.DescribeLogDirsResponse)
		// The directory and the disk's sizes are each machine's own.
		for i := range resp.Dirs {
			resp.Dirs[i].Dir, resp.Dirs[i].TotalBytes, resp.Dirs[i].UsableBytes = "", 0, 0
		}
		return []any{resp}
	}},
	{name: "DescribeTopicPartitions", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 3, nil)
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.ResponsePartitionLimit = 2
		for _, name := range []string{topic, c.name("missing")} {
			rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
			rt.Topic = name
			req.Topics = append(req.Topics, rt)
		}
		return []any{c.do(req)}
	}},
	{name: "ElectLeaders", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		req := kmsg.NewPtrElectLeadersRequest()
		req.TimeoutMillis = 30000
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0, 5}
		req.Topics = append(req.Topics, rt)
		return []any{c.do(req)}
	}},
	{name: "DescribeAndCreateACLsWithoutAuthorizer", run: func(c *diffConn) []any {
		d := kmsg.NewPtrDescribeACLsRequest()
		d.ResourceType, d.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		d.Operation, d.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		cr := kmsg.NewPtrCreateACLsRequest()
		cre := kmsg.NewCreateACLsRequestCreation()
		cre.ResourceType, cre.ResourceName, cre.ResourcePatternType = kmsg.ACLResourceTypeTopic, c.name("t"), kmsg.ACLResourcePatternTypeLiteral
		cre.Principal, cre.Host, cre.Operation, cre.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		cr.Creations = append(cr.Creations, cre)
		return []any{c.do(d), c.do(cr)}
	}},
	{name: "DeleteACLsWithoutAuthorizer", run: func(c *diffConn) []any {
		req := kmsg.NewPtrDeleteACLsRequest()
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeLiteral
		f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		req.Filters = append(req.Filters, f)
		return []any{c.do(req)}
	}},
	{name: "CreateTopicsInternalAndDuplicate", run: func(c *diffConn) []any {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30000
		for _, name := range []string{"__consumer_offsets", c.name("dup"), c.name("dup"), c.name("dot.and_underscore")} {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
			req.Topics = append(req.Topics, rt)
		}
		resp := c.do(req).(*kmsg.CreateTopicsResponse)
		// Only the answers' codes: the configs of created topics are
		// compared by CreateTopicsEdgeCases.
		codes := map[string]int16{}
		for _, t := range resp.Topics {
			codes[t.Topic] = t.ErrorCode
		}
		return []any{codes}
	}},
	{name: "DescribeConfigsUnknownNames", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		req := kmsg.NewPtrDescribeConfigsRequest()
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		res.ConfigNames = []string{"no.such.config", "retention.bytes"}
		req.Resources = append(req.Resources, res)
		return []any{c.do(req)}
	}},
	{name: "ClientQuotas", run: func(c *diffConn) []any {
		alter := kmsg.NewPtrAlterClientQuotasRequest()
		e := kmsg.NewAlterClientQuotasRequestEntry()
		ent := kmsg.NewAlterClientQuotasRequestEntryEntity()
		ent.Type, ent.Name = "client-id", kmsg.StringPtr(c.name("client"))
		e.Entity = append(e.Entity, ent)
		op := kmsg.NewAlterClientQuotasRequestEntryOp()
		op.Key, op.Value = "producer_byte_rate", 1048576
		bad := kmsg.NewAlterClientQuotasRequestEntryOp()
		bad.Key, bad.Value = "no_such_quota", 1
		e.Ops = append(e.Ops, op)
		alter.Entries = append(alter.Entries, e)
		first := c.do(alter)
		alter.Entries[0].Ops = []kmsg.AlterClientQuotasRequestEntryOp{bad}
		invalid := c.do(alter)
		desc := kmsg.NewPtrDescribeClientQuotasRequest()
		comp := kmsg.NewDescribeClientQuotasRequestComponent()
		comp.EntityType, comp.MatchType, comp.Match = "client-id", kmsg.QuotasMatchTypeExact, kmsg.StringPtr(c.name("client"))
		desc.Components = append(desc.Components, comp)
		// Kafka applies the quota through its controller's metadata log:
		// it shows a moment after the alter answered.
		var described *kmsg.DescribeClientQuotasResponse
		eventually(c.t, 30*time.Second, c.tgt.name+" to show the quota", func() bool {
			described = c.do(desc).(*kmsg.DescribeClientQuotasResponse)
			return len(described.Entries) > 0
		})
		return []any{first, invalid, described}
	}},
	{name: "IPQuotas", run: func(c *diffConn) []any {
		// KIP-612's ip entity: alone, connection_creation_rate only, a
		// whole number; then the stored quota described.
		alter := func(rate float64, key string, entity ...kmsg.AlterClientQuotasRequestEntryEntity) kmsg.Response {
			req := kmsg.NewPtrAlterClientQuotasRequest()
			e := kmsg.NewAlterClientQuotasRequestEntry()
			e.Entity = entity
			op := kmsg.NewAlterClientQuotasRequestEntryOp()
			op.Key, op.Value = key, rate
			e.Ops = append(e.Ops, op)
			req.Entries = append(req.Entries, e)
			return c.do(req)
		}
		part := func(typ string, name *string) kmsg.AlterClientQuotasRequestEntryEntity {
			p := kmsg.NewAlterClientQuotasRequestEntryEntity()
			p.Type, p.Name = typ, name
			return p
		}
		ip := part("ip", kmsg.StringPtr("127.0.0.9"))
		withUser := alter(5, "connection_creation_rate", ip, part("user", kmsg.StringPtr(c.name("u"))))
		fraction := alter(2.5, "connection_creation_rate", ip)
		byteRate := alter(5, "producer_byte_rate", ip)
		onUser := alter(5, "connection_creation_rate", part("user", kmsg.StringPtr(c.name("u"))))
		ok := alter(5, "connection_creation_rate", ip)
		desc := kmsg.NewPtrDescribeClientQuotasRequest()
		comp := kmsg.NewDescribeClientQuotasRequestComponent()
		comp.EntityType, comp.MatchType, comp.Match = "ip", kmsg.QuotasMatchTypeExact, kmsg.StringPtr("127.0.0.9")
		desc.Components = append(desc.Components, comp)
		var described *kmsg.DescribeClientQuotasResponse
		eventually(c.t, 30*time.Second, c.tgt.name+" to show the ip quota", func() bool {
			described = c.do(desc).(*kmsg.DescribeClientQuotasResponse)
			return len(described.Entries) > 0
		})
		return []any{withUser, fraction, byteRate, onUser, ok, described}
	}},
	{name: "PartitionReassignments", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		list := kmsg.NewPtrListPartitionReassignmentsRequest()
		list.TimeoutMillis = 30000
		lt := kmsg.NewListPartitionReassignmentsRequestTopic()
		lt.Topic, lt.Partitions = topic, []int32{0}
		list.Topics = append(list.Topics, lt)
		alter := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		alter.TimeoutMillis = 30000
		at := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		at.Topic = topic
		p := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		p.Partition, p.Replicas = 0, []int32{4242} // no such broker
		missing := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		missing.Partition = 9 // nil replicas: cancel; no such partition
		at.Partitions = append(at.Partitions, p, missing)
		alter.Topics = append(alter.Topics, at)
		// v1 (KIP-860): the replication factor may not change unless
		// the request allows it.
		fixedRF := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		fixedRF.TimeoutMillis, fixedRF.AllowReplicationFactorChange = 30000, false
		ft := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		ft.Topic = topic
		for _, replicas := range [][]int32{{c.nodeID()}, {c.nodeID(), c.nodeID()}} {
			fp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			fp.Partition, fp.Replicas = 0, replicas
			ft.Partitions = append(ft.Partitions, fp)
		}
		fixedRF.Topics = append(fixedRF.Topics, ft)
		return []any{c.do(list), c.do(alter), c.do(fixedRF)}
	}},
	{name: "UpdateFeaturesUnknownFeature", run: func(c *diffConn) []any {
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.TimeoutMillis, req.ValidateOnly = 30000, true
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.MaxVersionLevel, u.UpgradeType = "no.such.feature", 1, 1
		req.FeatureUpdates = append(req.FeatureUpdates, u)
		return []any{c.do(req)}
	}},
}

// diffFeatureLevel is one finalized feature's level range.
type diffFeatureLevel struct {
	Name     string
	Min, Max int16
}

// diffAPIRange is one API key's advertised version range.
type diffAPIRange struct {
	Name     string
	ApiKey   int16
	Min, Max int16
}

// describeTopicConfigs reads back a topic's named configs (value and
// source), for scenarios that change them.
func describeTopicConfigs(c *diffConn, topic string, names ...string) any {
	c.t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName, res.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, names
	req.Resources = append(req.Resources, res)
	return c.do(req)
}
