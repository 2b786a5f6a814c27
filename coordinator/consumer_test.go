package coordinator

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cgMember is a scripted KIP-848 client: it remembers its epoch and the
// partitions it owns, and acknowledges revocations on its next heartbeat.
type cgMember struct {
	h        *harness
	group    string
	id       string
	instance *string
	epoch    int32
	owned    map[[16]byte][]int32
}

func (h *harness) cgJoin(group, id string, assignor *string, topics ...string) (*cgMember, *kmsg.ConsumerGroupHeartbeatResponse) {
	h.t.Helper()
	m := &cgMember{h: h, group: group, id: id}
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch = group, id, 0
	r.RebalanceTimeoutMillis = 30_000
	r.SubscribedTopicNames = topics
	if topics == nil {
		r.SubscribedTopicNames = []string{}
	}
	r.ServerAssignor = assignor
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	resp := m.send(r)
	return m, resp
}

func (m *cgMember) send(r *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := m.h.g.ConsumerGroupHeartbeat(ctxFor("cg-client"), r)
	if resp.ErrorCode == 0 {
		m.epoch = resp.MemberEpoch
		if resp.Assignment != nil {
			m.owned = make(map[[16]byte][]int32)
			for _, t := range resp.Assignment.Topics {
				m.owned[t.TopicID] = slices.Clone(t.Partitions)
			}
		}
	}
	return resp
}

// heartbeat sends a regular heartbeat reporting what the member owns.
func (m *cgMember) heartbeat() *kmsg.ConsumerGroupHeartbeatResponse {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch, r.InstanceID = m.group, m.id, m.epoch, m.instance
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, id := range sortedTopicIDs(m.owned) {
		t := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		t.TopicID, t.Partitions = id, m.owned[id]
		r.Topics = append(r.Topics, t)
	}
	return m.send(r)
}

func (m *cgMember) count() int {
	n := 0
	for _, ps := range m.owned {
		n += len(ps)
	}
	return n
}

func (m *cgMember) has(topic string, p int32) bool {
	return slices.Contains(m.owned[topicIDFor(topic)], p)
}

func mustOK(t *testing.T, r *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	if r.ErrorCode != 0 {
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		t.Fatalf("heartbeat error %d %s", r.ErrorCode, msg)
	}
	return r
}

func (h *harness) cgDescribe(group string) kmsg.ConsumerGroupDescribeResponseGroup {
	r := kmsg.NewPtrConsumerGroupDescribeRequest()
	r.Version = 1
	r.Groups = []string{group}
	return h.g.ConsumerGroupDescribe(context.Background(), r).Groups[0]
}

func TestConsumerGroupJoinGetsEverything(t *testing.T) {
	h := newHarness(t, testConfig(), 2)
	a, r := h.cgJoin("cg", "a", nil, "t1", "t2")
	mustOK(t, r)
	if r.MemberEpoch != 1 || *r.MemberID != "a" || r.HeartbeatIntervalMillis != 5000 || a.count() != 5 {
		t.Fatalf("join %+v owned %v", r, a.owned)
	}
	d := h.cgDescribe("cg")
	if d.ErrorCode != 0 || d.State != "Stable" || d.Epoch != 1 || d.AssignmentEpoch != 1 || d.AssignorName != "uniform" ||
		len(d.Members) != 1 || d.Members[0].ClientID != "cg-client" || len(d.Members[0].Assignment.TopicPartitions) != 2 {
		t.Fatalf("describe %+v", d)
	}
	lg := h.listGroups(nil, []string{"consumer"})["cg"]
	if lg.GroupType != "consumer" || lg.ProtocolType != "consumer" || lg.GroupState != "Stable" {
		t.Fatalf("listed %+v", lg)
	}
	// A keepalive heartbeat carries no assignment.
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version = 1
	hb.Group, hb.MemberID, hb.MemberEpoch = "cg", "a", 1
	if r := mustOK(t, h.g.ConsumerGroupHeartbeat(ctxFor("c"), hb)); r.Assignment != nil || r.MemberEpoch != 1 {
		t.Fatalf("keepalive %+v", r)
	}
}

