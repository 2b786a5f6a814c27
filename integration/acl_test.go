package integration

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// aclSettings is one SASL_PLAINTEXT listener with PLAIN users and the
// standard authorizer, admin a super user.
func aclSettings() map[string]string {
	return map[string]string{
		"listeners":               "SASL_PLAINTEXT://127.0.0.1:0",
		"sasl.enabled.mechanisms": "PLAIN",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required ` +
			`user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";`,
		"authorizer.class.name":            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                      "User:admin",
		"group.initial.rebalance.delay.ms": "0",
	}
}

// userClient is a client of b's SASL_PLAINTEXT listener as user.
func userClient(t *testing.T, b *broker, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return authClient(t, b.ListenerAddr("SASL_PLAINTEXT"), plain.Auth{User: user, Pass: user + "-secret"}.AsMechanism(), nil)
}

// toBroker sends req to the broker itself, not routed to a coordinator,
// so that a group or transaction API's own answer is what comes back.
func toBroker(t *testing.T, cl *kgo.Client, req kmsg.Request) kmsg.Response {
	t.Helper()
	ctx := testContext(t)
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
		t.Fatalf("metadata: %v", err)
	}
	brokers := cl.DiscoveredBrokers()
	if len(brokers) == 0 {
		t.Fatal("no broker discovered")
	}
	resp, err := brokers[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func mustCreateACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(testContext(t), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create acl %+v: %v", r, r.Err)
		}
	}
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != want.Code {
		t.Errorf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// TestACLAPIs: CreateAcls, DescribeAcls and DeleteAcls with Kafka's
// filters and validation; only ALTER/DESCRIBE on the cluster may use them;
// ACLs survive a restart; without an authorizer the APIs answer
// SECURITY_DISABLED.
func TestACLAPIs(t *testing.T) {
	b := startBroker(t, aclSettings())
	admCl := userClient(t, b, "admin")
	adm := kadm.NewClient(admCl)
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpRead, kadm.OpWrite))
	mustCreateACLs(t, adm, kadm.NewACLs().Deny("User:bob").Topics("team-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAll))
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:alice").Groups("*").Operations(kadm.OpRead))

	// Validation, per creation.
	bad := kmsg.NewPtrCreateACLsRequest()
	for _, c := range []struct {
		typ       kmsg.ACLResourceType
		name, who string
		pattern   kmsg.ACLResourcePatternType
	}{
		{kmsg.ACLResourceTypeCluster, "not-kafka-cluster", "User:a", kmsg.ACLResourcePatternTypeLiteral},
		{kmsg.ACLResourceTypeTopic, "", "User:a", kmsg.ACLResourcePatternTypeLiteral},
		{kmsg.ACLResourceTypeTopic, "t", "nocolon", kmsg.ACLResourcePatternTypeLiteral},
	} {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = c.typ, c.name, c.pattern
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = c.who, "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		bad.Creations = append(bad.Creations, cr)
	}
	cresp := toBroker(t, admCl, bad).(*kmsg.CreateACLsResponse)
	for i, r := range cresp.Results {
		wantCode(t, "invalid creation "+string(rune('0'+i)), r.ErrorCode, kerr.InvalidRequest)
	}
	// A filter value (MATCH) in one creation fails them all, as Kafka's
	// conversion to AclBindings throws.
	withMatch := *bad
	match := bad.Creations[0]
	match.ResourceType, match.ResourceName, match.ResourcePatternType = kmsg.ACLResourceTypeTopic, "t", kmsg.ACLResourcePatternTypeMatch
	withMatch.Creations = append(slices.Clone(bad.Creations), match)
	for i, r := range toBroker(t, admCl, &withMatch).(*kmsg.CreateACLsResponse).Results {
		wantCode(t, "creation with MATCH "+string(rune('0'+i)), r.ErrorCode, kerr.UnknownServerError)
	}

	// MATCH finds the literal, wildcard and prefixed bindings that apply.
	describe := func(typ kmsg.ACLResourceType, name *string, pattern kmsg.ACLResourcePatternType) int {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourceName, req.ResourcePatternType = typ, name, pattern
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp := toBroker(t, admCl, req).(*kmsg.DescribeACLsResponse)
		wantCode(t, "DescribeAcls", resp.ErrorCode, &kerr.Error{})
		n := 0
		for _, r := range resp.Resources {
			n += len(r.ACLs)
		}
		return n
	}
	if got := describe(kmsg.ACLResourceTypeTopic, kmsg.StringPtr("team-x"), kmsg.ACLResourcePatternTypeMatch); got != 1 {
		t.Errorf("MATCH team-x: %d bindings, want the prefixed deny", got)
	}
	if got := describe(kmsg.ACLResourceTypeAny, nil, kmsg.ACLResourcePatternTypeAny); got != 4 {
		t.Errorf("all: %d bindings, want 4", got)
	}
	if got := describe(kmsg.ACLResourceTypeTopic, kmsg.StringPtr("team-x"), kmsg.ACLResourcePatternTypeLiteral); got != 0 {
		t.Errorf("LITERAL team-x: %d bindings, want none", got)
	}
	// UNKNOWN elements: Kafka cannot parse the request and closes the
	// connection.
	bad1 := kmsg.NewPtrDescribeACLsRequest()
	bad1.Version = 3
	bad1.ResourceType, bad1.ResourcePatternType, bad1.Operation, bad1.PermissionType = kmsg.ACLResourceTypeAny, 0, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	raw := dialRaw(t, b.ListenerAddr("SASL_PLAINTEXT"))
	saslPlainRaw(t, raw, "admin", "admin-secret")
	sendRaw(t, raw, encodeRequest(bad1, 3))
	expectClosed(t, raw)

	// Not a super user, no ALTER/DESCRIBE on the cluster.
	alice := userClient(t, b, "alice")
	anyFilter := kmsg.NewPtrDescribeACLsRequest()
	anyFilter.ResourceType, anyFilter.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	anyFilter.Operation, anyFilter.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	dresp := toBroker(t, alice, anyFilter).(*kmsg.DescribeACLsResponse)
	wantCode(t, "alice DescribeAcls", dresp.ErrorCode, kerr.ClusterAuthorizationFailed)
	cr := kmsg.NewPtrCreateACLsRequest()
	cr.Creations = bad.Creations[:1]
	wantCode(t, "alice CreateAcls", toBroker(t, alice, cr).(*kmsg.CreateACLsResponse).Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)

	// Survive a restart; then delete by filter.
	b.Close()
	b = startBroker(t, aclSettings(), b.dir)
	admCl = userClient(t, b, "admin")
	del := kmsg.NewPtrDeleteACLsRequest()
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType, f.Principal = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.StringPtr("User:alice")
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, f)
	dres := toBroker(t, admCl, del).(*kmsg.DeleteACLsResponse).Results[0]
	wantCode(t, "DeleteAcls", dres.ErrorCode, &kerr.Error{})
	if got := len(dres.MatchingACLs); got != 3 {
		t.Errorf("deleted %d of alice's bindings after restart, want 3: %+v", got, dres.MatchingACLs)
	}
	if got := describe(kmsg.ACLResourceTypeAny, nil, kmsg.ACLResourcePatternTypeAny); got != 1 {
		t.Errorf("after delete: %d bindings, want bob's", got)
	}

	// No authorizer: SECURITY_DISABLED.
	plainBroker := startBroker(t, nil)
	off := toBroker(t, newClient(t, plainBroker.Addr()), kmsg.NewPtrDescribeACLsRequest()).(*kmsg.DescribeACLsResponse)
	wantCode(t, "DescribeAcls without an authorizer", off.ErrorCode, kerr.SecurityDisabled)
}

