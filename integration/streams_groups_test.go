package integration

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// streamsMember drives one KIP-1071 streams group member with raw
// StreamsGroupHeartbeat requests, reporting the tasks it was given as the
// tasks it owns, as a Kafka Streams client does once it has revoked and
// started them.
type streamsMember struct {
	t        *testing.T
	cl       streamsRequestor
	group    string
	id       string
	process  string
	port     uint16
	epoch    int32
	active   []kmsg.TaskIDs
	standby  []kmsg.TaskIDs
	endpoint int32
	last     *kmsg.StreamsGroupHeartbeatResponse
}

// wordCountTopology is a two-subtopology word count: "0" reads source,
// repartitions by word into <app>-repartition (no partition count: it
// takes the source's), "1" counts into a store with a compacted changelog.
func wordCountTopology(app, source string) *kmsg.StreamsGroupHeartbeatRequestTopology {
	t := kmsg.NewStreamsGroupHeartbeatRequestTopology()
	t.Epoch = 0
	s0 := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
	s0.SubtopologyID = "0"
	s0.SourceTopics = []string{source}
	s0.RepartitionSinkTopics = []string{app + "-repartition"}
	s1 := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
	s1.SubtopologyID = "1"
	rep := kmsg.NewTopicInfo()
	rep.Topic = app + "-repartition"
	s1.RepartitionSourceTopics = []kmsg.TopicInfo{rep}
	cl := kmsg.NewTopicInfo()
	cl.Topic = app + "-counts-changelog"
	cfg := kmsg.NewTopicInfoConfig()
	cfg.Key, cfg.Value = "cleanup.policy", "compact"
	cl.Configs = []kmsg.TopicInfoConfig{cfg}
	s1.StateChangelogTopics = []kmsg.TopicInfo{cl}
	t.Subtopologies = []kmsg.StreamsGroupHeartbeatRequestTopologySubtopology{s0, s1}
	return &t
}

func (m *streamsMember) heartbeat(topology *kmsg.StreamsGroupHeartbeatRequestTopology) *kmsg.StreamsGroupHeartbeatResponse {
	m.t.Helper()
	req := kmsg.NewPtrStreamsGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.id, m.epoch
	req.EndpointInformationEpoch = m.endpoint
	if m.epoch == 0 {
		req.RebalanceTimeoutMillis = 30000
		req.Topology = topology
		req.ProcessID = kmsg.StringPtr(m.process)
		if m.port != 0 { // 0: no IQ endpoint (application.server unset)
			req.UserEndpoint = &kmsg.StreamsGroupHeartbeatRequestUserEndpoint{Host: "localhost", Port: m.port}
		}
		req.ClientTags = []kmsg.StreamsGroupHeartbeatRequestClientTag{}
	}
	req.ActiveTasks, req.StandbyTasks, req.WarmupTasks = orTasks(m.active), orTasks(m.standby), []kmsg.TaskIDs{}
	var resp *kmsg.StreamsGroupHeartbeatResponse
	// Kafka answers NOT_COORDINATOR (or loading) while its coordinator
	// for __consumer_offsets starts; retried as clients do.
	eventually(m.t, 30*time.Second, "a group coordinator answer", func() bool {
		var err error
		resp, err = req.RequestWith(testContext(m.t), m.cl)
		if err != nil {
			m.t.Fatalf("StreamsGroupHeartbeat %s: %v", m.id, err)
		}
		switch resp.ErrorCode {
		case kerr.NotCoordinator.Code, kerr.CoordinatorLoadInProgress.Code, kerr.CoordinatorNotAvailable.Code:
			return false
		case kerr.UnknownServerError.Code:
			// Kafka 4.2.1 fails a joining member that has an IQ endpoint
			// with UNKNOWN_SERVER_ERROR while a source topic is missing
			// from its coordinator's metadata image, which lags a topic
			// just created; the member's next heartbeat succeeds. A broker
			// that keeps answering it still fails the test at the deadline.
			return m.epoch != 0
		}
		return true
	})
	if resp.ErrorCode != 0 {
		m.t.Fatalf("StreamsGroupHeartbeat %s: %v %v", m.id, kerr.ErrorForCode(resp.ErrorCode), deref(resp.ErrorMessage))
	}
	m.epoch = resp.MemberEpoch
	if resp.ActiveTasks != nil {
		m.active, m.standby = resp.ActiveTasks, resp.StandbyTasks
	}
	if resp.PartitionsByUserEndpoint != nil {
		m.endpoint = resp.EndpointInformationEpoch
	}
	m.last = resp
	return resp
}

