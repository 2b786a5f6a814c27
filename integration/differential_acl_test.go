package integration

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The ACL matrix: Apache Kafka with its StandardAuthorizer and Skiff with
// authorizer.class.name set get the same ACLs; then, for each API family,
// a principal (alice, over SASL_PLAINTEXT PLAIN) without the ACL the API
// needs sends the same request to both, and every error code of the two
// responses must be the same. Only codes are compared, keyed by what
// they answer (topic, group, resource), not whole responses: the general
// differential test compares the rest.

// aclDiffJAAS are the PLAIN users of both brokers' SASL listener.
const aclDiffJAAS = `org.apache.kafka.common.security.plain.PlainLoginModule required ` +
	`username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";`

// aclDiffSettings turn the authorizer on. ANONYMOUS, the principal of
// the PLAINTEXT listeners (Kafka's inter-broker and controller traffic,
// the test's admin clients), is a super user.
var aclDiffSettings = map[string]string{
	"authorizer.class.name":            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
	"super.users":                      "User:admin;User:ANONYMOUS",
	"group.initial.rebalance.delay.ms": "0",
}

// aclDiffTarget is one broker of the ACL matrix.
type aclDiffTarget struct {
	name     string
	saslAddr string
	admin    *kadm.Client
	cl       *kgo.Client // the admin's client
	versions map[int16]int16
}

// aclScenario builds one request for a target (topic ids differ).
type aclScenario struct {
	name  string
	build func(tg *aclDiffTarget, t *testing.T) kmsg.Request
	// extract, if set, adds what else must match (names a filtered
	// list keeps, authorized-operation bits).
	extract func(kmsg.Response) []string
	// version, if set, replaces the version pinned for both brokers.
	version *int16
	// closes: both brokers must close the connection instead of
	// answering (a request Kafka cannot parse).
	closes bool
	// admin sends as the super user admin instead of alice.
	admin bool
}

func TestDifferentialACL(t *testing.T) {
	kafka := startKafka(t, kafkaOptions{settings: aclDiffSettings, plainJAAS: aclDiffJAAS})
	settings := map[string]string{
		"listeners":               "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		"sasl.enabled.mechanisms": "PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config": aclDiffJAAS,
	}
	for k, v := range aclDiffSettings {
		settings[k] = v
	}
	skiff := startBroker(t, settings)
	targets := []*aclDiffTarget{
		{name: "kafka", saslAddr: kafka.saslAddr, cl: newClient(t, kafka.addr)},
		{name: "skiff", saslAddr: skiff.ListenerAddr("SASL_PLAINTEXT"), cl: newClient(t, skiff.ListenerAddr("PLAINTEXT"))},
	}
	for _, tg := range targets {
		tg.admin = kadm.NewClient(tg.cl)
	}
	dts := []*diffTarget{{name: "kafka", addr: kafka.addr}, {name: "skiff", addr: skiff.ListenerAddr("PLAINTEXT")}}
	pinVersions(t, dts)
	for i, tg := range targets {
		tg.versions = dts[i].versions
		warmCoordinators(t, dts[i])
		if tg.name == "kafka" {
			(&diffConn{t: t, tgt: dts[i]}).enableShareGroups()
		}
		setUpACLMatrix(t, tg)
	}
	for _, s := range aclScenarios {
		t.Run(s.name, func(t *testing.T) {
			var codes [2][]string
			if s.closes {
				for _, tg := range targets {
					c := dialRaw(t, tg.saslAddr)
					saslPlainRaw(t, c, "alice", "alice-secret")
					req := s.build(tg, t)
					req.SetVersion(tg.versions[req.Key()])
					sendRaw(t, c, encodeRequest(req, 3))
					expectClosed(t, c)
				}
				return
			}
			for i, tg := range targets {
				t.Logf("sending to %s", tg.name)
				user := "alice"
				if s.admin {
					user = "admin"
				}
				resp := aclSend(t, tg, user, s.build(tg, t), s.version)
				codes[i] = aclErrorCodes(resp)
				if s.extract != nil {
					codes[i] = append(codes[i], s.extract(resp)...)
				}
			}
			if !slices.Equal(codes[0], codes[1]) {
				t.Errorf("error codes differ:\n  kafka: %v\n  skiff: %v", codes[0], codes[1])
			} else {
				t.Logf("both: %v", codes[0])
			}
		})
	}
}

