package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestOffsetCommitAndFetchByMember(t *testing.T) {
	h := newHarness(t, testConfig(), 3)
	ids, gen := h.stableGroup("g", 2)
	if code := h.commit(commitReq("g", ids[1], gen, "t1", 2, 42)); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if off, code := h.fetchOne("g", "t1", 2); off != 42 || code != 0 {
		t.Fatalf("fetch: %d %d", off, code)
	}
	if off, _ := h.fetchOne("g", "t1", 1); off != -1 {
		t.Fatalf("uncommitted partition: %d", off)
	}
	for _, tc := range []struct {
		name string
		req  *kmsg.OffsetCommitRequest
		want int16
	}{
		{"wrong generation", commitReq("g", ids[0], gen+1, "t1", 0, 1), kerr.IllegalGeneration.Code},
		{"unknown member", commitReq("g", "ghost", gen, "t1", 0, 1), kerr.UnknownMemberID.Code},
		{"simple commit to a live group", commitReq("g", "", -1, "t1", 0, 1), kerr.UnknownMemberID.Code},
		{"unknown topic", commitReq("g", ids[0], gen, "nope", 0, 1), kerr.UnknownTopicOrPartition.Code},
		{"partition out of range", commitReq("g", ids[0], gen, "t1", 3, 1), kerr.UnknownTopicOrPartition.Code},
		{"unknown group v8", commitReq("other", "m", 3, "t1", 0, 1), kerr.IllegalGeneration.Code},
	} {
		if code := h.commit(tc.req); code != tc.want {
			t.Errorf("%s: got %d want %d", tc.name, code, tc.want)
		}
	}
	v9 := commitReq("other", "m", 3, "t1", 0, 1)
	v9.Version = 9
	if code := h.commit(v9); code != kerr.GroupIDNotFound.Code {
		t.Errorf("unknown group v9: %d", code)
	}
	big := commitReq("g", ids[0], gen, "t1", 0, 1)
	md := strings.Repeat("x", 4097)
	big.Topics[0].Partitions[0].Metadata = &md
	if code := h.commit(big); code != kerr.OffsetMetadataTooLarge.Code {
		t.Errorf("large metadata: %d", code)
	}

	// During CompletingRebalance commits wait for the new generation.
	lj := h.join(joinReq("g", ids[0], nil))
	h.waitParked("g", 1)
	fr := recv(t, h.join(joinReq("g", ids[1], nil)))
	recv(t, lj)
	if code := h.commit(commitReq("g", ids[1], fr.Generation, "t1", 0, 5)); code != kerr.RebalanceInProgress.Code {
		t.Errorf("commit while completing rebalance: %d", code)
	}
}

func TestOffsetFetchAllTopicsAndVersions(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	for _, c := range []struct {
		topic string
		p     int32
		off   int64
	}{{"t2", 1, 20}, {"t1", 0, 10}, {"t1", 2, 12}} {
		if code := h.commit(commitReq("g", "", -1, c.topic, c.p, c.off)); code != 0 {
			t.Fatalf("simple commit: %d", code)
		}
	}
	// v7, null topics: everything, sorted.
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 7
	r.Group = "g"
	resp := h.g.OffsetFetch(context.Background(), r)
	if resp.ErrorCode != 0 || len(resp.Topics) != 2 || resp.Topics[0].Topic != "t1" || len(resp.Topics[0].Partitions) != 2 ||
		resp.Topics[0].Partitions[1].Offset != 12 || resp.Topics[1].Partitions[0].Offset != 20 {
		t.Fatalf("fetch all: %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	if p.LeaderEpoch != 7 || *p.Metadata != "md" {
		t.Fatalf("partition %+v", p)
	}
	// v8 batch with an unknown group: -1 without error.
	r = kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	for _, id := range []string{"g", "unknown"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = id
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = "t2", []int32{1}
		rg.Topics = append(rg.Topics, rt)
		r.Groups = append(r.Groups, rg)
	}
	resp = h.g.OffsetFetch(context.Background(), r)
	if resp.Groups[0].Topics[0].Partitions[0].Offset != 20 || resp.Groups[1].Topics[0].Partitions[0].Offset != -1 || resp.Groups[1].ErrorCode != 0 {
		t.Fatalf("batched fetch %+v", resp.Groups)
	}
	// require_stable with a pending transactional commit.
	h.g.lock()
	h.g.mu.txn.add(99, "g", "t2", 1, &offsetEntry{offset: 25})
	h.g.unlock()
	r.RequireStable = true
	resp = h.g.OffsetFetch(context.Background(), r)
	if code := resp.Groups[0].Topics[0].Partitions[0].ErrorCode; code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("require_stable: %d", code)
	}
}

