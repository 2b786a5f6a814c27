package share

import (
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeClock fires timers only when a test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves time and runs due timers inline, in deadline order.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	sort.Slice(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	var due []*fakeTimer
	rest := c.timers[:0]
	for _, t := range c.timers {
		if t.stopped {
			continue
		}
		if !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t)
		} else {
			rest = append(rest, t)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

type memStore struct {
	mu   sync.Mutex
	recs []KV
	fail error
}

func (s *memStore) Write(recs []KV) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *memStore) replay(t *testing.T) map[PartitionKey]Persisted {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := NewReplay()
	for _, r := range s.recs {
		if err := rp.Apply(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	return rp.State
}

type fixedLogs struct{ hwm int64 }

func (l fixedLogs) Offsets(string, int32) (int64, int64, int64, bool) { return 0, l.hwm, l.hwm, true }

func newTestCoordinator(t *testing.T, clock *fakeClock, store *memStore, replayed map[PartitionKey]Persisted) *Coordinator {
	t.Helper()
	set := Settings{Partition: testConfig(), Group: DefaultGroupConfig()}
	c, err := New(set, Deps{Clock: clock, Topics: fakeTopics{"t": 1}, Logs: fixedLogs{hwm: 10}, Store: store, Replayed: replayed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func join(t *testing.T, c *Coordinator, member string) {
	t.Helper()
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.SubscribedTopicNames = "g", member, []string{"t"}
	if resp := c.Heartbeat(req, "client", "/127.0.0.1"); resp.ErrorCode != 0 {
		t.Fatalf("join %s: error %d", member, resp.ErrorCode)
	}
}

func TestShareCoordinatorSessionExpiryReleasesLocks(t *testing.T) {
	clock := &fakeClock{now: t0}
	c := newTestCoordinator(t, clock, &memStore{}, nil)
	c.SetGroupConfig("g", ConfigAutoOffsetReset, ptr("earliest"))
	// Locks outlast the 45s session, so only the session expiry frees them.
	c.SetGroupConfig("g", ConfigLockDuration, ptr("60000"))
	join(t, c, "a")
	tp := TopicPartition{TopicID: [16]byte{1, 't'}}
	got := c.Acquire("g", "a", []TopicPartition{tp}, 100)
	if len(got[tp]) != 1 || got[tp][0] != (Acquired{0, 9, 1}) {
		t.Fatalf("acquired %+v", got)
	}
	changed := c.Changed()
	clock.advance(45*time.Second - time.Millisecond)
	if !c.IsMember("g", "a") {
		t.Fatal("a expired before its session timeout")
	}
	clock.advance(time.Millisecond) // t0+45s: a's session expires
	select {
	case <-changed:
	default:
		t.Fatal("Changed not signalled when the expired member's locks were released")
	}
	if c.IsMember("g", "a") {
		t.Fatal("a is still a member after its session timed out")
	}
	join(t, c, "b")
	if got := c.Acquire("g", "b", []TopicPartition{tp}, 100); got[tp][0] != (Acquired{0, 9, 2}) {
		t.Fatalf("b acquired %+v, want 0-9 at delivery 2", got)
	}
}

func TestShareCoordinatorStateSurvivesRestart(t *testing.T) {
	clock := &fakeClock{now: t0}
	store := &memStore{}
	c := newTestCoordinator(t, clock, store, nil)
	c.SetGroupConfig("g", ConfigAutoOffsetReset, ptr("earliest"))
	join(t, c, "a")
	tp := TopicPartition{TopicID: [16]byte{1, 't'}}
	c.Acquire("g", "a", []TopicPartition{tp}, 4)
	errs := c.Acknowledge("g", "a", map[TopicPartition][]Batch{tp: {{First: 0, Last: 3, Types: []AckType{AckAccept, AckRelease, AckReject, AckAccept}}}})
	if errs[tp] != nil {
		t.Fatal(errs[tp])
	}
	c.Close()

	c2 := newTestCoordinator(t, clock, store, store.replay(t))
	join(t, c2, "b")
	got := c2.Acquire("g", "b", []TopicPartition{tp}, 100)
	want := []Acquired{{1, 1, 2}, {4, 9, 1}}
	if len(got[tp]) != 2 || got[tp][0] != want[0] || got[tp][1] != want[1] {
		t.Fatalf("after restart acquired %+v, want %+v", got[tp], want)
	}
}

func TestShareCoordinatorFailedWriteFailsAcks(t *testing.T) {
	clock := &fakeClock{now: t0}
	store := &memStore{fail: errors.New("disk full")}
	c := newTestCoordinator(t, clock, store, nil)
	join(t, c, "a")
	c.SetGroupConfig("g", ConfigAutoOffsetReset, ptr("earliest"))
	tp := TopicPartition{TopicID: [16]byte{1, 't'}}
	c.Acquire("g", "a", []TopicPartition{tp}, 1)
	errs := c.Acknowledge("g", "a", map[TopicPartition][]Batch{tp: {{First: 0, Last: 0, Types: []AckType{AckAccept}}}})
	if errs[tp] == nil {
		t.Fatal("acknowledgement reported success although its state was not written")
	}
	store.mu.Lock()
	store.fail = nil
	store.mu.Unlock()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := store.replay(t); st[PartitionKey{"g", tp.TopicID, 0}].StartOffset != 1 {
		t.Fatalf("state after the retried write: %+v", st)
	}
}

func TestShareCoordinatorSessionEpochs(t *testing.T) {
	c := newTestCoordinator(t, &fakeClock{now: t0}, &memStore{}, nil)
	tp := TopicPartition{TopicID: [16]byte{1, 't'}}
	if _, err := c.FetchSession("g", "a", 1, nil, nil); err == nil {
		t.Fatal("epoch 1 without a session accepted")
	}
	if tps, err := c.FetchSession("g", "a", 0, []TopicPartition{tp}, nil); err != nil || len(tps) != 1 {
		t.Fatalf("open: %v %v", tps, err)
	}
	if _, err := c.FetchSession("g", "a", 2, nil, nil); err == nil {
		t.Fatal("epoch 2 accepted where 1 was due")
	}
	if tps, err := c.FetchSession("g", "a", 1, nil, []TopicPartition{tp}); err != nil || len(tps) != 0 {
		t.Fatalf("forget: %v %v", tps, err)
	}
	if err := c.AckSession("g", "a", 2); err != nil {
		t.Fatal(err)
	}
	if err := c.AckSession("g", "a", 0); err == nil {
		t.Fatal("ShareAcknowledge with epoch 0 accepted")
	}
}

func ptr(s string) *string { return &s }

// A ShareFetch that piggybacks acknowledgements for a partition and forgets
// it in the same request (franz-go does so for a partition revoked by a
// rebalance) must leave the partition out of the session, as Kafka's
// ShareSession.update does. Skiff kept it, so every later ShareFetch of the
// member acquired records it never handed out, and they cycled through
// lock expiries to the delivery limit.
func TestShareFetchSessionForgetsPartitionAckedInSameRequest(t *testing.T) {
	clock := &fakeClock{now: t0}
	c := newTestCoordinator(t, clock, &memStore{}, nil)
	c.SetGroupConfig("g", ConfigAutoOffsetReset, ptr("earliest"))
	join(t, c, "a")
	tp := TopicPartition{TopicID: [16]byte{1, 't'}}
	tps, err := c.FetchSession("g", "a", 0, []TopicPartition{tp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Acquire("g", "a", tps, 2)
	if len(got[tp]) != 1 || got[tp][0].First != 0 || got[tp][0].Last != 1 {
		t.Fatalf("first fetch acquired %v, want offsets 0-1", got)
	}

	// Acknowledge 0-1 and forget the partition in one request.
	tps, err = c.FetchSession("g", "a", 1, []TopicPartition{tp}, []TopicPartition{tp})
	if err != nil {
		t.Fatal(err)
	}
	if len(tps) != 0 {
		t.Fatalf("session after forgetting the acknowledged partition: %v, want none", tps)
	}
	acks := map[TopicPartition][]Batch{tp: {{First: 0, Last: 1, Types: []AckType{AckAccept}}}}
	if res := c.Acknowledge("g", "a", acks); res[tp] != nil {
		t.Fatalf("acknowledgement: %v", res[tp])
	}

	// The next fetch names nothing: the member reads no partition, so
	// nothing may be acquired for it.
	tps, err = c.FetchSession("g", "a", 2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Acquire("g", "a", tps, 500); len(got) != 0 {
		t.Fatalf("fetch after the forget acquired %v for a partition the member gave up", got)
	}
	c.mu.Lock()
	p := c.mu.parts[PartitionKey{"g", tp.TopicID, 0}]
	spso, speo := p.StartOffset(), p.EndOffset()
	c.mu.Unlock()
	if spso != 2 || speo != 2 {
		t.Fatalf("SPSO %d, SPEO %d; want 2 and 2: offsets 0-1 accepted, nothing acquired since", spso, speo)
	}
}
