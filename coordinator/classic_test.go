package coordinator

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinSyncElectsLeaderAndDistributesAssignments(t *testing.T) {
	h := newHarness(t, testConfig(), 3)
	var chans []<-chan *kmsg.JoinGroupResponse
	for i := range 3 {
		id := h.newMemberID("g")
		chans = append(chans, h.join(joinReq("g", id, nil)))
		h.waitParked("g", i+1)
	}
	// The first rebalance of a new group waits for the initial delay,
	// extended once per member that joined during it.
	h.clock.Advance(h.cfg.InitialRebalanceDelay)
	notYet(t, chans[0])
	h.clock.Advance(2 * h.cfg.InitialRebalanceDelay)

	var resps []*kmsg.JoinGroupResponse
	for _, ch := range chans {
		resps = append(resps, recv(t, ch))
	}
	leader := resps[0].LeaderID
	leaders := 0
	for _, r := range resps {
		if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != leader || *r.Protocol != "range" || *r.ProtocolType != "consumer" {
			t.Fatalf("join response %+v", r)
		}
		if r.MemberID == leader {
			leaders++
			if len(r.Members) != 3 {
				t.Fatalf("leader got %d members, want 3", len(r.Members))
			}
		} else if len(r.Members) != 0 {
			t.Fatalf("follower got members")
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders", leaders)
	}
	if s := h.state("g"); s != "CompletingRebalance" {
		t.Fatalf("state %s", s)
	}

	// Followers wait for the leader's assignment.
	var followerSyncs []<-chan *kmsg.SyncGroupResponse
	for _, r := range resps {
		if r.MemberID != leader {
			followerSyncs = append(followerSyncs, h.sync(syncReq("g", r.MemberID, 1, nil)))
		}
	}
	h.waitFor("followers parked in SyncGroup", func() bool {
		n := 0
		for _, m := range h.group("g").members {
			if m.sync != nil {
				n++
			}
		}
		return n == 2
	})
	notYet(t, followerSyncs[0])
	assign := map[string][]byte{}
	for _, r := range resps {
		assign[r.MemberID] = []byte("a:" + r.MemberID)
	}
	lr := recv(t, h.sync(syncReq("g", leader, 1, assign)))
	if lr.ErrorCode != 0 || string(lr.MemberAssignment) != "a:"+leader {
		t.Fatalf("leader sync %+v", lr)
	}
	for _, ch := range followerSyncs {
		r := recv(t, ch)
		if r.ErrorCode != 0 || len(r.MemberAssignment) == 0 || *r.Protocol != "range" {
			t.Fatalf("follower sync %+v", r)
		}
	}
	if s := h.state("g"); s != "Stable" {
		t.Fatalf("state %s", s)
	}

	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Version = 5
	d.Groups = []string{"g"}
	dg := h.g.DescribeGroups(context.Background(), d).Groups[0]
	if dg.State != "Stable" || dg.Protocol != "range" || dg.ProtocolType != "consumer" || len(dg.Members) != 3 {
		t.Fatalf("describe %+v", dg)
	}
	for _, m := range dg.Members {
		if m.ClientID != "client" || m.ClientHost != "/127.0.0.1" || string(m.MemberAssignment) != "a:"+m.MemberID || len(m.ProtocolMetadata) == 0 {
			t.Fatalf("describe member %+v", m)
		}
	}
}

func TestLeaveGroupTriggersRebalance(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	ids, gen := h.stableGroup("g", 2)
	leader, follower := ids[0], ids[1]

	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 3
	lr.Group = "g"
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = follower
	lr.Members = append(lr.Members, m)
	resp := h.g.LeaveGroup(context.Background(), lr)
	if resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave %+v", resp)
	}
	if s := h.state("g"); s != "PreparingRebalance" {
		t.Fatalf("state %s", s)
	}
	if code := h.heartbeat("g", leader, gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat %d", code)
	}
	// The remaining member's rejoin completes the join phase at once.
	r := recv(t, h.join(joinReq("g", leader, nil)))
	if r.ErrorCode != 0 || r.Generation != gen+1 || r.LeaderID != leader || len(r.Members) != 1 {
		t.Fatalf("rejoin %+v", r)
	}
	// The departed member is unknown now.
	if code := h.heartbeat("g", follower, gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of departed member %d", code)
	}
}

