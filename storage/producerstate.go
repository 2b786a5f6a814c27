package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
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
// is saved to producerStateFile when the log closes cleanly, and rebuilt at
// open from that snapshot plus a scan of the batch headers written after
// it (or of every batch when there is no usable snapshot).

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

const producerStateFile = "producer-state.json"

type producerBatch struct {
	FirstSeq    int32 `json:"first_seq"`
	LastSeq     int32 `json:"last_seq"`
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
}

type producerEntry struct {
	ID         int64           `json:"id"`
	Epoch      int16           `json:"epoch"`
	Batches    []producerBatch `json:"batches,omitempty"` // oldest first
	TxnFirst   int64           `json:"txn_first"`         // first offset of the open transaction, -1 if none
	LastTs     int64           `json:"last_ts"`
	CoordEpoch int32           `json:"coordinator_epoch"`
}

func (e *producerEntry) lastSeq() int32 {
	if len(e.Batches) == 0 {
		return -1
	}
	return e.Batches[len(e.Batches)-1].LastSeq
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
}

func (ps *producerState) init() {
	ps.producers = make(map[int64]*producerEntry)
	ps.ongoing = make(map[int64]int64)
}

func (ps *producerState) entry(pid int64) *producerEntry {
	e := ps.producers[pid]
	if e == nil {
		e = &producerEntry{ID: pid, Epoch: -1, TxnFirst: -1, LastTs: -1, CoordEpoch: -1}
		ps.producers[pid] = e
	}
	return e
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
func (l *Log) checkProducersLocked(records []byte) (dup producerBatch, isDup bool, err error) {
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
		v, ok := views[h.ProducerID]
		if !ok {
			if e := ps.producers[h.ProducerID]; e != nil {
				v = producerView{epoch: e.Epoch, lastSeq: e.lastSeq(), known: true}
				if single && !h.IsControl() && h.BaseSequence >= 0 && h.ProducerEpoch == e.Epoch {
					last := incrementSequence(h.BaseSequence, h.LastOffsetDelta)
					for _, b := range e.Batches {
						if b.FirstSeq == h.BaseSequence && b.LastSeq == last {
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
		commit := false
		if h.IsControl() {
			commit, err = markerType(b)
			if err != nil {
				continue // not a transaction marker; Append refuses those from clients
			}
		}
		l.mu.producers.apply(&h, commit, markerCoordinatorEpoch(b))
	}
}

// apply updates the state with one batch; commit and coordEpoch are only
// read for control batches.
func (ps *producerState) apply(h *protocol.BatchHeader, commit bool, coordEpoch int32) {
	e := ps.entry(h.ProducerID)
	if h.ProducerEpoch != e.Epoch {
		if h.ProducerEpoch < e.Epoch {
			return // recovery of data appended before a fence; keep the newer epoch
		}
		e.Epoch = h.ProducerEpoch
		e.Batches = nil
	}
	if h.MaxTimestamp > e.LastTs {
		e.LastTs = h.MaxTimestamp
	}
	if h.IsControl() {
		e.CoordEpoch = coordEpoch
		if e.TxnFirst < 0 {
			return
		}
		delete(ps.ongoing, h.ProducerID)
		if !commit {
			ps.aborted = append(ps.aborted, AbortedTxn{
				ProducerID:       h.ProducerID,
				FirstOffset:      e.TxnFirst,
				LastOffset:       h.BaseOffset,
				LastStableOffset: ps.firstUnstable(h.BaseOffset + 1),
			})
		}
		e.TxnFirst = -1
		return
	}
	if h.BaseSequence >= 0 {
		e.Batches = append(e.Batches, producerBatch{
			FirstSeq:    h.BaseSequence,
			LastSeq:     incrementSequence(h.BaseSequence, h.LastOffsetDelta),
			FirstOffset: h.BaseOffset,
			LastOffset:  h.LastOffset(),
		})
		if n := len(e.Batches); n > maxProducerBatches {
			e.Batches = slices.Delete(e.Batches, 0, n-maxProducerBatches)
		}
	}
	if h.IsTransactional() && e.TxnFirst < 0 {
		e.TxnFirst = h.BaseOffset
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
	for _, e := range l.mu.producers.producers {
		out = append(out, ProducerInfo{
			ProducerID:            e.ID,
			ProducerEpoch:         e.Epoch,
			LastSequence:          e.lastSeq(),
			LastTimestamp:         e.LastTs,
			CoordinatorEpoch:      e.CoordEpoch,
			CurrentTxnStartOffset: e.TxnFirst,
		})
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return int(min(max(a.ProducerID-b.ProducerID, -1), 1)) })
	return out
}

// producerSnapshot is the on-disk form of the producer state: the state
// after every batch below Offset.
type producerSnapshot struct {
	Offset    int64            `json:"offset"`
	Producers []*producerEntry `json:"producers"`
	Aborted   []AbortedTxn     `json:"aborted,omitempty"`
}

// saveProducerStateLocked writes the snapshot of the state at the log end.
// Aborted transactions wholly below the log start offset are dropped, as
// Kafka drops .txnindex files with their segments.
func (l *Log) saveProducerStateLocked() error {
	ps := &l.mu.producers
	snap := producerSnapshot{Offset: l.mu.leo}
	for _, e := range ps.producers {
		snap.Producers = append(snap.Producers, e)
	}
	slices.SortFunc(snap.Producers, func(a, b *producerEntry) int { return int(min(max(a.ID-b.ID, -1), 1)) })
	for _, a := range ps.aborted {
		if a.LastOffset >= l.mu.logStart {
			snap.Aborted = append(snap.Aborted, a)
		}
	}
	data, err := json.Marshal(&snap)
	if err != nil {
		return fmt.Errorf("storage: encoding producer state: %w", err)
	}
	return writeFileAtomic(filepath.Join(l.dir, producerStateFile), data, false)
}

// loadProducerStateLocked rebuilds the producer state at open: from the
// snapshot, if it describes a prefix of the log, plus the batches after it;
// otherwise from every batch.
func (l *Log) loadProducerStateLocked() error {
	ps := &l.mu.producers
	ps.init()
	from := int64(-1)
	data, err := os.ReadFile(filepath.Join(l.dir, producerStateFile))
	if err == nil {
		var snap producerSnapshot
		if jerr := json.Unmarshal(data, &snap); jerr != nil {
			l.logger.Warn().Err(jerr).Str("dir", l.dir).Msg("storage: ignoring corrupt producer state snapshot")
		} else if snap.Offset <= l.mu.leo {
			for _, e := range snap.Producers {
				if e == nil {
					continue
				}
				ps.producers[e.ID] = e
				if e.TxnFirst >= 0 {
					ps.ongoing[e.ID] = e.TxnFirst
				}
			}
			ps.aborted = snap.Aborted
			from = snap.Offset
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: %w", err)
	}
	if from < 0 {
		ps.init()
		ps.aborted = nil
		from = 0
	}
	return l.scanProducersLocked(from)
}

// scanProducersLocked applies every batch from offset from to the log end.
// Only the headers are read, and the bodies of control batches.
func (l *Log) scanProducersLocked(from int64) error {
	for i, s := range l.mu.segs {
		if i+1 < len(l.mu.segs) && l.mu.segs[i+1].base <= from {
			continue
		}
		if s.size == 0 {
			continue
		}
		sc := newHeaderScanner(s.f, s.size)
		pos := int64(0)
		for {
			h, ok, err := sc.header(pos)
			if err != nil {
				sc.free()
				return err
			}
			if !ok {
				break
			}
			if h.BaseOffset >= from && h.HasProducerID() {
				commit, coordEpoch := false, int32(-1)
				if h.IsControl() {
					b := make([]byte, h.Size())
					if _, err := s.f.ReadAt(b, pos); err != nil {
						sc.free()
						return fmt.Errorf("storage: read %s: %w", s.f.Name(), err)
					}
					if commit, err = markerType(b); err != nil {
						pos += int64(h.Size())
						continue
					}
					coordEpoch = markerCoordinatorEpoch(b)
				}
				l.mu.producers.apply(&h, commit, coordEpoch)
			}
			pos += int64(h.Size())
		}
		sc.free()
	}
	return nil
}
