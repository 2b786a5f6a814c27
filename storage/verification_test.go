package storage

import (
	"errors"
	"testing"
	"time"

	"github.com/skiffmq/skiff/protocol"
)

// abortMarker is an ABORT control batch for producer pid at epoch.
func abortMarker(t *testing.T, pid int64, epoch int16) []byte {
	t.Helper()
	now := time.Now().UnixMilli()
	b, err := protocol.BuildControlBatch(nil, protocol.BatchHeader{
		BaseTimestamp: now, MaxTimestamp: now, ProducerID: pid, ProducerEpoch: epoch,
	}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerificationGuardRefusesBatchAfterMarker is the race KIP-890's
// VerificationGuard closes, driven step by step: a produce starts its
// verification, the coordinator says the transaction is open, the
// transaction's marker is written, and only then does the batch reach the
// log. Before the guard the batch was appended after the marker, opening a
// transaction that nothing would ever close.
func TestVerificationGuardRefusesBatchAfterMarker(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	const pid = 7
	g, ongoing := l.StartVerification(pid, 0)
	if ongoing {
		t.Fatal("a producer with nothing in the log reported an open transaction")
	}
	// The coordinator ends the transaction meanwhile.
	mustAppend(t, l, abortMarker(t, pid, 0), AppendOptions{Sync: true})
	end := l.LogEndOffset()
	_, err := l.Append(transactionalBatchAt(pid, 0, time.Now().UnixMilli()), AppendOptions{Guard: g})
	if !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("late batch after the marker: %v, want ErrInvalidTxnState", err)
	}
	if l.LogEndOffset() != end || l.LastStableOffset() != end {
		t.Fatalf("log end %d, LSO %d after the refused batch, want both %d", l.LogEndOffset(), l.LastStableOffset(), end)
	}

	// A new verification gets a new guard, and the stale one stays refused
	// (the ABA case: a later transaction must not accept the old produce).
	stale := g
	g2, _ := l.StartVerification(pid, 0)
	if g2 == stale {
		t.Fatal("a new verification reused the spent guard")
	}
	if _, err := l.Append(transactionalBatchAt(pid, 0, time.Now().UnixMilli()), AppendOptions{Guard: stale}); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("stale guard: %v, want ErrInvalidTxnState", err)
	}
	mustAppend(t, l, transactionalBatchAt(pid, 0, time.Now().UnixMilli()), AppendOptions{Guard: g2})
	// The transaction is open now: the next batch needs no guard of its own.
	g3, ongoing := l.StartVerification(pid, 0)
	if !ongoing {
		t.Fatal("open transaction not reported")
	}
	mustAppend(t, l, transactionalBatchAt(pid, 1, time.Now().UnixMilli()), AppendOptions{Guard: g3})
	// ...until its marker: then the sentinel guard of an open transaction
	// is refused too.
	mustAppend(t, l, abortMarker(t, pid, 0), AppendOptions{})
	if _, err := l.Append(transactionalBatchAt(pid, 2, time.Now().UnixMilli()), AppendOptions{Guard: g3}); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("batch verified while its transaction was open, appended after its marker: %v, want ErrInvalidTxnState", err)
	}
}

// TestVerificationGuardSharedByConcurrentProduces: two produces of one
// producer verified before either appended share the guard, so the second
// is not refused once the first opened the transaction.
func TestVerificationGuardSharedByConcurrentProduces(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	g1, _ := l.StartVerification(9, 0)
	g2, _ := l.StartVerification(9, 0)
	mustAppend(t, l, transactionalBatchAt(9, 0, time.Now().UnixMilli()), AppendOptions{Guard: g1})
	mustAppend(t, l, transactionalBatchAt(9, 1, time.Now().UnixMilli()), AppendOptions{Guard: g2})
	// Appends without a guard (the coordinators' own writes) are not checked.
	mustAppend(t, l, transactionalBatchAt(10, 0, time.Now().UnixMilli()), AppendOptions{})
}