// A partition moves to a new member only after its previous owner has
// acknowledged revoking it.
func TestConsumerGroupIncrementalRevocation(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	a, r := h.cgJoin("cg", "a", nil, "t1")
	mustOK(t, r)
	if a.count() != 3 {
		t.Fatalf("a owns %v", a.owned)
	}
	b, r := h.cgJoin("cg", "b", nil, "t1")
	mustOK(t, r)
	if r.MemberEpoch != 2 || b.count() != 0 {
		t.Fatalf("b must wait for a's partition: epoch %d owned %v", r.MemberEpoch, b.owned)
	}
	if st := h.cgDescribe("cg").State; st != "Reconciling" {
		t.Fatalf("state %s", st)
	}
	// a is asked to give one partition up; it stays in epoch 1 meanwhile.
	r = mustOK(t, a.heartbeat())
	if r.MemberEpoch != 1 || a.count() != 2 {
		t.Fatalf("revocation step: epoch %d owned %v", r.MemberEpoch, a.owned)
	}
	// b still cannot have it: a has not confirmed.
	mustOK(t, b.heartbeat())
	if b.count() != 0 {
		t.Fatalf("b got a partition before it was revoked: %v", b.owned)
	}
	// a confirms (no longer reports it) and moves to epoch 2.
	if r = mustOK(t, a.heartbeat()); r.MemberEpoch != 2 {
		t.Fatalf("a after revoking: epoch %d", r.MemberEpoch)
	}
	mustOK(t, b.heartbeat())
	if b.count() != 1 || b.epoch != 2 {
		t.Fatalf("b after release: epoch %d owned %v", b.epoch, b.owned)
	}
	for p := int32(0); p < 3; p++ {
		if a.has("t1", p) == b.has("t1", p) {
			t.Fatalf("partition %d owned by both or neither", p)
		}
	}
	if st := h.cgDescribe("cg").State; st != "Stable" {
		t.Fatalf("state %s", st)
	}
}

func TestConsumerGroupRebalanceTimeoutFencesSlowRevoker(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	a, _ := h.cgJoin("cg", "a", nil, "t1")
	b, _ := h.cgJoin("cg", "b", nil, "t1")
	mustOK(t, a.heartbeat()) // revocation requested; a never acknowledges
	for range 7 {            // b keeps its session alive past a's 30s rebalance timeout
		h.clock.Advance(5 * time.Second)
		mustOK(t, b.heartbeat())
	}
	if r := a.heartbeat(); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("fenced member heartbeat: %d", r.ErrorCode)
	}
	mustOK(t, b.heartbeat())
	if b.count() != 3 {
		t.Fatalf("b owns %v after a was fenced", b.owned)
	}
}

func TestConsumerGroupSessionTimeoutAndLeave(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	a, _ := h.cgJoin("cg", "a", nil, "t1")
	b, _ := h.cgJoin("cg", "b", nil, "t1")
	c, _ := h.cgJoin("cg", "c", nil, "t1")
	// c leaves explicitly.
	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.Version = 1
	leave.Group, leave.MemberID, leave.MemberEpoch = "cg", "c", -1
	if r := mustOK(t, h.g.ConsumerGroupHeartbeat(ctxFor("c"), leave)); r.MemberEpoch != -1 {
		t.Fatalf("leave %+v", r)
	}
	if r := c.heartbeat(); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("after leave: %d", r.ErrorCode)
	}
	// b goes silent for a session timeout (45s) while a heartbeats.
	for range 10 {
		h.clock.Advance(5 * time.Second)
		mustOK(t, a.heartbeat())
	}
	if r := b.heartbeat(); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member: %d", r.ErrorCode)
	}
	for range 3 {
		mustOK(t, a.heartbeat())
	}
	if a.count() != 3 {
		t.Fatalf("a owns %v", a.owned)
	}
}

func TestConsumerGroupRegexSubscription(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	m := &cgMember{h: h, group: "cg", id: "a"}
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.RebalanceTimeoutMillis = "cg", "a", 30_000
	re := "t[0-9]+"
	r.SubscribedTopicRegex = &re
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	mustOK(t, m.send(r))
	if m.count() != 5 {
		t.Fatalf("regex assignment %v", m.owned)
	}
	h.topics.set("t3", 4)
	h.topics.set("other", 4) // does not match the whole name
	h.topics.set("xt1", 4)
	mustOK(t, m.heartbeat())
	if m.count() != 9 || m.epoch != 2 || !m.has("t3", 3) {
		t.Fatalf("after t3 appeared: epoch %d owned %v", m.epoch, m.owned)
	}
	d := h.cgDescribe("cg")
	if d.Members[0].SubscribedTopicRegex == nil || *d.Members[0].SubscribedTopicRegex != re {
		t.Fatalf("describe regex %+v", d.Members[0])
	}

	bad := "("
	r.MemberID = "b"
	r.SubscribedTopicRegex = &bad
	if resp := h.g.ConsumerGroupHeartbeat(ctxFor("c"), r); resp.ErrorCode != kerr.InvalidRegularExpression.Code {
		t.Fatalf("invalid regex: %d", resp.ErrorCode)
	}
}

