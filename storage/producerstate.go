package storage

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/skiffmq/skiff/protocol"
)

// Producer state: what Kafka's ProducerStateManager keeps per partition for
// idempotent and transactional producers. For each producer id the log
// remembers its epoch, the sequence and offset ranges of its last five
// batches (so a retried batch is recognised and answered with its original
// offsets) and the first offset of its open transaction, if any. From the
// open transactions follows the last stable offset; from the abort markers,
// the aborted-transaction index that read_committed fetches need.
//
// The state changes only under Log.mu, in the same critical section as the
// append it describes, so the sequence check and the write are atomic. It
// is saved as a snapshot (producersnapshot.go) at every roll and when the
// log closes cleanly, and rebuilt at open from that snapshot plus a scan of
// the batch headers written after it (or of every batch when there is no
// usable snapshot). Producers idle for producer.id.expiration.ms are
// forgotten (Log.ExpireProducers), so the state and its snapshot are
// bounded by the producers active recently, not by the log's history.

var (
	// ErrOutOfOrderSequence is returned by Append for a batch whose
	// sequence does not follow the producer's last one
	// (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("storage: out of order sequence number")
	// ErrInvalidProducerEpoch is returned by Append for a batch or marker
	// whose producer epoch is older than the one the log knows
	// (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("storage: invalid producer epoch")
)

// maxProducerBatches is how many batches per producer are remembered for
// duplicate detection; Kafka's producers keep at most five in flight.
const maxProducerBatches = 5

// producerBatch is one remembered batch. Its last sequence and last offset
// are both delta (the batch's last offset delta) past the first.
type producerBatch struct {
	firstSeq    int32
	delta       int32
	firstOffset int64
}

func (b producerBatch) lastSeq() int32    { return incrementSequence(b.firstSeq, b.delta) }
func (b producerBatch) lastOffset() int64 { return b.firstOffset + int64(b.delta) }

// producerEntry is one producer's state: 48 bytes for a producer that
// wrote one batch, plus 64 once it wrote more (the producer id is its map
// key). Most producers of a busy partition are short-lived, so the older
// batches live in a separate array allocated only when needed.
type producerEntry struct {
	lastTs     int64 // largest batch timestamp seen; producer expiry compares it with now
	txnFirst   int64 // first offset of the open transaction, -1 if none
	last       producerBatch
	older      *[maxProducerBatches - 1]producerBatch // ring of the n-1 batches before last, from head
	coordEpoch int32
	epoch      int16
	head, n    uint8 // n: batches remembered in all, last included
}

func newProducerEntry() *producerEntry {
	return &producerEntry{epoch: -1, txnFirst: -1, lastTs: -1, coordEpoch: -1}
}

// batch returns the i-th remembered batch, oldest first.
func (e *producerEntry) batch(i int) producerBatch {
	if i == int(e.n)-1 {
		return e.last
	}
	return e.older[(int(e.head)+i)%len(e.older)]
}

func (e *producerEntry) addBatch(b producerBatch) {
	if e.n > 0 {
		if e.older == nil {
			e.older = new([maxProducerBatches - 1]producerBatch)
		}
		if e.n < maxProducerBatches {
			e.older[(int(e.head)+int(e.n)-1)%len(e.older)] = e.last
			e.n++
		} else { // full: the oldest gives way
			e.older[e.head] = e.last
			e.head = (e.head + 1) % uint8(len(e.older))
		}
	} else {
		e.n = 1
	}
	e.last = b
}

// clearBatches forgets the batches (a new epoch starts its sequences over).
func (e *producerEntry) clearBatches() { e.head, e.n = 0, 0 }

func (e *producerEntry) lastSeq() int32 {
	if e.n == 0 {
		return -1
	}
	return e.batch(int(e.n) - 1).lastSeq()
}

