package coordinator

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A member that gets its JoinGroup answer but never sends SyncGroup is
// dropped after the rebalance timeout, and the others rebalance.
func TestMemberMissingSyncIsRemoved(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	ids, gen := h.stableGroup("g", 2)
	lj := h.join(joinReq("g", ids[0], nil))
	h.waitParked("g", 1)
	fj := h.join(joinReq("g", ids[1], nil))
	recv(t, lj)
	recv(t, fj)
	gen++
	// Only the leader syncs; it waits for... nobody: it gets its
	// assignment once stored. The follower never syncs.
	if r := recv(t, h.sync(syncReq("g", ids[0], gen, map[string][]byte{ids[0]: {1}}))); r.ErrorCode != 0 {
		t.Fatalf("leader sync %d", r.ErrorCode)
	}
	for range 7 { // leader heartbeats through the 30s rebalance timeout
		h.clock.Advance(5 * time.Second)
		h.heartbeat("g", ids[0], gen)
	}
	if code := h.heartbeat("g", ids[0], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("leader heartbeat after follower dropped: %d", code)
	}
	if code := h.heartbeat("g", ids[1], gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("follower: %d", code)
	}
}

func TestFollowerRejoinWithSameMetadataNeedsNoRebalance(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	ids, gen := h.stableGroup("g", 2)
	r := recv(t, h.join(joinReq("g", ids[1], nil)))
	if r.ErrorCode != 0 || r.Generation != gen || len(r.Members) != 0 {
		t.Fatalf("follower rejoin %+v", r)
	}
	if s := h.state("g"); s != "Stable" {
		t.Fatalf("state %s", s)
	}
}

// __consumer_offsets does not exist until the first write creates it.
func TestOffsetsTopicCreatedOnFirstWrite(t *testing.T) {
	clock := newFakeClock()
	topics := &fakeTopics{counts: map[string]int32{"t1": 3}}
	var created []*memLog
	create := func() ([]Log, error) {
		if created != nil {
			return nil, errors.New("created twice")
		}
		var logs []Log
		for range 4 {
			l := &memLog{}
			created = append(created, l)
			logs = append(logs, l)
		}
		return logs, nil
	}
	g, err := New(testConfig(), Deps{Clock: clock, Logger: zerolog.Nop(), Topics: topics, CreateLogs: create})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	resp := g.OffsetCommit(context.Background(), commitReq("g", "", -1, "t1", 0, 5))
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("commit: %d", code)
	}
	part := partitionFor("g", 4)
	if len(created) != 4 || created[part].next != 1 {
		t.Fatalf("commit not in partition %d of the created topic", part)
	}

	failing, err := New(testConfig(), Deps{Clock: clock, Logger: zerolog.Nop(), Topics: topics,
		CreateLogs: func() ([]Log, error) { return nil, errors.New("no") }})
	if err != nil {
		t.Fatal(err)
	}
	defer failing.Close()
	resp = failing.OffsetCommit(context.Background(), commitReq("g", "", -1, "t1", 0, 5))
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit without offsets topic: %d", code)
	}
}

// txnBatch turns a batch into a transactional one of producer pid.
func txnBatch(b []byte, pid int64, control bool) []byte {
	attrs := binary.BigEndian.Uint16(b[21:]) | protocol.AttrTransactional
	if control {
		attrs |= protocol.AttrControl
	}
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], 0)
	protocol.UpdateCRC(b)
	return b
}

func controlMarker(commit bool) kv {
	k := kmsg.ControlRecordKey{Version: 0, Type: kmsg.ControlRecordKeyTypeAbort}
	if commit {
		k.Type = kmsg.ControlRecordKeyTypeCommit
	}
	return kv{k.AppendTo(nil), []byte{0, 0, 0, 0, 0, 0}}
}