func TestConsumerGroupRangeAssignor(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	rng := "range"
	a, _ := h.cgJoin("cg", "a", &rng, "t1", "t2")
	b, _ := h.cgJoin("cg", "b", &rng, "t1", "t2")
	for range 3 {
		mustOK(t, a.heartbeat())
		mustOK(t, b.heartbeat())
	}
	if !a.has("t1", 0) || !a.has("t1", 1) || !a.has("t2", 0) || !b.has("t1", 2) || !b.has("t2", 1) || a.count()+b.count() != 5 {
		t.Fatalf("range: a %v b %v", a.owned, b.owned)
	}
	if d := h.cgDescribe("cg"); d.AssignorName != "range" {
		t.Fatalf("assignor %s", d.AssignorName)
	}
}

func TestConsumerGroupHeartbeatErrors(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	send := func(mut func(r *kmsg.ConsumerGroupHeartbeatRequest)) int16 {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Version = 1
		r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = "cg", "x", 0, 30_000
		r.SubscribedTopicNames = []string{"t1"}
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		mut(r)
		return h.g.ConsumerGroupHeartbeat(ctxFor("c"), r).ErrorCode
	}
	for _, tc := range []struct {
		name string
		mut  func(r *kmsg.ConsumerGroupHeartbeatRequest)
		want int16
	}{
		{"empty group", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }, kerr.InvalidRequest.Code},
		{"v1 without member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest.Code},
		{"join without rebalance timeout", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest.Code},
		{"join owning partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Topics = nil }, kerr.InvalidRequest.Code},
		{"join without subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest.Code},
		{"bad epoch", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, kerr.InvalidRequest.Code},
		{"unknown assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { s := "sticky"; r.ServerAssignor = &s }, kerr.UnsupportedAssignor.Code},
		{"unknown group", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = 3 }, kerr.GroupIDNotFound.Code},
		{"leave unknown group", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -1 }, kerr.GroupIDNotFound.Code},
	} {
		if got := send(tc.mut); got != tc.want {
			t.Errorf("%s: got %d want %d", tc.name, got, tc.want)
		}
	}
	a, _ := h.cgJoin("cg", "a", nil, "t1")
	if got := send(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = 1 }); got != kerr.UnknownMemberID.Code {
		t.Errorf("unknown member: %d", got)
	}
	a.epoch++
	if r := a.heartbeat(); r.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Errorf("epoch ahead: %d", r.ErrorCode)
	}
	cfg := testConfig()
	cfg.ConsumerMaxGroupSize = 1
	h2 := newHarness(t, cfg, 1)
	h2.cgJoin("cg", "a", nil, "t1")
	if _, r := h2.cgJoin("cg", "b", nil, "t1"); r.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Errorf("max size: %d", r.ErrorCode)
	}
}

// A response lost in flight: the member retries with its previous epoch
// and is accepted if it owns no more than its assignment.
func TestConsumerGroupPreviousEpochAccepted(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	a, _ := h.cgJoin("cg", "a", nil, "t1")
	h.cgJoin("cg", "b", nil, "t2") // bumps the epoch to 2; a keeps t1
	mustOK(t, a.heartbeat())
	if a.epoch != 2 {
		t.Fatalf("a epoch %d", a.epoch)
	}
	a.epoch = 1 // as if the epoch-2 answer was lost
	if r := a.heartbeat(); r.ErrorCode != 0 || r.MemberEpoch != 2 {
		t.Fatalf("previous epoch: %d epoch %d", r.ErrorCode, r.MemberEpoch)
	}
}