func TestSimpleCommitCreatesListedEmptyGroup(t *testing.T) {
	h := newHarness(t, testConfig(), 2)
	if code := h.commit(commitReq("solo", "", -1, "t1", 1, 7)); code != 0 {
		t.Fatalf("simple commit: %d", code)
	}
	lg, ok := h.listGroups(nil, nil)["solo"]
	if !ok || lg.GroupState != "Empty" || lg.ProtocolType != "" || lg.GroupType != "classic" {
		t.Fatalf("listed %+v %v", lg, ok)
	}
	// A group formed later by members takes over; simple commits are
	// refused while it has members.
	h.stableGroup("solo", 1)
	if code := h.commit(commitReq("solo", "", -1, "t1", 1, 8)); code != kerr.UnknownMemberID.Code {
		t.Fatalf("simple commit to live group: %d", code)
	}
	if off, _ := h.fetchOne("solo", "t1", 1); off != 7 {
		t.Fatalf("offset %d", off)
	}
}

func TestCommitFailsWhenLogFails(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	h.logs[0].setFail(kerr.KafkaStorageError)
	if code := h.commit(commitReq("g", "", -1, "t1", 0, 1)); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit: %d", code)
	}
	if off, _ := h.fetchOne("g", "t1", 0); off != -1 {
		t.Fatalf("failed commit is visible: %d", off)
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	h := newHarness(t, testConfig(), 3)
	ids, gen := h.stableGroup("g", 2)
	if code := h.commit(commitReq("g", ids[0], gen, "t1", 0, 100)); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if code := h.commit(commitReq("solo", "", -1, "t2", 1, 5)); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if code := h.commit(commitReq("solo", "", -1, "t2", 1, 6)); code != 0 {
		t.Fatalf("commit: %d", code)
	}

	h.restart()
	if off, _ := h.fetchOne("g", "t1", 0); off != 100 {
		t.Fatalf("g offset after restart: %d", off)
	}
	if off, _ := h.fetchOne("solo", "t2", 1); off != 6 {
		t.Fatalf("solo offset after restart: %d", off)
	}
	groups := h.listGroups(nil, nil)
	if groups["g"].GroupState != "Stable" || groups["g"].ProtocolType != "consumer" || groups["solo"].GroupState != "Empty" {
		t.Fatalf("listed after restart: %+v", groups)
	}
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Version = 5
	d.Groups = []string{"g"}
	dg := h.g.DescribeGroups(context.Background(), d).Groups[0]
	if dg.Protocol != "range" || len(dg.Members) != 2 || string(dg.Members[0].MemberAssignment) != "assignment-of-"+dg.Members[0].MemberID {
		t.Fatalf("described after restart: %+v", dg)
	}
	// Members resume with their generation...
	if code := h.heartbeat("g", ids[0], gen); code != 0 {
		t.Fatalf("heartbeat after restart: %d", code)
	}
	// ...and their sessions restarted: the one that never heartbeats is
	// removed, which triggers a rebalance.
	h.clock.Advance(6 * time.Second)
	h.heartbeat("g", ids[0], gen)
	h.clock.Advance(6 * time.Second)
	if code := h.heartbeat("g", ids[0], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after peer expiry: %d", code)
	}
	// The offsets of the group moved after a restart stay put too.
	h.restart()
	if off, _ := h.fetchOne("g", "t1", 0); off != 100 {
		t.Fatalf("g offset after second restart: %d", off)
	}
}

func TestEmptyGroupGenerationPersists(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	ids, gen := h.stableGroup("g", 1)
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Version = 1
	lr.Group, lr.MemberID = "g", ids[0]
	if r := h.g.LeaveGroup(context.Background(), lr); r.ErrorCode != 0 {
		t.Fatalf("leave %d", r.ErrorCode)
	}
	h.waitFor("empty generation written", func() bool { return h.group("g").generation == gen+1 })
	h.restart()
	h.g.lock()
	grp := h.group("g")
	h.g.unlock()
	if grp == nil || grp.state != stateEmpty || grp.generation != gen+1 || grp.protocolType != "consumer" {
		t.Fatalf("group after restart: %+v", grp)
	}
}

func TestOffsetExpiry(t *testing.T) {
	cfg := testConfig()
	cfg.OffsetsRetention = time.Hour
	cfg.OffsetsRetentionCheckInterval = 10 * time.Minute
	h := newHarness(t, cfg, 1)
	if code := h.commit(commitReq("solo", "", -1, "t1", 0, 1)); code != 0 {
		t.Fatalf("commit %d", code)
	}
	ids, gen := h.stableGroup("live", 1)
	if code := h.commit(commitReq("live", ids[0], gen, "t1", 0, 1)); code != 0 {
		t.Fatalf("commit %d", code)
	}
	for range 70 * 12 { // 70 minutes, keeping the live member's session alive
		h.clock.Advance(5 * time.Second)
		if code := h.heartbeat("live", ids[0], gen); code != 0 {
			t.Fatalf("heartbeat %d", code)
		}
	}
	h.waitFor("solo deleted", func() bool { return h.group("solo") == nil })
	if off, _ := h.fetchOne("solo", "t1", 0); off != -1 {
		t.Fatalf("expired offset still there: %d", off)
	}
	// The live group's member is subscribed to t1: its offset stays.
	if off, _ := h.fetchOne("live", "t1", 0); off != 1 {
		t.Fatalf("live offset: %d", off)
	}
	h.restart()
	if _, ok := h.listGroups(nil, nil)["solo"]; ok {
		t.Fatal("expired group back after restart")
	}
}