// setUpACLMatrix creates the topics and ACLs, then waits until the
// broker's authorizer has them (Kafka applies them from its metadata log
// a moment after CreateAcls answers).
func setUpACLMatrix(t *testing.T, tg *aclDiffTarget) {
	ctx := testContext(t)
	for _, name := range []string{"acl-r", "acl-r-denied", "acl-w", "acl-none"} {
		createTopic(t, tg.admin, name, 1, nil)
	}
	b := []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:alice").Topics("acl-r").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead),
		kadm.NewACLs().Deny("User:alice").Topics("acl-r-denied").Operations(kadm.OpRead),
		kadm.NewACLs().Allow("User:alice").Topics("acl-w").Operations(kadm.OpWrite),
		kadm.NewACLs().Allow("User:alice").Groups("acl-g").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead),
		kadm.NewACLs().Allow("User:alice").TransactionalIDs("acl-tx-d").Operations(kadm.OpDescribe),
		kadm.NewACLs().Allow("User:alice").Topics("acl-c").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpCreate),
	}
	for _, ab := range b {
		mustCreateACLs(t, tg.admin, ab.AllowHosts().DenyHosts())
	}
	eventually(t, 30*time.Second, tg.name+" to apply the ACLs", func() bool {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp, err := req.RequestWith(ctx, tg.cl)
		if err != nil || resp.ErrorCode != 0 {
			return false
		}
		n := 0
		for _, r := range resp.Resources {
			n += len(r.ACLs)
		}
		return n == len(b)
	})
}

// aclSend sends req as user on a fresh, authenticated connection, at the
// version pinned for both brokers.
func aclSend(t *testing.T, tg *aclDiffTarget, user string, req kmsg.Request, version *int16) kmsg.Response {
	t.Helper()
	c := dialRaw(t, tg.saslAddr)
	defer c.Close()
	saslPlainRaw(t, c, user, user+"-secret")
	v, ok := tg.versions[req.Key()]
	if !ok {
		t.Fatalf("%s is not advertised by both brokers", kmsg.NameForKey(req.Key()))
	}
	if version != nil {
		v = *version
	}
	req.SetVersion(v)
	return roundTrip(t, c, req, 3)
}