func TestConsumerGroupStaticMember(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	inst := "i1"
	join := func(id string) (*cgMember, *kmsg.ConsumerGroupHeartbeatResponse) {
		m := &cgMember{h: h, group: "cg", id: id, instance: &inst}
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Version = 1
		r.Group, r.MemberID, r.InstanceID, r.RebalanceTimeoutMillis = "cg", id, &inst, 30_000
		r.SubscribedTopicNames = []string{"t1"}
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return m, m.send(r)
	}
	m1, r := join("m1")
	mustOK(t, r)
	other, _ := h.cgJoin("cg", "other", nil, "t1")
	for range 3 {
		mustOK(t, m1.heartbeat())
		mustOK(t, other.heartbeat())
	}
	if m1.count() != 2 || other.count() != 1 {
		t.Fatalf("before restart: m1 %v other %v", m1.owned, other.owned)
	}
	before := h.cgDescribe("cg")
	// A second process with the same instance id while m1 is active.
	if _, r := join("m2"); r.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("unreleased instance id: %d", r.ErrorCode)
	}
	// m1 steps away temporarily (epoch -2) and comes back as m2.
	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.Version = 1
	leave.Group, leave.MemberID, leave.InstanceID, leave.MemberEpoch = "cg", "m1", &inst, -2
	if r := mustOK(t, h.g.ConsumerGroupHeartbeat(ctxFor("c"), leave)); r.MemberEpoch != -2 {
		t.Fatalf("static leave %+v", r)
	}
	m2, r := join("m2")
	mustOK(t, r)
	after := h.cgDescribe("cg")
	if after.Epoch != before.Epoch {
		t.Fatalf("static rejoin bumped the group epoch %d -> %d", before.Epoch, after.Epoch)
	}
	var was, now kmsg.Assignment
	for _, m := range before.Members {
		if m.MemberID == "m1" {
			was = m.TargetAssignment
		}
	}
	for _, m := range after.Members {
		if m.MemberID == "m2" {
			now = m.Assignment
		}
	}
	if len(was.TopicPartitions) == 0 || !slices.Equal(was.TopicPartitions[0].Partitions, now.TopicPartitions[0].Partitions) || r.Assignment == nil {
		t.Fatalf("static member did not get its assignment back: was %+v now %+v", was, now)
	}
	if m2.count() != 2 || r.MemberEpoch != after.Epoch {
		t.Fatalf("m2 owns %v at epoch %d", m2.owned, r.MemberEpoch)
	}
	// The old incarnation is gone.
	if r := m1.heartbeat(); r.ErrorCode != kerr.UnknownMemberID.Code && r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("old incarnation heartbeat: %d", r.ErrorCode)
	}
}

func TestClassicAndConsumerGroupsCoexist(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	h.stableGroup("classic", 1)
	if _, r := h.cgJoin("classic", "x", nil, "t1"); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("848 join of live classic group: %d", r.ErrorCode)
	}
	mustOK(t, second(h.cgJoin("modern", "a", nil, "t1")))
	if r := h.g.JoinGroup(ctxFor("c"), joinReq("modern", "", nil)); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("classic join of live consumer group: %d", r.ErrorCode)
	}
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Version = 6
	d.Groups = []string{"modern"}
	if dg := h.g.DescribeGroups(context.Background(), d).Groups[0]; dg.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("classic describe of consumer group: %d", dg.ErrorCode)
	}
	if dg := h.cgDescribe("classic"); dg.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("consumer describe of classic group: %d", dg.ErrorCode)
	}
	if code := h.heartbeat("modern", "a", 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("classic heartbeat to consumer group: %d", code)
	}
	groups := h.listGroups(nil, nil)
	if groups["classic"].GroupType != "classic" || groups["modern"].GroupType != "consumer" {
		t.Fatalf("list %+v", groups)
	}
	// A group with only offsets becomes a consumer group and keeps them.
	if code := h.commit(commitReq("offsets-only", "", -1, "t1", 0, 77)); code != 0 {
		t.Fatalf("commit %d", code)
	}
	mustOK(t, second(h.cgJoin("offsets-only", "a", nil, "t1")))
	if off, _ := h.fetchOne("offsets-only", "t1", 0); off != 77 {
		t.Fatalf("offset after conversion: %d", off)
	}
	if lg := h.listGroups(nil, nil)["offsets-only"]; lg.GroupType != "consumer" {
		t.Fatalf("converted group %+v", lg)
	}
}

