package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/skiffmq/skiff/protocol"
)

// Transaction verification guards (KIP-890, Kafka's VerificationGuard).
//
// A client's transactional batch may only land in a partition while the
// transaction coordinator knows the partition is in an open transaction.
// The broker asks the coordinator before appending, but the answer can be
// stale by the time the append runs: the transaction may have ended and
// its marker been written in between, and the batch would then open a
// transaction no marker will ever close (or, worse, land after the marker
// of the transaction it belongs to). So the check and the append are made
// one step under the log's lock:
//
//  1. StartVerification, before asking the coordinator, records a guard
//     for the producer in the log (or reports that the producer already
//     has an open transaction here, which needs no guard);
//  2. the server asks the coordinator (verify, or add the partition);
//  3. Append, under Log.mu, accepts a transactional batch of a producer
//     without an open transaction here only if the producer's guard is
//     still the one handed out in step 1.
//
// A transaction marker for the producer, and the first batch of its
// transaction, remove the guard. A batch whose verification raced with
// its transaction's end therefore finds no guard, or a newer one, and is
// refused with ErrInvalidTxnState, whatever the order in which the
// requests were handled.

// ErrInvalidTxnState is returned by Append for a client's transactional
// batch that is not part of a transaction open in the log and whose
// verification guard is missing or stale (INVALID_TXN_STATE).
var ErrInvalidTxnState = errors.New("storage: record was not part of an ongoing transaction")

// VerificationGuard is what StartVerification hands out, to be passed
// back in AppendOptions. The zero value asks for no check (appends from
// the broker's own coordinators).
type VerificationGuard struct {
	id       uint64 // 0: the producer had an open transaction, no guard issued
	required bool
}

// verificationEntry is a producer's outstanding guard.
type verificationEntry struct {
	id      uint64
	created int64 // unix ms, for expiry
}

// StartVerification begins the verification of a transactional produce by
// producer pid at epoch. ongoing reports that the producer already has a
// transaction open in this log at that epoch: the coordinator need not be
// asked, as Append will check that it is still open. Concurrent produces
// of one producer share the guard, as in Kafka.
func (l *Log) StartVerification(pid int64, epoch int16) (g VerificationGuard, ongoing bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ps := &l.mu.producers
	if e := ps.producers[pid]; e != nil && e.txnFirst >= 0 && e.epoch == epoch {
		return VerificationGuard{required: true}, true
	}
	if v, ok := ps.verifying[pid]; ok {
		return VerificationGuard{id: v.id, required: true}, false
	}
	if ps.verifying == nil {
		ps.verifying = make(map[int64]verificationEntry)
	}
	ps.nextGuard++
	ps.verifying[pid] = verificationEntry{id: ps.nextGuard, created: time.Now().UnixMilli()}
	return VerificationGuard{id: ps.nextGuard, required: true}, false
}

// checkGuardLocked applies step 3 to one batch of an append.
func (ps *producerState) checkGuardLocked(h *protocol.BatchHeader, g VerificationGuard) error {
	if !g.required || !h.IsTransactional() || h.IsControl() {
		return nil
	}
	if e := ps.producers[h.ProducerID]; e != nil && e.txnFirst >= 0 && e.epoch == h.ProducerEpoch {
		return nil // its transaction is open here, so the coordinator knows it
	}
	if v, ok := ps.verifying[h.ProducerID]; ok && g.id != 0 && v.id == g.id {
		return nil
	}
	return fmt.Errorf("%w: producer %d epoch %d", ErrInvalidTxnState, h.ProducerID, h.ProducerEpoch)
}

// removeExpiredGuards drops guards older than the producer expiration: a
// verification the coordinator refused leaves its guard behind.
func (ps *producerState) removeExpiredGuards(nowMs int64) {
	for pid, v := range ps.verifying {
		if ps.expiration > 0 && nowMs-v.created >= ps.expiration {
			delete(ps.verifying, pid)
		}
	}
}
