package coordinator

import (
	"context"
	"encoding/binary"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeClock runs timers only when a test advances it, synchronously in the
// advancing goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers map[int]*fakeTimer
}

type fakeTimer struct {
	when time.Time
	seq  int
	f    func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.UnixMilli(1_700_000_000_000), timers: make(map[int]*fakeTimer)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	id := c.seq
	c.timers[id] = &fakeTimer{when: c.now.Add(d), seq: id, f: f}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.timers[id]
		delete(c.timers, id)
		return ok
	}
}

// Advance moves time forward by d, firing due timers in deadline order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.when.After(target) && (next == nil || t.when.Before(next.when) || (t.when.Equal(next.when) && t.seq < next.seq)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		delete(c.timers, next.seq)
		if next.when.After(c.now) {
			c.now = next.when
		}
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = target
	c.mu.Unlock()
}

// memLog is an in-memory __consumer_offsets partition.
type memLog struct {
	mu      sync.Mutex
	batches [][]byte
	next    int64
	fail    error // returned by the next appends while set
	appends int
}

func (l *memLog) AppendRecords(records []byte, sync bool) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !sync {
		return 0, errors.New("memLog: coordinator must append with sync")
	}
	if l.fail != nil {
		return 0, l.fail
	}
	l.appends++
	base := l.next
	for len(records) > 0 {
		h, err := protocol.ValidateBatch(records)
		if err != nil {
			return 0, err
		}
		b := append([]byte(nil), records[:h.Size()]...)
		protocol.SetBaseOffset(b, l.next)
		l.next += int64(h.LastOffsetDelta) + 1
		l.batches = append(l.batches, b)
		records = records[h.Size():]
	}
	return base, nil
}

func (l *memLog) ReadRecords(offset int64, maxBytes int) ([]byte, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []byte
	for _, b := range l.batches {
		h, _ := protocol.ParseBatchHeader(b)
		if h.LastOffset() < offset {
			continue
		}
		if len(out) > 0 && len(out)+len(b) > maxBytes {
			break
		}
		out = append(out, b...)
	}
	return out, l.next, nil
}

func (l *memLog) setFail(err error) {
	l.mu.Lock()
	l.fail = err
	l.mu.Unlock()
}

// fakeTopics is the cluster metadata.
type fakeTopics struct {
	mu     sync.Mutex
	counts map[string]int32
}

func (f *fakeTopics) PartitionCount(t string) (int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.counts[t]
	return n, ok
}

func topicIDFor(t string) [16]byte {
	var id [16]byte
	copy(id[:], t)
	id[15] = byte(len(t))
	return id
}

func (f *fakeTopics) TopicID(t string) ([16]byte, bool) {
	_, ok := f.PartitionCount(t)
	return topicIDFor(t), ok
}

func (f *fakeTopics) TopicNameByID(id [16]byte) (string, bool) {
	for _, t := range f.TopicNames() {
		if topicIDFor(t) == id {
			return t, true
		}
	}
	return "", false
}

func (f *fakeTopics) TopicNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for t := range f.counts {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func (f *fakeTopics) set(t string, n int32) {
	f.mu.Lock()
	f.counts[t] = n
	f.mu.Unlock()
}

type harness struct {
	t      *testing.T
	g      *Groups
	cfg    Config
	clock  *fakeClock
	logs   []*memLog
	topics *fakeTopics
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.InitialRebalanceDelay = 100 * time.Millisecond
	cfg.MinSessionTimeout = time.Second
	cfg.StreamsInitialRebalanceDelay = 0 // TestStreamsInitialRebalanceDelay sets its own
	return cfg
}

// newHarness starts a coordinator over nLogs in-memory partitions with
// topics t1 (3 partitions) and t2 (2 partitions).
func newHarness(t *testing.T, cfg Config, nLogs int) *harness {
	t.Helper()
	h := &harness{t: t, cfg: cfg, clock: newFakeClock(), topics: &fakeTopics{counts: map[string]int32{"t1": 3, "t2": 2}}}
	for range nLogs {
		h.logs = append(h.logs, &memLog{})
	}
	h.start()
	return h
}

// start (re)builds the coordinator from the harness' logs, as a restart.
func (h *harness) start() {
	h.t.Helper()
	logs := make([]Log, len(h.logs))
	for i, l := range h.logs {
		logs[i] = l
	}
	g, err := New(h.cfg, Deps{Clock: h.clock, Logger: zerolog.Nop(), Topics: h.topics, Logs: logs})
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	h.g = g
	h.t.Cleanup(g.Close)
}

func (h *harness) restart() {
	h.t.Helper()
	h.g.Close()
	h.start()
}

func ctxFor(client string) context.Context {
	return WithClientInfo(context.Background(), ClientInfo{ClientID: client, Host: "/127.0.0.1"})
}

// async runs a blocking call in a goroutine.
func async[T any](f func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return ch
}

// recv waits for a blocked call's answer, failing the test after a
// generous real-time deadline.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a response")
		panic("unreachable")
	}
}

// notYet asserts that a blocked call has not answered.
func notYet[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("call returned early: %+v", v)
	default:
	}
}

// waitFor polls a condition on the coordinator's state under its lock.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.g.lock()
		ok := cond()
		h.g.unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) group(id string) *group { return h.g.mu.groups[id] }

// waitParked waits until n members of the group are parked in JoinGroup.
func (h *harness) waitParked(id string, n int) {
	h.t.Helper()
	h.waitFor("parked joins", func() bool {
		grp := h.group(id)
		return grp != nil && grp.awaitingJoin == n
	})
}