func second[A, B any](_ A, b B) B { return b }

func TestConsumerGroupOffsets(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	a, _ := h.cgJoin("cg", "a", nil, "t1")
	c := commitReq("cg", "a", a.epoch, "t1", 0, 10)
	c.Version = 9
	if code := h.commit(c); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	c.Generation = a.epoch + 1
	if code := h.commit(c); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("stale epoch: %d", code)
	}
	c.Version, c.Generation = 8, a.epoch
	if code := h.commit(c); code != kerr.UnsupportedVersion.Code {
		t.Fatalf("v8 from a consumer-protocol member: %d", code)
	}
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 9
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group, rg.MemberID, rg.MemberEpoch = "cg", strPtr("a"), a.epoch+5
	f.Groups = append(f.Groups, rg)
	if g := h.g.OffsetFetch(context.Background(), f).Groups[0]; g.ErrorCode != kerr.StaleMemberEpoch.Code {
		t.Fatalf("fetch with stale epoch: %d", g.ErrorCode)
	}
	f.Groups[0].MemberEpoch = a.epoch
	if g := h.g.OffsetFetch(context.Background(), f).Groups[0]; g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].Partitions[0].Offset != 10 {
		t.Fatalf("fetch all: %+v", g)
	}
	if resp := offsetDelete(h, "cg", "t1", "t2"); resp.ErrorCode != 0 ||
		resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code || resp.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete %+v", resp)
	}
	if got := deleteGroups(h, "cg"); got["cg"] != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete non-empty consumer group: %v", got)
	}
	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.Version = 1
	leave.Group, leave.MemberID, leave.MemberEpoch = "cg", "a", -1
	mustOK(t, h.g.ConsumerGroupHeartbeat(ctxFor("c"), leave))
	if got := deleteGroups(h, "cg"); got["cg"] != 0 {
		t.Fatalf("delete empty consumer group: %v", got)
	}
	h.restart()
	if _, ok := h.listGroups(nil, nil)["cg"]; ok {
		t.Fatal("deleted consumer group back after restart")
	}
}

func TestConsumerGroupPersistence(t *testing.T) {
	h := newHarness(t, testConfig(), 3)
	a, _ := h.cgJoin("cg", "a", nil, "t1", "t2")
	b, _ := h.cgJoin("cg", "b", nil, "t1")
	for range 3 {
		mustOK(t, a.heartbeat())
		mustOK(t, b.heartbeat())
	}
	before := h.cgDescribe("cg")
	h.restart()
	after := h.cgDescribe("cg")
	if after.ErrorCode != 0 || after.State != before.State || after.Epoch != before.Epoch || after.AssignmentEpoch != before.AssignmentEpoch || len(after.Members) != 2 {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
	for i := range before.Members {
		bm, am := before.Members[i], after.Members[i]
		if bm.MemberID != am.MemberID || bm.MemberEpoch != am.MemberEpoch || !slices.Equal(bm.SubscribedTopics, am.SubscribedTopics) ||
			len(bm.Assignment.TopicPartitions) != len(am.Assignment.TopicPartitions) || am.ClientID != "cg-client" {
			t.Fatalf("member %d after restart %+v, before %+v", i, am, bm)
		}
	}
	// Members carry on with their epochs; no rebalance.
	if r := mustOK(t, a.heartbeat()); r.MemberEpoch != before.Epoch {
		t.Fatalf("heartbeat after restart: %+v", r)
	}
	mustOK(t, b.heartbeat())
	// Sessions restarted: b stops and is fenced after the session timeout.
	for range 10 {
		h.clock.Advance(5 * time.Second)
		mustOK(t, a.heartbeat())
	}
	if r := b.heartbeat(); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("b after its session expired: %d", r.ErrorCode)
	}
}