// saslPlainRaw authenticates a raw connection with SaslHandshake v1 and
// SaslAuthenticate v2 (PLAIN).
func saslPlainRaw(t *testing.T, c net.Conn, user, pass string) {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if r := roundTrip(t, c, hs, 1).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 2, []byte("\x00"+user+"\x00"+pass)
	if r := roundTrip(t, c, au, 2).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != 0 {
		t.Fatalf("SaslAuthenticate: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// aclKeyFields name a response element by what it answers.
var aclKeyFields = []string{"Topic", "Name", "Group", "GroupID", "Key", "ResourceName", "TransactionalID", "User", "Partition"}

// aclErrorCodes lists every error code of resp as path=CODE, the path
// made of the key fields of the elements above it, sorted.
func aclErrorCodes(resp kmsg.Response) []string {
	var out []string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		t := v.Type()
		for _, k := range aclKeyFields {
			f := v.FieldByName(k)
			switch {
			case !f.IsValid():
			case f.Kind() == reflect.String && f.String() != "":
				path += "/" + f.String()
			case f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.String:
				path += "/" + f.Elem().String()
			case f.Kind() == reflect.Int32 && k == "Partition":
				path += fmt.Sprintf("/%d", f.Int())
			}
		}
		for i := 0; i < t.NumField(); i++ {
			f := v.Field(i)
			switch {
			case t.Field(i).Name == "ErrorCode" && f.Kind() == reflect.Int16:
				name := "NONE"
				if e := kerr.ErrorForCode(int16(f.Int())); e != nil {
					name = e.(*kerr.Error).Message
				}
				out = append(out, strings.TrimPrefix(path, "/")+"="+name)
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
				for j := 0; j < f.Len(); j++ {
					walk(f.Index(j), path)
				}
			}
		}
	}
	walk(reflect.ValueOf(resp).Elem(), "")
	slices.Sort(out)
	return out
}

func (tg *aclDiffTarget) topicID(t *testing.T, topic string) [16]byte {
	td, err := tg.admin.ListTopics(testContext(t), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("%s: metadata for %s: %v", tg.name, topic, err)
	}
	return td[topic].ID
}

// aclScenarios: per family, what alice may not do.
var aclScenarios = []aclScenario{
	{name: "produce/no-acl", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		for _, n := range []string{"acl-none", "acl-r"} {
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic, rt.TopicID = n, tg.topicID(t, n)
			rp := kmsg.NewProduceRequestTopicPartition()
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		return req
	}},
	{name: "produce/transactional", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis, req.TransactionID = -1, 5000, kmsg.StringPtr("acl-tx-d")
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "acl-w", tg.topicID(t, "acl-w")
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = transactionalBatch()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}},
	{name: "fetch/denied-and-no-acl", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 10, 1<<20, -1
		for _, n := range []string{"acl-r-denied", "acl-none", "acl-w"} {
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic, ft.TopicID = n, tg.topicID(t, n)
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.PartitionMaxBytes = 1 << 20
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
		}
		return req
	}},
	{name: "list-offsets/no-describe", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "acl-none"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt.Partitions = append(lt.Partitions, lp)
		req.Topics = append(req.Topics, lt)
		return req
	}},
	{name: "metadata/named", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrMetadataRequest()
		for _, n := range []string{"acl-none", "acl-r", "acl-r-new", "acl-missing"} {
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, mt)
		}
		req.AllowAutoTopicCreation = true
		return req
	}},
	{name: "group/join", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = "other-group", "consumer", 10000, 10000
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: "range"})
		return req
	}},
	{name: "group/find-coordinator", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKeys = []string{"other-group", "acl-g1"}
		return req
	}},
	{name: "group/offset-commit", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "acl-g1", -1
		for _, n := range []string{"acl-r", "acl-none"} {
			ot := kmsg.NewOffsetCommitRequestTopic()
			ot.Topic, ot.TopicID = n, tg.topicID(t, n)
			op := kmsg.NewOffsetCommitRequestTopicPartition()
			op.Offset = 0
			ot.Partitions = append(ot.Partitions, op)
			req.Topics = append(req.Topics, ot)
		}
		return req
	}},
	{name: "group/describe-delete", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{"other-group", "acl-g2"}
		return req
	}},
	{name: "txn/init-producer-id", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch = kmsg.StringPtr("acl-tx-d"), 10000, -1, -1
		return req
	}},
	{name: "txn/end-txn", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = "acl-tx-d", 1, 0
		return req
	}},
	{name: "txn/add-offsets", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.TransactionalID, req.ProducerID, req.Group = "acl-tx-d", 1, "acl-g1"
		return req
	}},
	{name: "admin/create-topics", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "acl-made", 1, 1
		req.Topics, req.TimeoutMillis = append(req.Topics, ct), 5000
		return req
	}},
	{name: "admin/delete-topics", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrDeleteTopicsRequest()
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = kmsg.StringPtr("acl-r")
		req.Topics, req.TopicNames, req.TimeoutMillis = append(req.Topics, dt), []string{"acl-r"}, 5000
		return req
	}},
	{name: "admin/create-partitions", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrCreatePartitionsRequest()
		ct := kmsg.NewCreatePartitionsRequestTopic()
		ct.Topic, ct.Count = "acl-r", 2
		req.Topics, req.TimeoutMillis = append(req.Topics, ct), 5000
		return req
	}},
	{name: "admin/describe-configs", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrDescribeConfigsRequest()
		for _, r := range []struct {
			typ  kmsg.ConfigResourceType
			name string
		}{{kmsg.ConfigResourceTypeTopic, "acl-r"}, {kmsg.ConfigResourceTypeBroker, "1"}} {
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = r.typ, r.name
			req.Resources = append(req.Resources, rr)
		}
		return req
	}},
	{name: "admin/incremental-alter-configs", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "acl-r"
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("1000")
		rr.Configs = append(rr.Configs, c)
		req.Resources = append(req.Resources, rr)
		return req
	}},
	{name: "admin/describe-client-quotas", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		return kmsg.NewPtrDescribeClientQuotasRequest()
	}},
	{name: "admin/describe-user-scram", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		// Users named: Kafka 4.1 never answers a refused request for all
		// users (null), whose error response it fails to build.
		req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = "alice"
		req.Users = append(req.Users, u)
		return req
	}},
	{name: "admin/delete-records", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrDeleteRecordsRequest()
		dt := kmsg.NewDeleteRecordsRequestTopic()
		dt.Topic = "acl-r"
		dp := kmsg.NewDeleteRecordsRequestTopicPartition()
		dt.Partitions = append(dt.Partitions, dp)
		req.Topics, req.TimeoutMillis = append(req.Topics, dt), 5000
		return req
	}},
	{name: "acls/describe", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		return req
	}},
	{name: "acls/create", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
		req := kmsg.NewPtrCreateACLsRequest()
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "x", kmsg.ACLResourcePatternTypeLiteral
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
		req.Creations = append(req.Creations, c)
		return req
	}},
}