// AbortedTxn is an entry of the aborted-transaction index (Kafka's
// .txnindex): the offsets an aborted transaction spans, from its first
// batch to its abort marker.
type AbortedTxn struct {
	ProducerID       int64 `json:"producer_id"`
	FirstOffset      int64 `json:"first_offset"`
	LastOffset       int64 `json:"last_offset"`
	LastStableOffset int64 `json:"last_stable_offset"`
}

// ProducerInfo describes one producer a log knows (DescribeProducers).
type ProducerInfo struct {
	ProducerID            int64
	ProducerEpoch         int16
	LastSequence          int32
	LastTimestamp         int64
	CoordinatorEpoch      int32
	CurrentTxnStartOffset int64 // -1 without an open transaction
}

// producerState is guarded by Log.mu.
type producerState struct {
	producers map[int64]*producerEntry
	ongoing   map[int64]int64 // producer id -> first offset of its open transaction
	aborted   []AbortedTxn    // in marker order
	// expiration is producer.id.expiration.ms; <= 0 keeps producers forever.
	expiration int64
	// verifying holds the outstanding verification guards by producer id
	// (verification.go); nextGuard numbers them. Neither is persisted: a
	// restart drops every guard, and the produces holding one are refused.
	verifying map[int64]verificationEntry
	nextGuard uint64
}

func (ps *producerState) init() {
	ps.producers = make(map[int64]*producerEntry)
	ps.ongoing = make(map[int64]int64)
	ps.verifying = make(map[int64]verificationEntry)
}

func (ps *producerState) entry(pid int64) *producerEntry {
	e := ps.producers[pid]
	if e == nil {
		e = newProducerEntry()
		ps.producers[pid] = e
	}
	return e
}

// expired is Kafka's ProducerStateManager.isProducerExpired: idle for the
// expiration time by its last batch timestamp, and no open transaction
// (whose state the transaction's markers still need).
func (ps *producerState) expired(e *producerEntry, nowMs int64) bool {
	return ps.expiration > 0 && e.txnFirst < 0 && nowMs-e.lastTs >= ps.expiration
}

// removeExpired forgets the expired producers and returns how many. A
// forgotten producer's next batch is accepted with any sequence, as Kafka
// accepts a producer it has no state for.
func (ps *producerState) removeExpired(nowMs int64) int {
	ps.removeExpiredGuards(nowMs)
	n := 0
	for pid, e := range ps.producers {
		if ps.expired(e, nowMs) {
			delete(ps.producers, pid)
			n++
		}
	}
	return n
}

// ExpireProducers forgets the producers idle for longer than
// producer.id.expiration.ms at nowMs (Kafka's removeExpiredProducers). The
// store calls it every producer.id.expiration.check.interval.ms.
func (l *Log) ExpireProducers(nowMs int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return 0
	}
	n := l.mu.producers.removeExpired(nowMs)
	if n > 0 {
		l.logger.Debug().Int("producers", n).Int("remaining", len(l.mu.producers.producers)).Msg("storage: expired idle producer ids")
	}
	return n
}

// firstUnstable returns the first offset of the earliest open transaction,
// or limit if there is none before it.
func (ps *producerState) firstUnstable(limit int64) int64 {
	for _, first := range ps.ongoing {
		limit = min(limit, first)
	}
	return limit
}

// incrementSequence is Kafka's DefaultRecordBatch.incrementSequence:
// sequences wrap from MaxInt32 to 0.
func incrementSequence(seq int32, delta int32) int32 {
	if seq > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - seq) - 1
	}
	return seq + delta
}

func inSequence(last, next int32) bool {
	return next == last+1 || (next == 0 && last == math.MaxInt32)
}

// producerView is what checkProducersLocked knows of a producer while it
// walks the batches of one append: the log's state, updated by the earlier
// batches of the same append.
type producerView struct {
	epoch   int16
	lastSeq int32
	known   bool
}