func orTasks(t []kmsg.TaskIDs) []kmsg.TaskIDs {
	if t == nil {
		return []kmsg.TaskIDs{}
	}
	return t
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// taskSet flattens tasks to "sub:partition" strings, sorted.
func taskSet(ts []kmsg.TaskIDs) []string {
	var out []string
	for _, t := range ts {
		for _, p := range t.Partitions {
			out = append(out, t.SubtopologyID+":"+string(rune('0'+p)))
		}
	}
	slices.Sort(out)
	return out
}

func hasStatus(resp *kmsg.StreamsGroupHeartbeatResponse, code int8) bool {
	for _, s := range resp.Status {
		if s.StatusCode == code {
			return true
		}
	}
	return false
}

// TestStreamsGroupHeartbeatAssignDescribe: a member joining with a word
// count topology is told the internal topics are missing, the broker
// creates them (repartition with the source's partition count, changelog
// compacted with one partition per task), the member then gets all eight
// tasks; a second process joins and gets half of them only after the
// first revoked them (no task is ever active on both), and
// StreamsGroupDescribe and ListGroups show the group as the members see it.
func TestStreamsGroupHeartbeatAssignDescribe(t *testing.T) {
	b := startBroker(t, nil)
	streamsGroupScenario(t, b.Addr())
}

// TestStreamsGroupScenarioOnKafka42 runs the scenarios of
// TestStreamsGroupHeartbeatAssignDescribe, TestStreamsGroupMissingSourceTopics
// and TestStreamsGroupConfigsCommitsAndDelete against Apache Kafka 4.2.1, so
// that what they assert of Skiff is what Kafka does.
func TestStreamsGroupScenarioOnKafka42(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache Kafka")
	}
	k := startKafka(t, kafkaOptions{version: kafka42Version})
	t.Run("AssignDescribe", func(t *testing.T) { streamsGroupScenario(t, k.addr) })
	t.Run("MissingSourceTopics", func(t *testing.T) { missingSourceScenario(t, k.addr) })
	t.Run("ConfigsCommitsDelete", func(t *testing.T) { configsCommitsDeleteScenario(t, k.addr) })
}