func init() {
	aclScenarios = append(aclScenarios,
		aclScenario{name: "metadata/all-topics-hidden", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrMetadataRequest()
			req.IncludeTopicAuthorizedOperations = true
			return req
		}, extract: func(r kmsg.Response) []string {
			var out []string
			for _, tp := range r.(*kmsg.MetadataResponse).Topics {
				if tp.Topic != nil && strings.HasPrefix(*tp.Topic, "acl-") {
					out = append(out, fmt.Sprintf("%s ops=%b", *tp.Topic, tp.AuthorizedOperations))
				}
			}
			slices.Sort(out)
			return out
		}},
		aclScenario{name: "metadata/describe-cluster-ops", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.IncludeClusterAuthorizedOperations = true
			return req
		}, extract: func(r kmsg.Response) []string {
			return []string{fmt.Sprintf("cluster ops=%b", r.(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations)}
		}},
		aclScenario{name: "metadata/describe-topic-partitions", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeTopicPartitionsRequest()
			for _, n := range []string{"acl-none", "acl-r"} {
				rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
				rt.Topic = n
				req.Topics = append(req.Topics, rt)
			}
			req.ResponsePartitionLimit = 100
			return req
		}},
		aclScenario{name: "offsets/offset-for-leader-epoch", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = "acl-none"
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.CurrentLeaderEpoch, rp.LeaderEpoch = -1, 0
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}},
		aclScenario{name: "group/offset-fetch", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrOffsetFetchRequest()
			for _, g := range []string{"other-group", "acl-g1"} {
				rg := kmsg.NewOffsetFetchRequestGroup()
				rg.Group = g
				for _, n := range []string{"acl-r", "acl-none"} {
					rt := kmsg.NewOffsetFetchRequestGroupTopic()
					rt.Topic, rt.TopicID = n, tg.topicID(t, n)
					rt.Partitions = []int32{0}
					rg.Topics = append(rg.Topics, rt)
				}
				req.Groups = append(req.Groups, rg)
			}
			return req
		}},
		aclScenario{name: "group/describe-groups", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups, req.IncludeAuthorizedOperations = []string{"other-group", "acl-g1"}, true
			return req
		}, extract: func(r kmsg.Response) []string {
			var out []string
			for _, g := range r.(*kmsg.DescribeGroupsResponse).Groups {
				out = append(out, fmt.Sprintf("%s ops=%b", g.Group, g.AuthorizedOperations))
			}
			slices.Sort(out)
			return out
		}},
		aclScenario{name: "group/heartbeat", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.MemberID = "other-group", "m"
			return req
		}},
		aclScenario{name: "group/offset-delete", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = "acl-g1"
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = "acl-r"
			rt.Partitions = append(rt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
			req.Topics = append(req.Topics, rt)
			return req
		}},
		aclScenario{name: "group/consumer-group-heartbeat", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = "other-group", "m1234567890123456789", 0, 10000
			req.SubscribedTopicNames, req.Topics = []string{"acl-r"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			return req
		}},
		aclScenario{name: "group/consumer-group-describe", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrConsumerGroupDescribeRequest()
			req.Groups = []string{"other-group"}
			return req
		}},
		aclScenario{name: "txn/idempotent-init-producer-id", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch = -1, -1, -1
			return req
		}},
		aclScenario{name: "txn/txn-offset-commit", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrTxnOffsetCommitRequest()
			req.TransactionalID, req.Group, req.ProducerID = "acl-tx-d", "acl-g1", 1
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = "acl-r"
			rt.Partitions = append(rt.Partitions, kmsg.NewTxnOffsetCommitRequestTopicPartition())
			req.Topics = append(req.Topics, rt)
			return req
		}},
		aclScenario{name: "txn/describe-transactions", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeTransactionsRequest()
			req.TransactionalIDs = []string{"other-tx"}
			return req
		}},
		aclScenario{name: "admin/create-topics-without-describe-configs", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrCreateTopicsRequest()
			ct := kmsg.NewCreateTopicsRequestTopic()
			ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "acl-c1", 1, 1
			req.Topics, req.TimeoutMillis, req.ValidateOnly = append(req.Topics, ct), 5000, true
			return req
		}, extract: func(r kmsg.Response) []string {
			var out []string
			for _, tp := range r.(*kmsg.CreateTopicsResponse).Topics {
				out = append(out, fmt.Sprintf("%s config-error=%d configs=%d partitions=%d rf=%d",
					tp.Topic, tp.ConfigErrorCode, len(tp.Configs), tp.NumPartitions, tp.ReplicationFactor))
			}
			return out
		}},
		aclScenario{name: "admin/alter-configs-broker", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrAlterConfigsRequest()
			rr := kmsg.NewAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
			req.Resources = append(req.Resources, rr)
			return req
		}},
		aclScenario{name: "admin/alter-client-quotas", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrAlterClientQuotasRequest()
			e := kmsg.NewAlterClientQuotasRequestEntry()
			ee := kmsg.NewAlterClientQuotasRequestEntryEntity()
			ee.Type, ee.Name = "user", kmsg.StringPtr("alice")
			e.Entity = append(e.Entity, ee)
			op := kmsg.NewAlterClientQuotasRequestEntryOp()
			op.Key, op.Value = "producer_byte_rate", 1000
			e.Ops = append(e.Ops, op)
			req.Entries = append(req.Entries, e)
			return req
		}},
		aclScenario{name: "admin/alter-user-scram", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
			d.Name, d.Mechanism = "bob", 1
			req.Deletions = append(req.Deletions, d)
			return req
		}},
		aclScenario{name: "admin/describe-log-dirs", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			return kmsg.NewPtrDescribeLogDirsRequest()
		}},
		aclScenario{name: "admin/list-partition-reassignments", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			return kmsg.NewPtrListPartitionReassignmentsRequest()
		}},
		aclScenario{name: "admin/elect-leaders", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrElectLeadersRequest()
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic, rt.Partitions = "acl-r", []int32{0}
			req.Topics, req.TimeoutMillis = append(req.Topics, rt), 5000
			return req
		}},
		aclScenario{name: "admin/describe-producers", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeProducersRequest()
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic, rt.Partitions = "acl-none", []int32{0}
			req.Topics = append(req.Topics, rt)
			return req
		}},
		aclScenario{name: "txn/add-partitions-v3", version: new(int16(3)), build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrAddPartitionsToTxnRequest()
			req.TransactionalID, req.ProducerID = "acl-tx-d", 1
			for _, n := range []string{"acl-w", "acl-none"} {
				rt := kmsg.NewAddPartitionsToTxnRequestTopic()
				rt.Topic, rt.Partitions = n, []int32{0}
				req.Topics = append(req.Topics, rt)
			}
			return req
		}},
		aclScenario{name: "txn/add-partitions-batched", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrAddPartitionsToTxnRequest()
			tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
			tx.TransactionalID, tx.ProducerID, tx.VerifyOnly = "acl-tx-d", 1, true
			rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
			rt.Topic, rt.Partitions = "acl-w", []int32{0}
			tx.Topics = append(tx.Topics, rt)
			req.Transactions = append(req.Transactions, tx)
			return req
		}},
		aclScenario{name: "txn/list-transactions", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			return kmsg.NewPtrListTransactionsRequest()
		}, extract: func(r kmsg.Response) []string {
			var out []string
			for _, st := range r.(*kmsg.ListTransactionsResponse).TransactionStates {
				out = append(out, st.TransactionalID)
			}
			return out
		}},
		aclScenario{name: "group/list-groups", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			return kmsg.NewPtrListGroupsRequest()
		}, extract: func(r kmsg.Response) []string {
			var out []string
			for _, g := range r.(*kmsg.ListGroupsResponse).Groups {
				if !strings.HasPrefix(g.Group, "diff-warm") {
					out = append(out, g.Group)
				}
			}
			slices.Sort(out)
			return out
		}},
		aclScenario{name: "group/sync-leave", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group = "other-group"
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = "m"
			req.Members = append(req.Members, m)
			return req
		}},
		aclScenario{name: "fetch/as-follower", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID, req.ReplicaState.ID, req.ReplicaState.Epoch = -1, 5, 1
			req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 10, 1<<20, -1
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic, ft.TopicID = "acl-r", tg.topicID(t, "acl-r")
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.PartitionMaxBytes = 1 << 20
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
			return req
		}},
		aclScenario{name: "admin/describe-configs-group", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeConfigsRequest()
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceType(32), "other-group" // GROUP
			req.Resources = append(req.Resources, rr)
			return req
		}},
		aclScenario{name: "admin/update-features", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrUpdateFeaturesRequest()
			fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
			fu.Feature, fu.MaxVersionLevel, fu.UpgradeType = "group.version", 1, 1
			req.FeatureUpdates, req.TimeoutMillis, req.ValidateOnly = append(req.FeatureUpdates, fu), 5000, true
			return req
		}},
		aclScenario{name: "admin/alter-partition-reassignments", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
			rt.Topic = "acl-r"
			rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics, req.TimeoutMillis = append(req.Topics, rt), 5000
			return req
		}},
		aclScenario{name: "share/heartbeat-group", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrShareGroupHeartbeatRequest()
			req.GroupID, req.MemberID, req.SubscribedTopicNames = "other-share", "m1234567890123456789a", []string{"acl-r"}
			return req
		}},
		aclScenario{name: "share/heartbeat-topic", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrShareGroupHeartbeatRequest()
			req.GroupID, req.MemberID, req.SubscribedTopicNames = "acl-gs", "m1234567890123456789b", []string{"acl-none"}
			return req
		}},
		aclScenario{name: "share/describe", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrShareGroupDescribeRequest()
			req.GroupIDs = []string{"other-share"}
			return req
		}},
		aclScenario{name: "share/fetch-group", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrShareFetchRequest()
			req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr("other-share"), kmsg.StringPtr("m1234567890123456789c"), 0
			req.MaxWaitMillis, req.MaxBytes, req.MaxRecords, req.BatchSize = 10, 1<<20, 100, 100
			ft := kmsg.NewShareFetchRequestTopic()
			ft.TopicID = tg.topicID(t, "acl-r")
			ft.Partitions = append(ft.Partitions, kmsg.NewShareFetchRequestTopicPartition())
			req.Topics = append(req.Topics, ft)
			return req
		}},
		aclScenario{name: "share/describe-offsets", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
			g := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
			g.GroupID = "other-share"
			req.Groups = append(req.Groups, g)
			return req
		}},
		aclScenario{name: "share/delete-offsets", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
			req.GroupID = "other-share"
			rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
			rt.Topic = "acl-r"
			req.Topics = append(req.Topics, rt)
			return req
		}},
		aclScenario{name: "share/acknowledge-group", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrShareAcknowledgeRequest()
			req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr("other-share"), kmsg.StringPtr("m1234567890123456789d"), 1
			at := kmsg.NewShareAcknowledgeRequestTopic()
			at.TopicID = tg.topicID(t, "acl-r")
			at.Partitions = append(at.Partitions, kmsg.NewShareAcknowledgeRequestTopicPartition())
			req.Topics = append(req.Topics, at)
			return req
		}},
		aclScenario{name: "share/alter-offsets", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
			req.GroupID = "other-share"
			rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
			rt.Topic = "acl-r"
			rt.Partitions = append(rt.Partitions, kmsg.NewAlterShareGroupOffsetsRequestTopicPartition())
			req.Topics = append(req.Topics, rt)
			return req
		}},
		aclScenario{name: "group/sync-group", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrSyncGroupRequest()
			req.Group, req.MemberID, req.ProtocolType, req.Protocol = "other-group", "m", kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
			return req
		}},
		aclScenario{name: "txn/write-txn-markers", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrWriteTxnMarkersRequest()
			m := kmsg.NewWriteTxnMarkersRequestMarker()
			m.ProducerID, m.Committed = 1, true
			mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			mt.Topic, mt.Partitions = "acl-w", []int32{0}
			m.Topics = append(m.Topics, mt)
			req.Markers = append(req.Markers, m)
			return req
		}},
		aclScenario{name: "admin/describe-quorum", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeQuorumRequest()
			rt := kmsg.NewDescribeQuorumRequestTopic()
			rt.Topic = "__cluster_metadata"
			rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
			req.Topics = append(req.Topics, rt)
			return req
		}},
		aclScenario{name: "admin/alter-configs-topic", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrAlterConfigsRequest()
			rr := kmsg.NewAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "acl-r"
			req.Resources = append(req.Resources, rr)
			return req
		}},
		aclScenario{name: "acls/describe-unknown-pattern", closes: true, build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, 0
			req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			return req
		}},
		aclScenario{name: "acls/create-unknown-operation", closes: true, build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrCreateACLsRequest()
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "x", kmsg.ACLResourcePatternTypeLiteral
			c.Principal, c.Host, c.Operation, c.PermissionType = "User:alice", "*", 0, kmsg.ACLPermissionTypeAllow
			req.Creations = append(req.Creations, c)
			return req
		}},
		aclScenario{name: "acls/delete-unknown-resource", closes: true, build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDeleteACLsRequest()
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourcePatternType = 0, kmsg.ACLResourcePatternTypeAny
			f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			req.Filters = append(req.Filters, f)
			return req
		}},
		aclScenario{name: "acls/admin-describe-match", admin: true, build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourceName, req.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("acl-r-denied"), kmsg.ACLResourcePatternTypeMatch
			req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			return req
		}, extract: describedACLs},
		aclScenario{name: "acls/admin-describe-prefixed-exact", admin: true, build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourceName, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.StringPtr("acl-r"), kmsg.ACLResourcePatternTypeAny
			req.Principal, req.Operation, req.PermissionType = kmsg.StringPtr("User:alice"), kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAny
			return req
		}, extract: describedACLs},
		aclScenario{name: "acls/delete", build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
			req := kmsg.NewPtrDeleteACLsRequest()
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			req.Filters = append(req.Filters, f)
			return req
		}},
	)
}