func TestLeaveGroupV0AndByInstanceID(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	inst := "instance-a"
	c := h.join(joinReq("g", "", &inst)) // static members need no KIP-394 round
	h.waitParked("g", 1)
	h.clock.Advance(h.cfg.InitialRebalanceDelay)
	if r := recv(t, c); r.ErrorCode != 0 {
		t.Fatalf("join %d", r.ErrorCode)
	}

	// v0: unknown member is reported at the top level.
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 0
	lr.Group, lr.MemberID = "g", "nobody"
	if resp := h.g.LeaveGroup(context.Background(), lr); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("v0 leave of unknown member: %d", resp.ErrorCode)
	}
	// v3+: admin removal by instance id alone.
	lr = kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 4
	lr.Group = "g"
	m := kmsg.NewLeaveGroupRequestMember()
	m.InstanceID = &inst
	lr.Members = append(lr.Members, m)
	resp := h.g.LeaveGroup(context.Background(), lr)
	if resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance id %+v", resp)
	}
	if s := h.state("g"); s != "Empty" {
		t.Fatalf("state %s, want Empty", s)
	}
	// Unknown group.
	lr.Group = "nope"
	// Kafka answers each member UNKNOWN_MEMBER_ID, with no group error.
	if resp := h.g.LeaveGroup(context.Background(), lr); resp.ErrorCode != 0 || len(resp.Members) != 1 || resp.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave of unknown group: %+v", resp)
	}
}

func TestSessionExpiryRemovesMemberAndRebalances(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	ids, gen := h.stableGroup("g", 2)
	leader, follower := ids[0], ids[1]
	// Only the leader heartbeats; the follower's 10s session lapses.
	for range 4 {
		h.clock.Advance(3 * time.Second)
		if code := h.heartbeat("g", leader, gen); code != 0 && code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat %d", code)
		}
	}
	h.g.lock()
	_, stillThere := h.group("g").byID[follower]
	h.g.unlock()
	if stillThere {
		t.Fatal("expired member still in group")
	}
	if code := h.heartbeat("g", leader, gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after expiry %d", code)
	}
	r := recv(t, h.join(joinReq("g", leader, nil)))
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("rejoin %+v", r)
	}
}

func TestStaticMemberRestartKeepsAssignmentWithoutRebalance(t *testing.T) {
	h := newHarness(t, testConfig(), 2)
	a, b := "a", "b"
	ca := h.join(joinReq("g", "", &a))
	h.waitParked("g", 1)
	cb := h.join(joinReq("g", "", &b))
	h.waitParked("g", 2)
	h.clock.Advance(3 * h.cfg.InitialRebalanceDelay)
	ra, rb := recv(t, ca), recv(t, cb)
	if ra.ErrorCode != 0 || rb.ErrorCode != 0 {
		t.Fatalf("joins %d %d", ra.ErrorCode, rb.ErrorCode)
	}
	leaderID, followerID := ra.MemberID, rb.MemberID
	if ra.LeaderID != ra.MemberID {
		leaderID, followerID = rb.MemberID, ra.MemberID
	}
	assign := map[string][]byte{leaderID: []byte("L"), followerID: []byte("F")}
	fs := h.sync(syncReq("g", followerID, 1, nil))
	recv(t, h.sync(syncReq("g", leaderID, 1, assign)))
	recv(t, fs)

	// The follower restarts: same instance id, no member id.
	followerInst := b
	if followerID == ra.MemberID {
		followerInst = a
	}
	r := recv(t, h.join(joinReq("g", "", &followerInst)))
	if r.ErrorCode != 0 || r.Generation != 1 || r.MemberID == followerID || r.LeaderID != leaderID || r.SkipAssignment {
		t.Fatalf("static rejoin %+v", r)
	}
	if s := h.state("g"); s != "Stable" {
		t.Fatalf("state %s, want Stable (no rebalance)", s)
	}
	sr := recv(t, h.sync(syncReq("g", r.MemberID, 1, nil)))
	if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "F" {
		t.Fatalf("sync after static rejoin %+v", sr)
	}
	// The old incarnation is fenced.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", followerID, 1, &followerInst
	if code := h.g.Heartbeat(context.Background(), hb).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("old member heartbeat %d, want FENCED_INSTANCE_ID", code)
	}
	// The static leader restarting (v9) is told it leads but must skip
	// assignment.
	leaderInst := a
	if followerInst == a {
		leaderInst = b
	}
	lr := recv(t, h.join(joinReq("g", "", &leaderInst)))
	if lr.ErrorCode != 0 || lr.Generation != 1 || lr.LeaderID != lr.MemberID || !lr.SkipAssignment || len(lr.Members) != 2 {
		t.Fatalf("static leader rejoin %+v", lr)
	}
}

