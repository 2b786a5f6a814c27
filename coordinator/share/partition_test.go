package share

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

var t0 = time.Unix(1_700_000_000, 0)

func testConfig() Config {
	return Config{LockDuration: 10 * time.Second, DeliveryLimit: 3, MaxRecordLocks: 100}
}

func ack(first, last int64, types ...AckType) []Batch {
	return []Batch{{First: first, Last: last, Types: types}}
}

func wantAcquired(t *testing.T, got []Acquired, want ...Acquired) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("acquired %+v, want %+v", got, want)
	}
}

func wantState(t *testing.T, p *Partition, off int64, s State, count int16) {
	t.Helper()
	gs, gc, ok := p.StateOf(off)
	if !ok || gs != s || gc != count {
		t.Fatalf("offset %d: state %v count %d in flight %v, want %v count %d", off, gs, gc, ok, s, count)
	}
}

func TestShareAcquireAcceptAdvancesStartOffset(t *testing.T) {
	p := NewPartition(testConfig(), 0)
	wantAcquired(t, p.Acquire(t0, "a", 10, 5), Acquired{0, 4, 1})
	if p.StartOffset() != 0 || p.EndOffset() != 5 {
		t.Fatalf("SPSO %d SPEO %d, want 0 5", p.StartOffset(), p.EndOffset())
	}
	// Accepting the middle leaves SPSO at 0: offset 0 is still in flight.
	if err := p.Acknowledge(t0, "a", ack(1, 2, AckAccept)); err != nil {
		t.Fatal(err)
	}
	if p.StartOffset() != 0 || p.DeliveryCompleteCount() != 2 {
		t.Fatalf("SPSO %d complete %d, want 0 2", p.StartOffset(), p.DeliveryCompleteCount())
	}
	if err := p.Acknowledge(t0, "a", ack(0, 0, AckAccept)); err != nil {
		t.Fatal(err)
	}
	if p.StartOffset() != 3 {
		t.Fatalf("SPSO %d after accepting 0-2, want 3", p.StartOffset())
	}
	// Nothing new in the log: nothing to acquire beyond what is locked.
	wantAcquired(t, p.Acquire(t0, "b", 10, 5))
}

func TestShareLockTimeoutRedelivers(t *testing.T) {
	p := NewPartition(testConfig(), 0)
	p.Acquire(t0, "a", 10, 2)
	if d, ok := p.NextDeadline(); !ok || !d.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("deadline %v %v, want %v", d, ok, t0.Add(10*time.Second))
	}
	p.Tick(t0.Add(10*time.Second - time.Millisecond))
	wantState(t, p, 0, StateAcquired, 1)
	wantAcquired(t, p.Acquire(t0, "b", 10, 2)) // still locked to a
	p.Tick(t0.Add(10 * time.Second))
	wantState(t, p, 0, StateAvailable, 1)
	// The expired member's late acknowledgement is refused.
	if err := p.Acknowledge(t0.Add(11*time.Second), "a", ack(0, 1, AckAccept)); !errors.Is(err, kerr.InvalidRecordState) {
		t.Fatalf("late ack: %v, want INVALID_RECORD_STATE", err)
	}
	wantAcquired(t, p.Acquire(t0.Add(11*time.Second), "b", 10, 2), Acquired{0, 1, 2})
}

func TestShareDeliveryLimitArchives(t *testing.T) {
	p := NewPartition(testConfig(), 0) // limit 3
	now := t0
	for i := int16(1); i <= 3; i++ {
		wantAcquired(t, p.Acquire(now, "a", 10, 1), Acquired{0, 0, i})
		now = now.Add(10 * time.Second)
		p.Tick(now)
	}
	// The third lock expired with the limit used up: archived, SPSO past it.
	if p.StartOffset() != 1 {
		t.Fatalf("SPSO %d, want 1 after archiving offset 0", p.StartOffset())
	}
	wantAcquired(t, p.Acquire(now, "a", 10, 1))
}

func TestShareReleaseRedeliversRejectArchives(t *testing.T) {
	p := NewPartition(testConfig(), 10)
	wantAcquired(t, p.Acquire(t0, "a", 10, 13), Acquired{10, 12, 1})
	// One type per offset: release 10, reject 11, accept 12.
	if err := p.Acknowledge(t0, "a", ack(10, 12, AckRelease, AckReject, AckAccept)); err != nil {
		t.Fatal(err)
	}
	wantState(t, p, 10, StateAvailable, 1)
	wantState(t, p, 11, StateArchived, 1)
	wantState(t, p, 12, StateAcknowledged, 1)
	wantAcquired(t, p.Acquire(t0, "b", 10, 13), Acquired{10, 10, 2})
	// Releasing at the limit archives instead of redelivering.
	p.Acknowledge(t0, "b", ack(10, 10, AckRelease))
	p.Acquire(t0, "b", 10, 13)
	if err := p.Acknowledge(t0, "b", ack(10, 10, AckRelease)); err != nil {
		t.Fatal(err)
	}
	if p.StartOffset() != 13 || p.EndOffset() != 13 {
		t.Fatalf("SPSO %d SPEO %d, want 13 13", p.StartOffset(), p.EndOffset())
	}
}