// invalidCreations are ACLs Kafka refuses to create, each sent alone by
// the super user.
var invalidCreations = []struct {
	name     string
	typ      kmsg.ACLResourceType
	res, who string
	pattern  kmsg.ACLResourcePatternType
	op       kmsg.ACLOperation
	perm     kmsg.ACLPermissionType
}{
	{"cluster-name", kmsg.ACLResourceTypeCluster, "not-kafka-cluster", "User:a", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationAlter, kmsg.ACLPermissionTypeAllow},
	{"empty-name", kmsg.ACLResourceTypeTopic, "", "User:a", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow},
	{"principal-without-colon", kmsg.ACLResourceTypeTopic, "t", "nocolon", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow},
	{"pattern-match", kmsg.ACLResourceTypeTopic, "t", "User:a", kmsg.ACLResourcePatternTypeMatch, kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow},
	{"pattern-any", kmsg.ACLResourceTypeTopic, "t", "User:a", kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow},
	{"resource-any", kmsg.ACLResourceTypeAny, "t", "User:a", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow},
	{"operation-any", kmsg.ACLResourceTypeTopic, "t", "User:a", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAllow},
	{"permission-any", kmsg.ACLResourceTypeTopic, "t", "User:a", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAny},
}

func init() {
	for _, c := range invalidCreations {
		aclScenarios = append(aclScenarios, aclScenario{name: "acls/admin-invalid-" + c.name, admin: true,
			build: func(tg *aclDiffTarget, t *testing.T) kmsg.Request {
				req := kmsg.NewPtrCreateACLsRequest()
				cr := kmsg.NewCreateACLsRequestCreation()
				cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = c.typ, c.res, c.pattern
				cr.Principal, cr.Host, cr.Operation, cr.PermissionType = c.who, "*", c.op, c.perm
				req.Creations = append(req.Creations, cr)
				return req
			}})
	}
}