func (h *harness) state(id string) string {
	h.g.lock()
	defer h.g.unlock()
	if grp := h.group(id); grp != nil {
		return grp.state.String()
	}
	return "none"
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.ConsumerMemberMetadata{Version: 0, Topics: topics}
	return m.AppendTo(nil)
}

// joinReq is a v9 JoinGroup of a "consumer" member supporting the given
// protocols, each subscribing to t1.
func joinReq(groupID, memberID string, instance *string, protocols ...string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group = groupID
	r.MemberID = memberID
	r.InstanceID = instance
	r.SessionTimeoutMillis = 10_000
	r.RebalanceTimeoutMillis = 30_000
	r.ProtocolType = "consumer"
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	for _, p := range protocols {
		jp := kmsg.NewJoinGroupRequestProtocol()
		jp.Name = p
		jp.Metadata = consumerMeta("t1")
		r.Protocols = append(r.Protocols, jp)
	}
	return r
}

func (h *harness) join(r *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	return async(func() *kmsg.JoinGroupResponse { return h.g.JoinGroup(ctxFor("client"), r) })
}

// newMember performs the KIP-394 dance and returns the assigned member id.
func (h *harness) newMemberID(groupID string) string {
	h.t.Helper()
	resp := h.g.JoinGroup(ctxFor("client"), joinReq(groupID, "", nil))
	if resp.ErrorCode != 79 {
		h.t.Fatalf("first join: error %d, want MEMBER_ID_REQUIRED", resp.ErrorCode)
	}
	return resp.MemberID
}

func syncReq(groupID, memberID string, gen int32, assignments map[string][]byte) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group = groupID
	r.MemberID = memberID
	r.Generation = gen
	ids := make([]string, 0, len(assignments))
	for id := range assignments {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID = id
		a.MemberAssignment = assignments[id]
		r.GroupAssignment = append(r.GroupAssignment, a)
	}
	return r
}

func (h *harness) sync(r *kmsg.SyncGroupRequest) <-chan *kmsg.SyncGroupResponse {
	return async(func() *kmsg.SyncGroupResponse { return h.g.SyncGroup(context.Background(), r) })
}

func (h *harness) heartbeat(groupID, memberID string, gen int32) int16 {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = groupID, memberID, gen
	return h.g.Heartbeat(context.Background(), r).ErrorCode
}

// stableGroup brings n dynamic members through a first rebalance and
// returns their member ids (leader first) and the generation.
func (h *harness) stableGroup(groupID string, n int) ([]string, int32) {
	h.t.Helper()
	var chans []<-chan *kmsg.JoinGroupResponse
	for i := range n {
		id := h.newMemberID(groupID)
		chans = append(chans, h.join(joinReq(groupID, id, nil)))
		h.waitParked(groupID, i+1)
	}
	h.clock.Advance(h.cfg.InitialRebalanceDelay * time.Duration(n+1))
	var leader string
	var ids []string
	var gen int32
	for _, ch := range chans {
		r := recv(h.t, ch)
		if r.ErrorCode != 0 {
			h.t.Fatalf("join: error %d", r.ErrorCode)
		}
		leader, gen = r.LeaderID, r.Generation
		ids = append(ids, r.MemberID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] == leader && ids[j] != leader })
	assign := make(map[string][]byte)
	for _, id := range ids {
		assign[id] = []byte("assignment-of-" + id)
	}
	var syncs []<-chan *kmsg.SyncGroupResponse
	for _, id := range ids[1:] {
		syncs = append(syncs, h.sync(syncReq(groupID, id, gen, nil)))
	}
	syncs = append(syncs, h.sync(syncReq(groupID, leader, gen, assign)))
	for _, ch := range syncs {
		if r := recv(h.t, ch); r.ErrorCode != 0 {
			h.t.Fatalf("sync: error %d", r.ErrorCode)
		}
	}
	if s := h.state(groupID); s != "Stable" {
		h.t.Fatalf("group state %s, want Stable", s)
	}
	return ids, gen
}

func commitReq(groupID, memberID string, gen int32, topic string, partition int32, offset int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 8
	r.Group, r.MemberID, r.Generation = groupID, memberID, gen
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Partition, p.Offset, p.LeaderEpoch = partition, offset, 7
	md := "md"
	p.Metadata = &md
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	return r
}

func (h *harness) commit(r *kmsg.OffsetCommitRequest) int16 {
	h.t.Helper()
	resp := h.g.OffsetCommit(context.Background(), r)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetchOne returns the committed offset of one partition via OffsetFetch v8.
func (h *harness) fetchOne(groupID, topic string, partition int32) (int64, int16) {
	h.t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = groupID
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = topic, []int32{partition}
	rg.Topics = append(rg.Topics, rt)
	r.Groups = append(r.Groups, rg)
	resp := h.g.OffsetFetch(context.Background(), r)
	g := resp.Groups[0]
	if g.ErrorCode != 0 {
		return 0, g.ErrorCode
	}
	p := g.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

func (h *harness) listGroups(states, types []string) map[string]kmsg.ListGroupsResponseGroup {
	r := kmsg.NewPtrListGroupsRequest()
	r.Version = 5
	r.StatesFilter, r.TypesFilter = states, types
	resp := h.g.ListGroups(context.Background(), r)
	out := make(map[string]kmsg.ListGroupsResponseGroup)
	for _, g := range resp.Groups {
		out[g.Group] = g
	}
	return out
}

func be32(b []byte) int32 { return int32(binary.BigEndian.Uint32(b)) }