func streamsGroupScenario(t *testing.T, addr string) {
	adm := newAdmin(t, addr)
	createTopic(t, adm, "wc-src", 4, nil)
	topo := wordCountTopology("app", "wc-src")
	awaitGroupCoordinator(t, addr, "app")
	a := &streamsMember{t: t, cl: streamsClient(t, addr), group: "app", id: "member-a", process: "process-a", port: 7001}
	resp := a.heartbeat(topo)
	if !hasStatus(resp, 3) {
		t.Fatalf("first heartbeat status %+v, want MISSING_INTERNAL_TOPICS", resp.Status)
	}
	if len(taskSet(resp.ActiveTasks)) != 0 {
		t.Fatalf("tasks before the internal topics exist: %v", taskSet(resp.ActiveTasks))
	}
	eventually(t, 30*time.Second, "the internal topics with 4 partitions", func() bool {
		topics, err := adm.ListTopics(testContext(t), "app-repartition", "app-counts-changelog")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"app-repartition", "app-counts-changelog"} {
			if td, ok := topics[name]; !ok || td.Err != nil || len(td.Partitions) != 4 {
				return false
			}
		}
		return true
	})
	rc, err := adm.DescribeTopicConfigs(testContext(t), "app-counts-changelog")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rc.On("app-counts-changelog", nil); err != nil || !hasConfig(c.Configs, "cleanup.policy", "compact") {
		t.Fatalf("changelog configs: %+v %v", c, err)
	}

	want := []string{"0:0", "0:1", "0:2", "0:3", "1:0", "1:1", "1:2", "1:3"}
	eventually(t, 30*time.Second, "member a gets every task", func() bool {
		a.heartbeat(nil)
		return slices.Equal(taskSet(a.active), want)
	})
	if len(a.last.Status) != 0 {
		t.Fatalf("status once ready: %+v", a.last.Status)
	}

	bm := &streamsMember{t: t, cl: streamsClient(t, addr), group: "app", id: "member-b", process: "process-b", port: 7002}
	bm.heartbeat(topo)
	overlap := func() {
		for _, x := range taskSet(a.active) {
			if slices.Contains(taskSet(bm.active), x) {
				t.Fatalf("task %s active on both members: a %v b %v", x, taskSet(a.active), taskSet(bm.active))
			}
		}
	}
	eventually(t, 30*time.Second, "tasks split between the members", func() bool {
		a.heartbeat(nil)
		overlap()
		bm.heartbeat(nil)
		overlap()
		return len(taskSet(a.active)) == 4 && len(taskSet(bm.active)) == 4 && a.epoch == bm.epoch
	})
	// IQ: b's endpoint map names both endpoints and their source partitions.
	bm.endpoint = -1
	bm.heartbeat(nil)
	if n := len(bm.last.PartitionsByUserEndpoint); n != 2 {
		t.Fatalf("partitions by user endpoint: %d endpoints, want 2: %+v", n, bm.last.PartitionsByUserEndpoint)
	}

	dreq := kmsg.NewPtrStreamsGroupDescribeRequest()
	dreq.Groups = []string{"app", "nope"}
	dresp, err := dreq.RequestWith(testContext(t), streamsClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	// Kafka may answer in another order than asked.
	byName := map[string]kmsg.StreamsGroupDescribeResponseGroup{}
	for _, dg := range dresp.Groups {
		byName[dg.Group] = dg
	}
	g := byName["app"]
	if g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != 2 || g.Epoch != a.epoch || g.AssignmentEpoch != a.epoch {
		t.Fatalf("describe: %+v", g)
	}
	if g.Topology == nil || len(g.Topology.Subtopologies) != 2 || g.Topology.Subtopologies[1].StateChangelogTopics[0].Topic != "app-counts-changelog" {
		t.Fatalf("described topology: %+v", g.Topology)
	}
	for _, dm := range g.Members {
		if dm.UserEndpoint == nil || len(taskSet(dm.Assignment.ActiveTasks)) != 4 || !slices.Equal(taskSet(dm.Assignment.ActiveTasks), taskSet(dm.TargetAssignment.ActiveTasks)) {
			t.Fatalf("described member: %+v", dm)
		}
	}
	if byName["nope"].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("describe of an unknown group: %+v", byName["nope"])
	}
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.TypesFilter = []string{"streams"}
	listed, err := lreq.RequestWith(testContext(t), newClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	if len(listed.Groups) != 1 || listed.Groups[0].Group != "app" || listed.Groups[0].GroupState != "Stable" ||
		listed.Groups[0].ProtocolType != "streams" || listed.Groups[0].GroupType != "streams" {
		t.Fatalf("ListGroups streams: %+v", listed.Groups)
	}

	// b leaves: a gets every task back.
	leave := kmsg.NewPtrStreamsGroupHeartbeatRequest()
	leave.Group, leave.MemberID, leave.MemberEpoch = "app", bm.id, -1
	if lr, err := leave.RequestWith(testContext(t), bm.cl); err != nil || lr.ErrorCode != 0 || lr.MemberEpoch != -1 {
		t.Fatalf("leave: %+v %v", lr, err)
	}
	eventually(t, 30*time.Second, "member a gets every task back", func() bool {
		a.heartbeat(nil)
		return slices.Equal(taskSet(a.active), want)
	})
}

// awaitGroupCoordinator waits until group has a coordinator: Kafka creates
// __consumer_offsets on the first FindCoordinator and answers
// NOT_COORDINATOR until it has.
func awaitGroupCoordinator(t *testing.T, addr, group string) {
	t.Helper()
	cl := newClient(t, addr)
	eventually(t, 30*time.Second, "the group coordinator", func() bool {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKeys = []string{group}
		resp, err := req.RequestWith(testContext(t), cl)
		return err == nil && len(resp.Coordinators) == 1 && resp.Coordinators[0].ErrorCode == 0
	})
}