// describedACLs lists a DescribeAcls answer's bindings, sorted.
func describedACLs(r kmsg.Response) []string {
	var out []string
	for _, res := range r.(*kmsg.DescribeACLsResponse).Resources {
		for _, a := range res.ACLs {
			out = append(out, fmt.Sprintf("%s:%s:%s %s@%s %s %s", res.ResourceType, res.ResourcePatternType, res.ResourceName,
				a.Principal, a.Host, a.Operation, a.PermissionType))
		}
	}
	slices.Sort(out)
	return out
}

// transactionalBatch is one empty-valued record in a batch marked
// transactional (attributes bit 4), producer id 1, epoch 0.
func transactionalBatch() []byte {
	var b kmsg.RecordBatch
	b.Magic = 2
	b.Attributes = 0x10
	b.ProducerID, b.ProducerEpoch = 1, 0
	b.LastOffsetDelta, b.NumRecords = 0, 1
	b.FirstTimestamp, b.MaxTimestamp = diffBaseTimestamp, diffBaseTimestamp
	// One record: length, attributes, timestamp delta, offset delta, key
	// length -1, value length 1, "v", no headers (varints, zigzag).
	b.Records = []byte{0x0e, 0x00, 0x00, 0x00, 0x01, 0x02, 'v', 0x00}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