func TestAssignorsCoverAndBalance(t *testing.T) {
	topics := map[string]topicMeta{"x": {id: topicIDFor("x"), partitions: 7}, "y": {id: topicIDFor("y"), partitions: 4}}
	spec := assignSpec{
		members: []string{"m1", "m2", "m3"},
		subs:    map[string][]string{"m1": {"x", "y"}, "m2": {"x", "y"}, "m3": {"x"}},
		topics:  topics,
		current: map[string]topicParts{"m1": {topicIDFor("x"): {0, 1, 2, 3, 4, 5, 6}}},
	}
	for name, a := range map[string]assignor{"uniform": assignUniform, "range": assignRange} {
		out := a(spec)
		seen := map[string]int{}
		for m, tp := range out {
			for id, ps := range tp {
				topic := "x"
				if id == topicIDFor("y") {
					topic = "y"
				}
				if !slices.Contains(spec.subs[m], topic) {
					t.Fatalf("%s: %s got unsubscribed %s", name, m, topic)
				}
				for _, p := range ps {
					seen[topic+string(rune('0'+p))]++
				}
			}
		}
		if len(seen) != 11 {
			t.Fatalf("%s: %d partitions assigned, want 11: %v", name, len(seen), out)
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("%s: %s assigned %d times", name, k, n)
			}
		}
		if name == "uniform" {
			counts := []int{out["m1"].count(), out["m2"].count(), out["m3"].count()}
			if slices.Max(counts)-slices.Min(counts) > 1 {
				t.Fatalf("uniform unbalanced: %v", counts)
			}
			// Sticky: m1 keeps partitions of x it had.
			if len(out["m1"][topicIDFor("x")]) == 0 {
				t.Fatalf("uniform not sticky: %v", out)
			}
		}
	}
}

// TestRangeAssignorKeepsPreviousPartitions is the regression test for the
// range assignor recomputing contiguous ranges from scratch: when a member
// joined, the others lost partitions that Kafka's (sticky) server-side
// range assignor lets them keep, so more partitions moved than needed.
func TestRangeAssignorKeepsPreviousPartitions(t *testing.T) {
	x, y := topicIDFor("x"), topicIDFor("y")
	for _, tc := range []struct {
		name    string
		members []string
		topics  map[string]topicMeta
		current map[string]topicParts
		want    map[string]topicParts
	}{{
		name:    "a member joins",
		members: []string{"a", "b", "c"},
		topics:  map[string]topicMeta{"x": {id: x, partitions: 6}},
		current: map[string]topicParts{"a": {x: {3, 4, 5}}, "b": {x: {0, 1, 2}}},
		want:    map[string]topicParts{"a": {x: {3, 4}}, "b": {x: {0, 1}}, "c": {x: {2, 5}}},
	}, {
		name:    "the member with the extra partition keeps it",
		members: []string{"a", "b"},
		topics:  map[string]topicMeta{"x": {id: x, partitions: 7}},
		current: map[string]topicParts{"b": {x: {0, 1, 2, 3, 4, 5, 6}}},
		want:    map[string]topicParts{"a": {x: {4, 5, 6}}, "b": {x: {0, 1, 2, 3}}},
	}, {
		name:    "a member leaves",
		members: []string{"a", "c"},
		topics:  map[string]topicMeta{"x": {id: x, partitions: 6}},
		current: map[string]topicParts{"a": {x: {2, 3}}, "b": {x: {0, 1}}, "c": {x: {4, 5}}},
		want:    map[string]topicParts{"a": {x: {0, 2, 3}}, "c": {x: {1, 4, 5}}},
	}, {
		name:    "co-partitioned topics stay together",
		members: []string{"a", "b"},
		topics:  map[string]topicMeta{"x": {id: x, partitions: 4}, "y": {id: y, partitions: 4}},
		current: map[string]topicParts{"a": {x: {2, 3}, y: {2, 3}}, "b": {x: {0, 1}, y: {0, 1}}},
		want:    map[string]topicParts{"a": {x: {2, 3}, y: {2, 3}}, "b": {x: {0, 1}, y: {0, 1}}},
	}, {
		name:    "no history: ascending ranges by member id",
		members: []string{"a", "b", "c"},
		topics:  map[string]topicMeta{"x": {id: x, partitions: 7}},
		want:    map[string]topicParts{"a": {x: {0, 1, 2}}, "b": {x: {3, 4}}, "c": {x: {5, 6}}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			subs := make(map[string][]string)
			for _, m := range tc.members {
				subs[m] = sortedKeys(tc.topics)
			}
			got := assignRange(assignSpec{members: tc.members, subs: subs, topics: tc.topics, current: tc.current})
			for _, m := range tc.members {
				if !got[m].equal(tc.want[m]) {
					t.Errorf("member %s: got %v, want %v (all: %v)", m, got[m], tc.want[m], got)
				}
			}
		})
	}
}