func hasConfig(cs []kadm.Config, name, value string) bool {
	for _, c := range cs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// TestStreamsGroupMissingSourceTopics: a topology whose source topic does
// not exist gets MISSING_SOURCE_TOPICS and no tasks, and tasks once it is
// created.
func TestStreamsGroupMissingSourceTopics(t *testing.T) {
	missingSourceScenario(t, startBroker(t, nil).Addr())
}

func missingSourceScenario(t *testing.T, addr string) {
	awaitGroupCoordinator(t, addr, "nosrc")
	// No IQ endpoint: Kafka 4.2.1 answers this join UNKNOWN_SERVER_ERROR
	// when the member has one (building the endpoint map of a topology
	// it could not configure), instead of MISSING_SOURCE_TOPICS.
	m := &streamsMember{t: t, cl: streamsClient(t, addr), group: "nosrc", id: "m", process: "p"}
	resp := m.heartbeat(wordCountTopology("nosrc", "absent"))
	if !hasStatus(resp, 1) || len(taskSet(resp.ActiveTasks)) != 0 {
		t.Fatalf("status %+v tasks %v, want MISSING_SOURCE_TOPICS and none", resp.Status, taskSet(resp.ActiveTasks))
	}
	createTopic(t, newAdmin(t, addr), "absent", 2, nil)
	eventually(t, 30*time.Second, "tasks once the source exists", func() bool {
		m.heartbeat(nil)
		return len(taskSet(m.active)) == 4
	})
}

// TestStreamsVersionGatesStreamsAPIs: with streams.version downgraded to
// 0, StreamsGroupHeartbeat and StreamsGroupDescribe answer
// UNSUPPORTED_VERSION; upgraded again, they serve.
func TestStreamsVersionGatesStreamsAPIs(t *testing.T) {
	b := startBroker(t, nil)
	cl := streamsClient(t, b.Addr())
	update := func(level int16) {
		f := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		f.Feature, f.MaxVersionLevel, f.UpgradeType = "streams.version", level, 1
		if level == 0 {
			f.UpgradeType = 2 // safe downgrade
		}
		resp, err, msg := updateFeatures(t, b.Addr(), 1, false, f)
		if err != nil || len(resp.Results) != 1 || resp.Results[0].ErrorCode != 0 {
			t.Fatalf("UpdateFeatures streams.version=%d: %v %s %+v", level, err, msg, resp)
		}
	}
	hb := func() int16 {
		req := kmsg.NewPtrStreamsGroupHeartbeatRequest()
		req.Group, req.MemberID, req.RebalanceTimeoutMillis = "gated", "m", 30000
		req.Topology = wordCountTopology("gated", "gated-src")
		req.ProcessID = kmsg.StringPtr("p")
		req.ActiveTasks, req.StandbyTasks, req.WarmupTasks = []kmsg.TaskIDs{}, []kmsg.TaskIDs{}, []kmsg.TaskIDs{}
		resp, err := req.RequestWith(testContext(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	update(0)
	if code := hb(); code != kerr.UnsupportedVersion.Code {
		t.Fatalf("heartbeat at streams.version 0: code %d, want UNSUPPORTED_VERSION", code)
	}
	dreq := kmsg.NewPtrStreamsGroupDescribeRequest()
	dreq.Groups = []string{"gated"}
	if dresp, err := dreq.RequestWith(testContext(t), cl); err != nil || dresp.Groups[0].ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("describe at streams.version 0: %+v %v", dresp, err)
	}
	update(1)
	if code := hb(); code != 0 {
		t.Fatalf("heartbeat at streams.version 1: code %d", code)
	}
}

// streamsRequestor sends the KIP-1071 APIs straight to the (single)
// broker: kgo knows them (kmsg v1.15) but does not route them to the
// group coordinator yet, and its stable version table leaves them out.
type streamsRequestor struct{ cl *kgo.Client }

func streamsClient(t *testing.T, addr string) streamsRequestor {
	mv := kversion.Stable()
	mv.SetMaxKeyVersion(int16(kmsg.StreamsGroupHeartbeat), 0)
	mv.SetMaxKeyVersion(int16(kmsg.StreamsGroupDescribe), 0)
	return streamsRequestor{newClient(t, addr, kgo.MaxVersions(mv))}
}

func (r streamsRequestor) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, r.cl)
	if err != nil {
		return nil, err
	}
	return r.cl.Broker(int(md.Brokers[0].NodeID)).Request(ctx, req)
}

// TestStreamsGroupConfigsCommitsAndDelete: streams.num.standby.replicas set
// on the GROUP resource gives every task a standby on the other process;
// members commit offsets with their member epoch (a stale one is refused);
// a streams group with members cannot be deleted, an empty one can.
func TestStreamsGroupConfigsCommitsAndDelete(t *testing.T) {
	configsCommitsDeleteScenario(t, startBroker(t, nil).Addr())
}

func configsCommitsDeleteScenario(t *testing.T, addr string) {
	awaitGroupCoordinator(t, addr, "cfg")
	cl := newClient(t, addr)
	adm := newAdmin(t, addr)
	createTopic(t, adm, "cfg-src", 2, nil)
	topo := wordCountTopology("cfg", "cfg-src")
	a := &streamsMember{t: t, cl: streamsClient(t, addr), group: "cfg", id: "a", process: "pa", port: 1}
	bm := &streamsMember{t: t, cl: streamsClient(t, addr), group: "cfg", id: "b", process: "pb", port: 2}
	a.heartbeat(topo)
	bm.heartbeat(topo)
	eventually(t, 30*time.Second, "two tasks each", func() bool {
		a.heartbeat(nil)
		bm.heartbeat(nil)
		return len(taskSet(a.active)) == 2 && len(taskSet(bm.active)) == 2 && a.epoch == bm.epoch
	})

	setShareGroupConfig(t, cl, "cfg", "streams.num.standby.replicas", "1")
	if c := describeGroupConfigs(t, cl, "cfg")["streams.num.standby.replicas"]; c.Value == nil || *c.Value != "1" || c.Source != kmsg.ConfigSourceGroupConfig {
		t.Fatalf("described streams.num.standby.replicas: %+v", c)
	}
	// Standbys are for stateful tasks only: subtopology 1 (the counts
	// store) has two tasks, each with a standby on the other process.
	eventually(t, 30*time.Second, "a standby of every stateful task on the other process", func() bool {
		a.heartbeat(nil)
		bm.heartbeat(nil)
		for _, m := range []*streamsMember{a, bm} {
			if len(taskSet(m.standby)) != 1 || !strings.HasPrefix(taskSet(m.standby)[0], "1:") {
				return false
			}
			for _, x := range taskSet(m.standby) {
				if slices.Contains(taskSet(m.active), x) {
					t.Fatalf("member %s has %s both active and standby", m.id, x)
				}
			}
		}
		return true
	})
	bad := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "cfg"
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = "streams.num.standby.replicas", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("3")
	res.Configs = append(res.Configs, c)
	bad.Resources = append(bad.Resources, res)
	if resp, err := bad.RequestWith(testContext(t), cl); err != nil || resp.Resources[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("streams.num.standby.replicas=3: %+v %v, want INVALID_CONFIG", resp, err)
	}

	// By name (v9, Skiff) or by topic ID (v10, Kafka 4.2): kgo sends the
	// highest version both know.
	srcTopics, err := adm.ListTopics(testContext(t), "cfg-src")
	if err != nil {
		t.Fatal(err)
	}
	commit := func(epoch int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = "cfg", "a", epoch
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = "cfg-src", srcTopics["cfg-src"].ID
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 5
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(testContext(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(a.epoch); code != 0 {
		t.Fatalf("commit with the member epoch: %v", kerr.ErrorForCode(code))
	}
	if code := commit(a.epoch + 1); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit with a newer epoch: %v, want STALE_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}
	fetched, err := adm.FetchOffsets(testContext(t), "cfg")
	if o, ok := fetched.Lookup("cfg-src", 0); err != nil || !ok || o.At != 5 {
		t.Fatalf("committed offset: %+v %v", o, err)
	}

	del := func() int16 {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{"cfg"}
		resp, err := req.RequestWith(testContext(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Groups[0].ErrorCode
	}
	if code := del(); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete with members: %v, want NON_EMPTY_GROUP", kerr.ErrorForCode(code))
	}
	for _, m := range []*streamsMember{a, bm} {
		leave := kmsg.NewPtrStreamsGroupHeartbeatRequest()
		leave.Group, leave.MemberID, leave.MemberEpoch = "cfg", m.id, -1
		if lr, err := leave.RequestWith(testContext(t), m.cl); err != nil || lr.ErrorCode != 0 {
			t.Fatalf("leave %s: %+v %v", m.id, lr, err)
		}
	}
	if code := del(); code != 0 {
		t.Fatalf("delete of the empty group: %v", kerr.ErrorForCode(code))
	}
	dreq := kmsg.NewPtrStreamsGroupDescribeRequest()
	dreq.Groups = []string{"cfg"}
	if dresp, err := dreq.RequestWith(testContext(t), a.cl); err != nil || dresp.Groups[0].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("describe after delete: %+v %v", dresp, err)
	}
}

// TestStreamsGroupSurvivesBrokerRestart: a streams group's topology,
// epochs, assignment and group configs come back from __consumer_offsets
// and the cluster metadata after a restart: the member heartbeats on with
// its epoch, keeps its tasks, and the standby setting still applies.
func TestStreamsGroupSurvivesBrokerRestart(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, newAdmin(t, b.Addr()), "rs-src", 2, nil)
	setShareGroupConfig(t, newClient(t, b.Addr()), "rs", "streams.num.standby.replicas", "1")
	m := &streamsMember{t: t, cl: streamsClient(t, b.Addr()), group: "rs", id: "m", process: "p", port: 1}
	m.heartbeat(wordCountTopology("rs", "rs-src"))
	eventually(t, 30*time.Second, "the member's four tasks", func() bool {
		m.heartbeat(nil)
		return len(taskSet(m.active)) == 4
	})
	describe := func(addr string) kmsg.StreamsGroupDescribeResponseGroup {
		req := kmsg.NewPtrStreamsGroupDescribeRequest()
		req.Groups = []string{"rs"}
		resp, err := req.RequestWith(testContext(t), streamsClient(t, addr))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Groups[0]
	}
	before := describe(b.Addr())

	b.Close()
	b = startBroker(t, nil, b.dir)
	after := describe(b.Addr())
	if after.ErrorCode != 0 || after.State != before.State || after.Epoch != before.Epoch || after.AssignmentEpoch != before.AssignmentEpoch ||
		len(after.Members) != 1 || taskSet(after.Members[0].Assignment.ActiveTasks) == nil ||
		!slices.Equal(taskSet(after.Members[0].Assignment.ActiveTasks), taskSet(before.Members[0].Assignment.ActiveTasks)) {
		t.Fatalf("after restart %+v\nbefore %+v", after, before)
	}
	if c := describeGroupConfigs(t, newClient(t, b.Addr()), "rs")["streams.num.standby.replicas"]; c.Value == nil || *c.Value != "1" {
		t.Fatalf("streams.num.standby.replicas after restart: %+v", c)
	}
	m.cl = streamsClient(t, b.Addr())
	epoch := m.epoch
	r := m.heartbeat(nil)
	if r.MemberEpoch != epoch || len(taskSet(m.active)) != 4 {
		t.Fatalf("heartbeat after restart: epoch %d (want %d), tasks %v", r.MemberEpoch, epoch, taskSet(m.active))
	}
	// The restored group config is in effect: with a second process,
	// each stateful task gets a standby.
	m2 := &streamsMember{t: t, cl: streamsClient(t, b.Addr()), group: "rs", id: "m2", process: "p2", port: 2}
	m2.heartbeat(wordCountTopology("rs", "rs-src"))
	eventually(t, 30*time.Second, "standbys from the restored streams.num.standby.replicas", func() bool {
		m.heartbeat(nil)
		m2.heartbeat(nil)
		// Subtopology 1's two tasks are the stateful ones: each has a
		// standby, on the member that does not run it.
		for _, x := range append(taskSet(m.standby), taskSet(m2.standby)...) {
			if !strings.HasPrefix(x, "1:") {
				t.Fatalf("standby of stateless task %s", x)
			}
		}
		for _, mm := range []*streamsMember{m, m2} {
			for _, x := range taskSet(mm.standby) {
				if slices.Contains(taskSet(mm.active), x) {
					t.Fatalf("%s runs %s both active and standby", mm.id, x)
				}
			}
		}
		return len(taskSet(m.standby))+len(taskSet(m2.standby)) == 2
	})
	// Heartbeats of a stable group do not bump the group epoch.
	epoch = describe(b.Addr()).Epoch
	for range 5 {
		m.heartbeat(nil)
		m2.heartbeat(nil)
	}
	if e := describe(b.Addr()).Epoch; e != epoch {
		t.Fatalf("group epoch went from %d to %d over heartbeats that changed nothing", epoch, e)
	}
}