func TestShareAckOfOtherMembersLockIsInvalidRecordState(t *testing.T) {
	p := NewPartition(testConfig(), 0)
	p.Acquire(t0, "a", 2, 4)
	p.Acquire(t0, "b", 2, 4)
	// b holds 2-3; a batch touching 1-2 fails whole, and 1 stays locked to a.
	if err := p.Acknowledge(t0, "a", ack(1, 2, AckAccept)); !errors.Is(err, kerr.InvalidRecordState) {
		t.Fatalf("ack across members: %v, want INVALID_RECORD_STATE", err)
	}
	wantState(t, p, 1, StateAcquired, 1)
	if err := p.Acknowledge(t0, "a", ack(5, 5, AckAccept)); !errors.Is(err, kerr.InvalidRecordState) {
		t.Fatalf("ack beyond SPEO: %v, want INVALID_RECORD_STATE", err)
	}
	if err := p.Acknowledge(t0, "a", ack(0, 1, AckAccept, AckAccept, AckAccept)); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("ack with 3 types for 2 offsets: %v, want INVALID_REQUEST", err)
	}
	p.ReleaseMember("b")
	wantState(t, p, 2, StateAvailable, 1)
	wantState(t, p, 0, StateAcquired, 1)
}

func TestShareRenewExtendsLock(t *testing.T) {
	p := NewPartition(testConfig(), 0)
	p.Acquire(t0, "a", 1, 1)
	if err := p.Acknowledge(t0.Add(9*time.Second), "a", ack(0, 0, AckRenew)); err != nil {
		t.Fatal(err)
	}
	p.Tick(t0.Add(15 * time.Second))
	wantState(t, p, 0, StateAcquired, 1)
	p.Tick(t0.Add(19 * time.Second))
	wantState(t, p, 0, StateAvailable, 1)
}

func TestShareMaxRecordLocksBoundsInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRecordLocks = 3
	p := NewPartition(cfg, 0)
	wantAcquired(t, p.Acquire(t0, "a", 10, 100), Acquired{0, 2, 1})
	// Offsets 1-2 finish, 0 is stuck: SPEO-SPSO is still 3, nothing new.
	p.Acknowledge(t0, "a", ack(1, 2, AckAccept))
	wantAcquired(t, p.Acquire(t0, "b", 10, 100))
	p.Acknowledge(t0, "a", ack(0, 0, AckAccept))
	wantAcquired(t, p.Acquire(t0, "b", 10, 100), Acquired{3, 5, 1})
}

func TestShareRestoreTurnsLocksIntoAvailable(t *testing.T) {
	cfg := testConfig()
	p := NewPartition(cfg, 0)
	p.Acquire(t0, "a", 10, 6)
	p.Acknowledge(t0, "a", ack(0, 0, AckAccept))
	p.Acknowledge(t0, "a", ack(2, 2, AckReject))
	p.Acknowledge(t0, "a", ack(3, 3, AckRelease))
	st, ok := p.TakeUpdate()
	if !ok {
		t.Fatal("no update after changes")
	}
	if _, again := p.TakeUpdate(); again {
		t.Fatal("second TakeUpdate reported changes")
	}
	want := Persisted{StartOffset: 1, DeliveryCompleteCount: 1, Batches: []StateBatch{
		{1, 1, StateAvailable, 1}, {2, 2, StateArchived, 1}, {3, 5, StateAvailable, 1},
	}}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("persisted %+v, want %+v", st, want)
	}
	q, err := Restore(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	// The lock on 1, 4 and 5 is gone; each delivery still counts.
	wantAcquired(t, q.Acquire(t0, "b", 10, 6), Acquired{1, 1, 2}, Acquired{3, 5, 2})
	wantState(t, q, 2, StateArchived, 1)
}

func TestShareTruncateToLogStart(t *testing.T) {
	p := NewPartition(testConfig(), 0)
	p.Acquire(t0, "a", 10, 5)
	p.TruncateTo(3)
	if p.StartOffset() != 3 || p.EndOffset() != 5 {
		t.Fatalf("SPSO %d SPEO %d, want 3 5", p.StartOffset(), p.EndOffset())
	}
	p.TruncateTo(9)
	wantAcquired(t, p.Acquire(t0, "a", 10, 10), Acquired{9, 9, 1})
}

func TestShareRestoreRefusesDamagedState(t *testing.T) {
	for _, b := range []StateBatch{{0, 1 << 40, StateAvailable, 1}, {0, 1, State(3), 1}, {5, 2, StateAvailable, 1}} {
		if _, err := Restore(testConfig(), Persisted{Batches: []StateBatch{b}}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("batch %+v: %v, want ErrCorrupt", b, err)
		}
	}
}