// Transactional offset commits found on replay stay pending (require_stable
// answers UNSTABLE_OFFSET_COMMIT) until their COMMIT marker; aborted ones
// never appear.
func TestReplayTransactionalOffsets(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	l := h.logs[0]
	offset := func(group string, p int32, off int64) kv {
		return kv{offsetCommitKey(group, "t1", p), offsetCommitValue(&offsetEntry{offset: off, leaderEpoch: -1, expireTime: -1})}
	}
	app := func(b []byte) {
		if _, err := l.AppendRecords(b, true); err != nil {
			t.Fatal(err)
		}
	}
	app(txnBatch(mustBatch(t, 1, []kv{offset("g", 0, 10)}), 7, false))
	app(txnBatch(mustBatch(t, 1, []kv{offset("g", 1, 11)}), 8, false))
	app(txnBatch(mustBatch(t, 1, []kv{controlMarker(false)}), 8, true))
	h.restart()

	fetch := func(stable bool) (*kmsg.OffsetFetchResponseTopic, int16) {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Version = 7
		r.Group, r.RequireStable = "g", stable
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "t1", []int32{0, 1}
		r.Topics = append(r.Topics, rt)
		resp := h.g.OffsetFetch(context.Background(), r)
		return &resp.Topics[0], resp.ErrorCode
	}
	tp, _ := fetch(true)
	if tp.Partitions[0].ErrorCode != kerr.UnstableOffsetCommit.Code || tp.Partitions[1].Offset != -1 || tp.Partitions[1].ErrorCode != 0 {
		t.Fatalf("pending: %+v", tp.Partitions)
	}
	tp, _ = fetch(false)
	if tp.Partitions[0].Offset != -1 {
		t.Fatalf("pending offset visible: %+v", tp.Partitions)
	}
	app(txnBatch(mustBatch(t, 1, []kv{controlMarker(true)}), 7, true))
	h.restart()
	tp, _ = fetch(true)
	if tp.Partitions[0].Offset != 10 || tp.Partitions[0].ErrorCode != 0 {
		t.Fatalf("committed: %+v", tp.Partitions)
	}
}

func TestClassicJoinConvertsEmptyConsumerGroup(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	mustOK(t, second(h.cgJoin("g", "a", nil, "t1")))
	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.Version = 1
	leave.Group, leave.MemberID, leave.MemberEpoch = "g", "a", -1
	mustOK(t, h.g.ConsumerGroupHeartbeat(ctxFor("c"), leave))
	if lg := h.listGroups(nil, nil)["g"]; lg.GroupType != "consumer" || lg.GroupState != "Empty" {
		t.Fatalf("empty consumer group %+v", lg)
	}
	h.stableGroup("g", 1)
	if lg := h.listGroups(nil, nil)["g"]; lg.GroupType != "classic" || lg.GroupState != "Stable" {
		t.Fatalf("converted group %+v", lg)
	}
	h.restart()
	if lg := h.listGroups(nil, nil)["g"]; lg.GroupType != "classic" {
		t.Fatalf("after restart %+v", lg)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.ConsumerAssignors = []string{"sticky"}
	cfg.MinSessionTimeout = 0
	if err := cfg.Validate(); err == nil {
		t.Fatal("bad config accepted")
	}
}

func TestTopicsDeletedRemovesOffsets(t *testing.T) {
	h := newHarness(t, testConfig(), 2)
	for _, g := range []string{"a", "b"} {
		if code := h.commit(commitReq(g, "", -1, "t1", 1, 3)); code != 0 {
			t.Fatalf("commit %d", code)
		}
		if code := h.commit(commitReq(g, "", -1, "t2", 0, 4)); code != 0 {
			t.Fatalf("commit %d", code)
		}
	}
	h.g.TopicsDeleted([]string{"t1"})
	h.restart()
	for _, g := range []string{"a", "b"} {
		if off, _ := h.fetchOne(g, "t1", 1); off != -1 {
			t.Fatalf("%s: offset of deleted topic %d", g, off)
		}
		if off, _ := h.fetchOne(g, "t2", 0); off != 4 {
			t.Fatalf("%s: other topic's offset %d", g, off)
		}
	}
}