func TestSlowMemberMissingRebalanceTimeoutIsRemoved(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	ids, gen := h.stableGroup("g", 2)
	leader, slow := ids[0], ids[1]
	// The leader rejoins, which starts a rebalance; the other member keeps
	// heartbeating but never rejoins.
	lj := h.join(joinReq("g", leader, nil))
	h.waitParked("g", 1)
	if s := h.state("g"); s != "PreparingRebalance" {
		t.Fatalf("state %s", s)
	}
	for range 5 {
		h.clock.Advance(5 * time.Second)
		if code := h.heartbeat("g", slow, gen); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat %d", code)
		}
		notYet(t, lj)
	}
	h.clock.Advance(6 * time.Second) // past the 30s rebalance timeout
	r := recv(t, lj)
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 || r.Members[0].MemberID != leader {
		t.Fatalf("join after rebalance timeout %+v", r)
	}
	if code := h.heartbeat("g", slow, gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("slow member heartbeat %d", code)
	}
}

func TestMemberIDRequired(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	resp := h.g.JoinGroup(ctxFor("my-client"), joinReq("g", "", nil))
	if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" || resp.Generation != -1 {
		t.Fatalf("first join %+v", resp)
	}
	if got := resp.MemberID[:len("my-client-")]; got != "my-client-" {
		t.Fatalf("member id %q not derived from the client id", resp.MemberID)
	}
	// An id nobody comes back with expires after the session timeout.
	h.clock.Advance(11 * time.Second)
	r := recv(t, h.join(joinReq("g", resp.MemberID, nil)))
	if r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("rejoin with expired id: %d", r.ErrorCode)
	}
	// v3 and older join directly.
	old := joinReq("g2", "", nil)
	old.Version = 3
	c := h.join(old)
	h.waitParked("g2", 1)
	h.clock.Advance(time.Second)
	if r := recv(t, c); r.ErrorCode != 0 || r.Generation != 1 || r.MemberID == "" {
		t.Fatalf("v3 join %+v", r)
	}
}

func TestInconsistentGroupProtocol(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	// A new group needs a protocol type and at least one protocol.
	bad := joinReq("g", "", nil)
	bad.Protocols = nil
	if r := h.g.JoinGroup(ctxFor("c"), bad); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("no protocols: %d", r.ErrorCode)
	}
	h.stableGroup("g", 1)
	id := h.newMemberID("g")
	if r := recv(t, h.join(joinReq("g", id, nil, "roundrobin"))); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("no common protocol: %d", r.ErrorCode)
	}
	other := joinReq("g", id, nil, "range")
	other.ProtocolType = "connect"
	if r := recv(t, h.join(other)); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("other protocol type: %d", r.ErrorCode)
	}
}

func TestProtocolSelectionByVote(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	var chans []<-chan *kmsg.JoinGroupResponse
	for i, ps := range [][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"roundrobin", "sticky", "range"}} {
		id := h.newMemberID("g")
		chans = append(chans, h.join(joinReq("g", id, nil, ps...)))
		h.waitParked("g", i+1)
	}
	h.clock.Advance(time.Second)
	for _, ch := range chans {
		if r := recv(t, ch); *r.Protocol != "roundrobin" {
			t.Fatalf("selected %s, want roundrobin", *r.Protocol)
		}
	}
}