// TestACLEnforcement: prefixed ACLs, DENY precedence, super users,
// Metadata hiding, and each API family's code for a principal without
// the ACL it needs.
func TestACLEnforcement(t *testing.T) {
	b := startBroker(t, aclSettings())
	admCl := userClient(t, b, "admin")
	adm := kadm.NewClient(admCl)
	for _, name := range []string{"team-a.orders", "team-a.secret", "other"} {
		createTopic(t, adm, name, 1, nil)
	}
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("team-a.").ResourcePatternType(kadm.ACLPatternPrefixed).
		Operations(kadm.OpRead, kadm.OpWrite))
	mustCreateACLs(t, adm, kadm.NewACLs().Deny("User:alice").Topics("team-a.secret").Operations(kadm.OpRead))
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:alice").Groups("g-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead))
	mustCreateACLs(t, adm, kadm.NewACLs().Deny("User:*").Topics("other").Operations(kadm.OpAll))

	ctx := testContext(t)
	alice := userClient(t, b, "alice")
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][16]byte{}
	for name, d := range details {
		ids[name] = d.ID
	}

	t.Run("produce", func(t *testing.T) {
		if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "team-a.orders", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("prefixed WRITE: %v", err)
		}
		if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "team-a.secret", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("DENY READ must not deny WRITE: %v", err)
		}
		// Super users pass DENY for everyone.
		if err := admCl.ProduceSync(ctx, &kgo.Record{Topic: "other", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("super user: %v", err)
		}
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "other", ids["other"]
		rp := kmsg.NewProduceRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := toBroker(t, alice, req).(*kmsg.ProduceResponse)
		wantCode(t, "produce to a denied topic", resp.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	})

	t.Run("fetch", func(t *testing.T) {
		for _, tc := range []struct {
			topic string
			want  *kerr.Error
		}{{"team-a.orders", nil}, {"team-a.secret", kerr.TopicAuthorizationFailed}, {"other", kerr.TopicAuthorizationFailed}} {
			req := kmsg.NewPtrFetchRequest()
			req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 10, 1<<20, -1
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic, ft.TopicID = tc.topic, ids[tc.topic]
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.PartitionMaxBytes = 1 << 20
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
			resp := toBroker(t, alice, req).(*kmsg.FetchResponse)
			code := resp.Topics[0].Partitions[0].ErrorCode
			if tc.want == nil {
				wantCode(t, "fetch "+tc.topic, code, &kerr.Error{Code: 0})
			} else {
				wantCode(t, "fetch "+tc.topic, code, tc.want)
			}
		}
	})

	t.Run("metadata", func(t *testing.T) {
		req := kmsg.NewPtrMetadataRequest()
		req.IncludeTopicAuthorizedOperations = true
		resp := toBroker(t, alice, req).(*kmsg.MetadataResponse)
		var names []string
		for _, tp := range resp.Topics {
			names = append(names, *tp.Topic)
			if want := int32(1<<kmsg.ACLOperationRead | 1<<kmsg.ACLOperationWrite | 1<<kmsg.ACLOperationDescribe); *tp.Topic == "team-a.orders" && tp.AuthorizedOperations != want {
				t.Errorf("team-a.orders authorized operations %b, want %b", tp.AuthorizedOperations, want)
			}
		}
		if len(names) != 2 || names[0] != "team-a.orders" || names[1] != "team-a.secret" {
			t.Errorf("all-topics metadata shows %v, want only team-a.*", names)
		}
		named := kmsg.NewPtrMetadataRequest()
		for _, n := range []string{"other", "team-a.orders", "team-a.new", "nope"} {
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(n)
			named.Topics = append(named.Topics, mt)
		}
		named.AllowAutoTopicCreation = true
		codes := map[string]int16{}
		for _, tp := range toBroker(t, alice, named).(*kmsg.MetadataResponse).Topics {
			codes[*tp.Topic] = tp.ErrorCode
		}
		wantCode(t, "named denied topic", codes["other"], kerr.TopicAuthorizationFailed)
		wantCode(t, "named allowed topic", codes["team-a.orders"], &kerr.Error{})
		// DESCRIBE (implied by READ) but no CREATE: not auto-created.
		wantCode(t, "auto-create without CREATE", codes["team-a.new"], kerr.TopicAuthorizationFailed)
		wantCode(t, "no DESCRIBE on a missing topic", codes["nope"], kerr.TopicAuthorizationFailed)
		if _, err := adm.ListTopics(ctx, "team-a.new"); err != nil {
			t.Fatal(err)
		}
		if td, _ := adm.ListTopics(ctx); td.Has("team-a.new") {
			t.Error("team-a.new was auto-created for a principal without CREATE")
		}
	})

	t.Run("groups", func(t *testing.T) {
		join := kmsg.NewPtrJoinGroupRequest()
		join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "other-group", "consumer", 10000, 10000
		join.Protocols = append(join.Protocols, kmsg.JoinGroupRequestProtocol{Name: "range"})
		wantCode(t, "JoinGroup", toBroker(t, alice, join).(*kmsg.JoinGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKeys = []string{"other-group", "g-1"}
		fresp := toBroker(t, alice, fc).(*kmsg.FindCoordinatorResponse)
		codes := map[string]int16{}
		for _, c := range fresp.Coordinators {
			codes[c.Key] = c.ErrorCode
		}
		wantCode(t, "FindCoordinator denied", codes["other-group"], kerr.GroupAuthorizationFailed)
		wantCode(t, "FindCoordinator allowed", codes["g-1"], &kerr.Error{})
		// An allowed group committing to a denied topic.
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Version = 7
		oc.Group, oc.Generation = "g-1", -1
		for _, n := range []string{"team-a.orders", "team-a.secret"} {
			ot := kmsg.NewOffsetCommitRequestTopic()
			ot.Topic = n
			op := kmsg.NewOffsetCommitRequestTopicPartition()
			op.Offset = 1
			ot.Partitions = append(ot.Partitions, op)
			oc.Topics = append(oc.Topics, ot)
		}
		codes = map[string]int16{}
		for _, tp := range toBroker(t, alice, oc).(*kmsg.OffsetCommitResponse).Topics {
			codes[tp.Topic] = tp.Partitions[0].ErrorCode
		}
		wantCode(t, "OffsetCommit allowed topic", codes["team-a.orders"], &kerr.Error{})
		wantCode(t, "OffsetCommit topic denied READ", codes["team-a.secret"], kerr.TopicAuthorizationFailed)
	})

	t.Run("streams groups", func(t *testing.T) {
		hb := func(group string, topics ...string) *kmsg.StreamsGroupHeartbeatRequest {
			req := kmsg.NewPtrStreamsGroupHeartbeatRequest()
			req.Group, req.MemberID, req.RebalanceTimeoutMillis = group, "m1", 30000
			topo := kmsg.NewStreamsGroupHeartbeatRequestTopology()
			st := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
			st.SubtopologyID, st.SourceTopics = "0", topics
			topo.Subtopologies = append(topo.Subtopologies, st)
			req.Topology = &topo
			return req
		}
		// READ on the group (alice has g-*), then DESCRIBE on every topic
		// of the topology.
		wantCode(t, "StreamsGroupHeartbeat without group READ",
			toBroker(t, alice, hb("x-streams", "team-a.orders")).(*kmsg.StreamsGroupHeartbeatResponse).ErrorCode, kerr.GroupAuthorizationFailed)
		wantCode(t, "StreamsGroupHeartbeat on a topic denied",
			toBroker(t, alice, hb("g-streams", "team-a.orders", "other")).(*kmsg.StreamsGroupHeartbeatResponse).ErrorCode, kerr.TopicAuthorizationFailed)
		code := toBroker(t, alice, hb("g-streams", "team-a.orders")).(*kmsg.StreamsGroupHeartbeatResponse).ErrorCode
		if code == kerr.GroupAuthorizationFailed.Code || code == kerr.TopicAuthorizationFailed.Code {
			t.Errorf("StreamsGroupHeartbeat with its ACLs refused: %v", kerr.ErrorForCode(code))
		}
		desc := kmsg.NewPtrStreamsGroupDescribeRequest()
		desc.Groups = []string{"x-streams"}
		wantCode(t, "StreamsGroupDescribe without group DESCRIBE",
			toBroker(t, alice, desc).(*kmsg.StreamsGroupDescribeResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	})

	t.Run("transactions", func(t *testing.T) {
		ip := kmsg.NewPtrInitProducerIDRequest()
		ip.TransactionalID, ip.TransactionTimeoutMillis = kmsg.StringPtr("tx-1"), 10000
		wantCode(t, "InitProducerId transactional", toBroker(t, alice, ip).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
		// Idempotence needs IDEMPOTENT_WRITE or WRITE on some topic: alice has the latter, bob neither.
		idem := kmsg.NewPtrInitProducerIDRequest()
		idem.TransactionTimeoutMillis = -1
		wantCode(t, "InitProducerId idempotent, WRITE on a topic", toBroker(t, alice, idem).(*kmsg.InitProducerIDResponse).ErrorCode, &kerr.Error{})
		bob := userClient(t, b, "bob")
		wantCode(t, "InitProducerId idempotent, no WRITE", toBroker(t, bob, idem).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	})

	t.Run("admin", func(t *testing.T) {
		ct := kmsg.NewPtrCreateTopicsRequest()
		ctt := kmsg.NewCreateTopicsRequestTopic()
		ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "team-a.made", 1, 1
		ct.Topics = append(ct.Topics, ctt)
		wantCode(t, "CreateTopics without CREATE", toBroker(t, alice, ct).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
		dt := kmsg.NewPtrDeleteTopicsRequest()
		dtt := kmsg.NewDeleteTopicsRequestTopic()
		dtt.Topic = kmsg.StringPtr("team-a.orders")
		dt.Topics, dt.TopicNames = append(dt.Topics, dtt), []string{"team-a.orders"}
		wantCode(t, "DeleteTopics without DELETE", toBroker(t, alice, dt).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
		dc := kmsg.NewPtrDescribeConfigsRequest()
		for _, rs := range []struct {
			typ  kmsg.ConfigResourceType
			name string
		}{{kmsg.ConfigResourceTypeBroker, "0"}, {kmsg.ConfigResourceTypeTopic, "team-a.orders"}} {
			r := kmsg.NewDescribeConfigsRequestResource()
			r.ResourceType, r.ResourceName = rs.typ, rs.name
			dc.Resources = append(dc.Resources, r)
		}
		codes := map[kmsg.ConfigResourceType]int16{}
		for _, r := range toBroker(t, alice, dc).(*kmsg.DescribeConfigsResponse).Resources {
			codes[r.ResourceType] = r.ErrorCode
		}
		wantCode(t, "DescribeConfigs broker", codes[kmsg.ConfigResourceTypeBroker], kerr.ClusterAuthorizationFailed)
		wantCode(t, "DescribeConfigs topic (READ does not imply DESCRIBE_CONFIGS)", codes[kmsg.ConfigResourceTypeTopic], kerr.TopicAuthorizationFailed)
		wantCode(t, "DescribeClientQuotas", toBroker(t, alice, kmsg.NewPtrDescribeClientQuotasRequest()).(*kmsg.DescribeClientQuotasResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
		wantCode(t, "DescribeUserScramCredentials", toBroker(t, alice, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
		// The super user may.
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, "team-a.made"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestACLClientFlows: franz-go's consumer group and transactional
// producer work end to end for a principal holding exactly the ACLs
// Kafka documents for them (prefixed topic READ/WRITE, group READ,
// transactional id WRITE), and the group's offsets commit.
func TestACLClientFlows(t *testing.T) {
	b := startBroker(t, aclSettings())
	adm := kadm.NewClient(userClient(t, b, "admin"))
	createTopic(t, adm, "flow.in", 2, nil)
	createTopic(t, adm, "flow.out", 1, nil)
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("flow.").ResourcePatternType(kadm.ACLPatternPrefixed).
		Operations(kadm.OpRead, kadm.OpWrite))
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:alice").Groups("flow-group").Operations(kadm.OpRead))
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:alice").TransactionalIDs("flow-tx").Operations(kadm.OpWrite))
	ctx := testContext(t)
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	mech := plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()

	producer := newClient(t, addr, kgo.SASL(mech), kgo.DefaultProduceTopic("flow.in"))
	for i := range 4 {
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte{byte('a' + i)}}).FirstErr(); err != nil {
			t.Fatalf("idempotent produce: %v", err)
		}
	}

	consumer := newClient(t, addr, kgo.SASL(mech), kgo.ConsumerGroup("flow-group"), kgo.ConsumeTopics("flow.in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < 4 {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		got += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}

	txp := newClient(t, addr, kgo.SASL(mech), kgo.TransactionalID("flow-tx"), kgo.DefaultProduceTopic("flow.out"))
	if err := txp.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txp.ProduceSync(ctx, &kgo.Record{Value: []byte("tx")}).FirstErr(); err != nil {
		t.Fatalf("transactional produce: %v", err)
	}
	if err := txp.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit transaction: %v", err)
	}

	// Without the transactional id ACL, the producer is refused.
	other := newClient(t, addr, kgo.SASL(mech), kgo.TransactionalID("other-tx"), kgo.DefaultProduceTopic("flow.out"))
	// kgo asks for the producer id when it starts, so the refusal comes
	// from BeginTransaction or from the first produce; it reports it as
	// the failure to get a producer id, not wrapped.
	err := other.BeginTransaction()
	if err == nil {
		err = other.ProduceSync(ctx, &kgo.Record{Value: []byte("tx")}).FirstErr()
	}
	if err == nil || !strings.Contains(err.Error(), kerr.TransactionalIDAuthorizationFailed.Message) {
		t.Fatalf("transactional produce without the id's ACL: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}
}

// BenchmarkProduceAuthorized compares produce round trips by a principal
// authorized through a prefixed ACL with the same broker config minus the
// authorizer: the cost of the checks on the produce path.
func BenchmarkProduceAuthorized(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "authorizer-off", true: "authorizer-on"}[on], func(b *testing.B) {
			settings := aclSettings()
			if !on {
				delete(settings, "authorizer.class.name")
			}
			br := startBroker(b, settings)
			addr := br.ListenerAddr("SASL_PLAINTEXT")
			adm := kadm.NewClient(newClient(b, addr, kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism())))
			createTopic(b, adm, "bench.t", 1, nil)
			if on {
				res, err := adm.CreateACLs(testContext(b), kadm.NewACLs().Allow("User:alice").Topics("bench.").
					ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite))
				if err != nil || res[0].Err != nil {
					b.Fatal(err)
				}
			}
			cl := newClient(b, addr, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()),
				kgo.DefaultProduceTopic("bench.t"), kgo.ProducerLinger(0))
			ctx := testContext(b)
			rec := &kgo.Record{Value: make([]byte, 100)}
			b.ResetTimer()
			for b.Loop() {
				if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