// checkProducersLocked validates the producer fields of every batch of an
// append against the producer state, as Kafka's ProducerAppendInfo does for
// appends from clients: a batch that repeats one of the producer's last
// five batches is a duplicate (ok=true with its original offsets; only
// reported for single-batch appends, as produce requests carry one batch),
// an older epoch is fenced, and a sequence must follow the last one (or be
// 0 for a new epoch). Producers the log does not know are accepted with any
// sequence. Batches with no sequence (-1, the coordinator's transactional
// offset commits) and control batches skip the sequence check.
func (l *Log) checkProducersLocked(records []byte, guard VerificationGuard) (dup producerBatch, isDup bool, err error) {
	ps := &l.mu.producers
	var views map[int64]producerView
	single := batchSize(records) == len(records)
	for p := 0; p < len(records); p += batchSize(records[p:]) {
		h, err := protocol.ParseBatchHeader(records[p:])
		if err != nil {
			return dup, false, err
		}
		if !h.HasProducerID() {
			continue
		}
		if err := ps.checkGuardLocked(&h, guard); err != nil {
			return dup, false, err
		}
		v, ok := views[h.ProducerID]
		if !ok {
			if e := ps.producers[h.ProducerID]; e != nil {
				v = producerView{epoch: e.epoch, lastSeq: e.lastSeq(), known: true}
				if single && !h.IsControl() && h.BaseSequence >= 0 && h.ProducerEpoch == e.epoch {
					last := incrementSequence(h.BaseSequence, h.LastOffsetDelta)
					for i := range int(e.n) {
						if b := e.batch(i); b.firstSeq == h.BaseSequence && b.lastSeq() == last {
							return b, true, nil
						}
					}
				}
			} else {
				v = producerView{epoch: -1, lastSeq: -1}
			}
		}
		if v.known && h.ProducerEpoch < v.epoch {
			return dup, false, fmt.Errorf("%w: producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, v.epoch)
		}
		switch {
		case h.IsControl():
			v.epoch = h.ProducerEpoch
		case h.BaseSequence < 0:
			if h.ProducerEpoch != v.epoch {
				v.lastSeq = -1
			}
			v.epoch = h.ProducerEpoch
		case !v.known:
			v.epoch, v.lastSeq = h.ProducerEpoch, incrementSequence(h.BaseSequence, h.LastOffsetDelta)
		case h.ProducerEpoch != v.epoch:
			if h.BaseSequence != 0 && v.epoch != -1 {
				return dup, false, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
			}
			v.epoch, v.lastSeq = h.ProducerEpoch, incrementSequence(h.BaseSequence, h.LastOffsetDelta)
		default:
			if !inSequence(v.lastSeq, h.BaseSequence) {
				return dup, false, fmt.Errorf("%w: producer %d epoch %d sequence %d after %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence, v.lastSeq)
			}
			v.lastSeq = incrementSequence(h.BaseSequence, h.LastOffsetDelta)
		}
		v.known = true
		if views == nil {
			views = make(map[int64]producerView)
		}
		views[h.ProducerID] = v
	}
	return dup, false, nil
}

// updateProducersLocked applies appended batches (offsets assigned) to the
// producer state.
func (l *Log) updateProducersLocked(records []byte) {
	for p := 0; p < len(records); p += batchSize(records[p:]) {
		b := records[p : p+batchSize(records[p:])]
		h, err := protocol.ParseBatchHeader(b)
		if err != nil || !h.HasProducerID() {
			continue
		}
		// Only a marker's one record is decoded: a data batch's records
		// are never walked here, under the partition lock.
		commit, coordEpoch := false, int32(-1)
		if h.IsControl() {
			commit, err = markerType(b)
			if err != nil {
				continue // not a transaction marker; Append refuses those from clients
			}
			coordEpoch = markerCoordinatorEpoch(b)
		}
		l.mu.producers.apply(&h, commit, coordEpoch)
	}
}

// apply updates the state with one batch; commit and coordEpoch are only
// read for control batches.
func (ps *producerState) apply(h *protocol.BatchHeader, commit bool, coordEpoch int32) {
	e := ps.entry(h.ProducerID)
	if h.ProducerEpoch != e.epoch {
		if h.ProducerEpoch < e.epoch {
			return // recovery of data appended before a fence; keep the newer epoch
		}
		e.epoch = h.ProducerEpoch
		e.clearBatches()
	}
	if h.MaxTimestamp > e.lastTs {
		e.lastTs = h.MaxTimestamp
	}
	if h.IsTransactional() || h.IsControl() {
		// The transaction is open here now, or has ended: either way an
		// outstanding guard is spent.
		delete(ps.verifying, h.ProducerID)
	}
	if h.IsControl() {
		e.coordEpoch = coordEpoch
		if e.txnFirst < 0 {
			return
		}
		delete(ps.ongoing, h.ProducerID)
		if !commit {
			ps.aborted = append(ps.aborted, AbortedTxn{
				ProducerID:       h.ProducerID,
				FirstOffset:      e.txnFirst,
				LastOffset:       h.BaseOffset,
				LastStableOffset: ps.firstUnstable(h.BaseOffset + 1),
			})
		}
		e.txnFirst = -1
		return
	}
	if h.BaseSequence >= 0 {
		e.addBatch(producerBatch{firstSeq: h.BaseSequence, delta: h.LastOffsetDelta, firstOffset: h.BaseOffset})
	}
	if h.IsTransactional() && e.txnFirst < 0 {
		e.txnFirst = h.BaseOffset
		ps.ongoing[h.ProducerID] = h.BaseOffset
	}
}

// markerType decodes a control batch's record and reports whether it is a
// commit marker.
func markerType(batch []byte) (commit bool, err error) {
	recs, err := protocol.DecodeRecords(batch, nil)
	if err != nil {
		return false, err
	}
	if len(recs) != 1 {
		return false, fmt.Errorf("%w: control batch with %d records", protocol.ErrRecordsCorrupt, len(recs))
	}
	t, err := protocol.ParseControlRecordKey(recs[0].Key)
	if err != nil {
		return false, err
	}
	switch t {
	case protocol.ControlCommit:
		return true, nil
	case protocol.ControlAbort:
		return false, nil
	}
	return false, fmt.Errorf("%w: control record type %d", protocol.ErrRecordsCorrupt, t)
}

func markerCoordinatorEpoch(batch []byte) int32 {
	recs, err := protocol.DecodeRecords(batch, nil)
	if err != nil || len(recs) != 1 {
		return -1
	}
	ce, err := protocol.ParseControlRecordValue(recs[0].Value)
	if err != nil {
		return -1
	}
	return ce
}

// LastStableOffset is the offset below which every transaction is decided:
// the first offset of the earliest open transaction, or the high watermark.
func (l *Log) LastStableOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.producers.firstUnstable(l.mu.hw.offset)
}

// AbortedTxns returns the aborted transactions that overlap the offsets
// [from, to), for a read_committed fetch of that range.
func (l *Log) AbortedTxns(from, to int64) []AbortedTxn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AbortedTxn
	for _, a := range l.mu.producers.aborted {
		if a.LastOffset >= from && a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out
}

// Producers returns the producers the log knows, by id (DescribeProducers).
func (l *Log) Producers() []ProducerInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ProducerInfo, 0, len(l.mu.producers.producers))
	for pid, e := range l.mu.producers.producers {
		out = append(out, ProducerInfo{
			ProducerID:            pid,
			ProducerEpoch:         e.epoch,
			LastSequence:          e.lastSeq(),
			LastTimestamp:         e.lastTs,
			CoordinatorEpoch:      e.coordEpoch,
			CurrentTxnStartOffset: e.txnFirst,
		})
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return int(min(max(a.ProducerID-b.ProducerID, -1), 1)) })
	return out
}