func TestInvalidJoinRequests(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	r := joinReq("", "", nil)
	if resp := h.g.JoinGroup(ctxFor("c"), r); resp.ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group id: %d", resp.ErrorCode)
	}
	r = joinReq("g", "", nil)
	r.SessionTimeoutMillis = 10
	if resp := h.g.JoinGroup(ctxFor("c"), r); resp.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("short session: %d", resp.ErrorCode)
	}
	if resp := recv(t, h.join(joinReq("g", "ghost", nil))); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member of unknown group: %d", resp.ErrorCode)
	}
	s := h.g.SyncGroup(context.Background(), syncReq("nope", "x", 1, nil))
	if s.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("sync unknown group: %d", s.ErrorCode)
	}
	if code := h.heartbeat("nope", "x", 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat unknown group: %d", code)
	}
	ids, gen := h.stableGroup("g", 1)
	if code := h.heartbeat("g", ids[0], gen+5); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat wrong generation: %d", code)
	}
	if s := recv(t, h.sync(syncReq("g", ids[0], gen+5, nil))); s.ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("sync wrong generation: %d", s.ErrorCode)
	}
	sr := syncReq("g", ids[0], gen, nil)
	other := "roundrobin"
	sr.Protocol = &other
	if s := recv(t, h.sync(sr)); s.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("sync other protocol: %d", s.ErrorCode)
	}
}

func TestGroupMaxSize(t *testing.T) {
	cfg := testConfig()
	cfg.MaxGroupSize = 2
	h := newHarness(t, cfg, 1)
	ids, _ := h.stableGroup("g", 2)
	// The size check comes before a member id is handed out.
	if r := h.g.JoinGroup(ctxFor("c"), joinReq("g", "", nil)); r.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("third member: %d", r.ErrorCode)
	}
	// Existing members still rejoin (the leader's rejoin starts a rebalance).
	c := h.join(joinReq("g", ids[0], nil))
	h.waitParked("g", 1)
	if r := recv(t, h.join(joinReq("g", ids[1], nil))); r.ErrorCode != 0 {
		t.Fatalf("rejoin: %d", r.ErrorCode)
	}
	recv(t, c)
}

// A rebalance where members rejoin one after another, as the cooperative
// assignor makes them do (two rebalances in a row), goes through clean
// generations.
func TestSequentialRejoinsCooperative(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	ids, gen := h.stableGroup("g", 2)
	leader, follower := ids[0], ids[1]
	for round := range 2 {
		lj := h.join(joinReq("g", leader, nil))
		h.waitParked("g", 1)
		if code := h.heartbeat("g", follower, gen); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("round %d: follower heartbeat %d", round, code)
		}
		fj := h.join(joinReq("g", follower, nil))
		lr, fr := recv(t, lj), recv(t, fj)
		if lr.ErrorCode != 0 || fr.ErrorCode != 0 || lr.Generation != gen+1 || fr.Generation != gen+1 {
			t.Fatalf("round %d: joins %+v %+v", round, lr, fr)
		}
		gen++
		fs := h.sync(syncReq("g", follower, gen, nil))
		recv(t, h.sync(syncReq("g", leader, gen, map[string][]byte{leader: {1}, follower: {2}})))
		if r := recv(t, fs); r.ErrorCode != 0 || string(r.MemberAssignment) != "\x02" {
			t.Fatalf("round %d: follower sync %+v", round, r)
		}
	}
}

func TestJoinReturnsWhenContextEndsOrCoordinatorCloses(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	id := h.newMemberID("g")
	ctx, cancel := context.WithCancel(ctxFor("c"))
	ch := async(func() *kmsg.JoinGroupResponse { return h.g.JoinGroup(ctx, joinReq("g", id, nil)) })
	h.waitParked("g", 1)
	cancel()
	if r := recv(t, ch); r.ErrorCode == 0 {
		t.Fatalf("cancelled join succeeded")
	}
	id2 := h.newMemberID("g2")
	ch = h.join(joinReq("g2", id2, nil))
	h.waitParked("g2", 1)
	h.g.Close()
	if r := recv(t, ch); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join across Close: %d", r.ErrorCode)
	}
	if r := h.g.JoinGroup(ctxFor("c"), joinReq("g3", "", nil)); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("join after Close: %d", r.ErrorCode)
	}
}

func TestFailedAssignmentWriteRestartsRebalance(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	id := h.newMemberID("g")
	c := h.join(joinReq("g", id, nil))
	h.waitParked("g", 1)
	h.clock.Advance(time.Second)
	r := recv(t, c)
	h.logs[0].setFail(kerr.KafkaStorageError)
	s := recv(t, h.sync(syncReq("g", id, r.Generation, map[string][]byte{id: {1}})))
	if s.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("sync with failing log: %d", s.ErrorCode)
	}
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
}
