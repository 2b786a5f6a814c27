package storage

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"

	"github.com/skiffmq/skiff/protocol"
)

// Log compaction, following Kafka's LogCleaner. One cleaning of a log:
//
//  1. Under Log.mu, decide whether the log is due (cleanableLocked) and pin
//     the segments from the log start to the last cleanable one: never the
//     active segment, nothing at or past the last stable offset, nothing
//     newer than min.compaction.lag.ms.
//  2. Without the lock, build the dedupe map, key -> latest offset, over the
//     dirty part (from the first dirty offset on), skipping control batches
//     and aborted transactional data. The map holds at most what
//     log.cleaner.dedupe.buffer.size allows; where it fills up, this pass
//     stops and the next one continues (several passes).
//  3. Group the segments below the map's end by Kafka's rule (consecutive,
//     together at most segment.bytes and 2^31 offsets), and write each group
//     as one cleaned segment that keeps, in order and at their offsets, the
//     records that are the latest for their key, or past the map's end.
//  4. Swap each cleaned segment in (compactswap.go), taking Log.mu only to
//     replace the segment list.
//
// What a cleaned batch keeps: its base offset, last offset delta, producer
// id, epoch, base sequence, partition leader epoch, attributes and codec (it
// is recompressed with the codec it had). A batch whose records all stay is
// copied byte for byte. Transactional data follows Kafka's
// CleanedTransactionMetadata (txnTracker): aborted records go; a marker goes
// once no data of its transaction remains and delete.retention.ms has passed
// since a cleaning first found it removable; the aborted-transaction index
// keeps only the transactions whose data or marker remains. The last batch
// of every live producer is kept, emptied if need be, so that the producer
// state rebuilt from the log after a crash keeps each producer's last
// sequence and epoch. Tombstones (null values) stay until delete.retention.ms
// after the cleaning that first kept them: that cleaning stamps the batch's
// delete horizon (attribute bit 6, the base timestamp holding the horizon,
// KIP-534) and a later one drops them.

// offsetMapEntryBytes is what one dedupe map entry is counted as against
// log.cleaner.dedupe.buffer.size: a 16-byte key hash and an 8-byte offset,
// plus the Go map's own overhead.
const offsetMapEntryBytes = 48

// offsetMap is the cleaner's dedupe map: a 128-bit hash of each key (two
// independent 64-bit hashes; Kafka uses MD5) to its latest offset.
type offsetMap struct {
	s1, s2 maphash.Seed
	m      map[[2]uint64]int64
	limit  int
}

func newOffsetMap(bytes int64) *offsetMap {
	limit := max(int(min(bytes/offsetMapEntryBytes, math.MaxInt32)), 1)
	return &offsetMap{s1: maphash.MakeSeed(), s2: maphash.MakeSeed(), m: make(map[[2]uint64]int64), limit: limit}
}

func (om *offsetMap) hash(key []byte) [2]uint64 {
	return [2]uint64{maphash.Bytes(om.s1, key), maphash.Bytes(om.s2, key)}
}

func (om *offsetMap) put(key []byte, offset int64) { om.m[om.hash(key)] = offset }

// latest returns the key's latest offset, or -1.
func (om *offsetMap) latest(key []byte) int64 {
	if off, ok := om.m[om.hash(key)]; ok {
		return off
	}
	return -1
}

// txnTracker is Kafka's CleanedTransactionMetadata: fed the batches of the
// cleaned range in order, it says which transactional batches belong to
// aborted transactions and which markers nothing needs any more.
type txnTracker struct {
	aborted          []AbortedTxn // not yet started, by first offset
	ongoingAborted   map[int64]*abortedTxnState
	ongoingCommitted map[int64]bool
}

type abortedTxnState struct {
	txn      AbortedTxn
	observed bool // a batch of the transaction was read in this cleaning
}

func newTxnTracker(aborted []AbortedTxn) *txnTracker {
	a := slices.Clone(aborted)
	slices.SortStableFunc(a, func(x, y AbortedTxn) int { return int(min(max(x.FirstOffset-y.FirstOffset, -1), 1)) })
	return &txnTracker{aborted: a, ongoingAborted: map[int64]*abortedTxnState{}, ongoingCommitted: map[int64]bool{}}
}

func (t *txnTracker) consumeUpTo(offset int64) {
	for len(t.aborted) > 0 && t.aborted[0].FirstOffset <= offset {
		a := t.aborted[0]
		t.aborted = t.aborted[1:]
		t.ongoingAborted[a.ProducerID] = &abortedTxnState{txn: a}
	}
}

// onBatch reports whether a data batch belongs to an aborted transaction
// (its records are then discarded).
func (t *txnTracker) onBatch(h *protocol.BatchHeader) bool {
	t.consumeUpTo(h.LastOffset())
	if !h.IsTransactional() {
		return false
	}
	if a, ok := t.ongoingAborted[h.ProducerID]; ok {
		a.observed = true
		return true
	}
	t.ongoingCommitted[h.ProducerID] = true
	return false
}

// onControl reports whether a marker may be discarded (once its delete
// horizon passed): no batch of its transaction was seen. For an abort
// marker that must stay, it also returns the aborted transaction, which
// stays in the index.
func (t *txnTracker) onControl(h *protocol.BatchHeader, batch []byte) (canDiscard bool, keep *AbortedTxn) {
	t.consumeUpTo(h.LastOffset())
	if h.NumRecords == 0 {
		return true, nil // emptied by an earlier cleaning
	}
	commit, err := markerType(batch)
	if err != nil {
		return false, nil // not a marker we know: keep it
	}
	if commit {
		seen := t.ongoingCommitted[h.ProducerID]
		delete(t.ongoingCommitted, h.ProducerID)
		return !seen, nil
	}
	a, ok := t.ongoingAborted[h.ProducerID]
	delete(t.ongoingAborted, h.ProducerID)
	if ok && a.observed {
		return false, &a.txn
	}
	return true, nil
}

// producerLast is what the cleaner must keep of a live producer: the batch
// ending at lastData, or, if it has written no data since its epoch began
// (lastData -1), its markers of that epoch.
type producerLast struct {
	lastData int64
	epoch    int16
}

// batchFilter decides, batch by batch, what a cleaning keeps.
type batchFilter struct {
	om        *offsetMap
	mapEnd    int64 // records at or past it are kept: the map has not seen them
	nowMs     int64
	retention int64 // delete.retention.ms
	producers map[int64]producerLast
	txns      *txnTracker

	it      protocol.RecordIterator
	recs    []protocol.Record
	arena   []byte
	out     []byte
	horizon int64 // earliest delete horizon written, 0 if none
	// keptAborted holds the marker offsets of aborted transactions that
	// stay in the index.
	keptAborted map[int64]bool

	recordsRead, recordsKept int64
}

func (f *batchFilter) lastOfProducer(h *protocol.BatchHeader) bool {
	if !h.HasProducerID() {
		return false
	}
	p, ok := f.producers[h.ProducerID]
	if !ok {
		return false
	}
	if p.lastData >= 0 {
		return h.LastOffset() == p.lastData
	}
	return h.IsControl() && h.ProducerEpoch == p.epoch
}

func (f *batchFilter) noteHorizon(h int64) {
	if f.horizon == 0 || h < f.horizon {
		f.horizon = h
	}
}

// filter returns what the cleaned segment keeps of batch: nil to drop it,
// batch itself, or a rewritten batch valid until the next call.
func (f *batchFilter) filter(batch []byte) ([]byte, error) {
	h, err := protocol.ParseBatchHeader(batch)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCorruptSegment, err)
	}
	f.recordsRead += int64(h.NumRecords)
	keepEmpty := f.lastOfProducer(&h)
	hasHorizon := h.Attributes&protocol.AttrDeleteHorizon != 0
	horizonPassed := hasHorizon && h.BaseTimestamp <= f.nowMs
	if h.IsControl() {
		canDiscard, keep := f.txns.onControl(&h, batch)
		if keep != nil {
			f.keptAborted[keep.LastOffset] = true
		}
		discard := canDiscard && horizonPassed
		switch {
		case discard && keepEmpty:
			return f.rebuild(h, nil, false)
		case discard:
			return nil, nil
		case canDiscard && !hasHorizon && h.NumRecords > 0:
			// Stamp the horizon: the marker goes delete.retention.ms from
			// now, so a consumer mid-transaction still sees it.
			f.recordsKept += int64(h.NumRecords)
			return f.rewriteWithHorizon(batch, h)
		}
		if hasHorizon && !horizonPassed {
			f.noteHorizon(h.BaseTimestamp)
		}
		f.recordsKept += int64(h.NumRecords)
		return batch, nil
	}
	if f.txns.onBatch(&h) {
		if keepEmpty {
			return f.rebuild(h, nil, false)
		}
		return nil, nil
	}
	// Decide record by record, copying the kept ones aside in case the batch
	// has to be rebuilt.
	f.recs, f.arena = f.recs[:0], f.arena[:0]
	all, tombstones := true, false
	if err := f.it.Reset(batch, protocol.IterFull, 0); err != nil {
		return nil, fmt.Errorf("storage: compact: batch at offset %d: %w", h.BaseOffset, err)
	}
	for f.it.Next() {
		r := f.it.Record()
		off := h.BaseOffset + int64(r.OffsetDelta)
		keep := off >= f.mapEnd
		if !keep && r.Key != nil && off >= f.om.latest(r.Key) {
			keep = r.Value != nil || !hasHorizon || !horizonPassed
		}
		if !keep {
			all = false
			continue
		}
		if r.Value == nil {
			tombstones = true
		}
		f.recs = append(f.recs, f.copyRecord(r))
	}
	if err := f.it.Err(); err != nil {
		return nil, fmt.Errorf("storage: compact: batch at offset %d: %w", h.BaseOffset, err)
	}
	f.recordsKept += int64(len(f.recs))
	stamp := tombstones && !hasHorizon
	switch {
	case len(f.recs) == 0 && keepEmpty:
		return f.rebuild(h, nil, false)
	case len(f.recs) == 0:
		return nil, nil
	case all && !stamp:
		if tombstones {
			f.noteHorizon(h.BaseTimestamp)
		}
		return batch, nil
	}
	return f.rebuild(h, f.recs, stamp)
}

// copyRecord copies r's bytes into the arena, which only ever grows by new
// chunks so earlier copies stay valid.
func (f *batchFilter) copyRecord(r *protocol.Record) protocol.Record {
	c := *r
	c.Key = f.keep(r.Key)
	c.Value = f.keep(r.Value)
	if len(r.Headers) > 0 {
		c.Headers = make([]protocol.Header, len(r.Headers))
		for i, hd := range r.Headers {
			c.Headers[i] = protocol.Header{Key: hd.Key, Value: f.keep(hd.Value)}
		}
	}
	return c
}

func (f *batchFilter) keep(b []byte) []byte {
	if b == nil {
		return nil
	}
	if len(f.arena)+len(b) > cap(f.arena) {
		f.arena = make([]byte, 0, max(64<<10, len(b)))
	}
	n := len(f.arena)
	f.arena = append(f.arena, b...)
	return f.arena[n:len(f.arena):len(f.arena)]
}

func (f *batchFilter) rewriteWithHorizon(batch []byte, h protocol.BatchHeader) ([]byte, error) {
	f.recs, f.arena = f.recs[:0], f.arena[:0]
	if err := f.it.Reset(batch, protocol.IterFull, 0); err != nil {
		return nil, fmt.Errorf("storage: compact: batch at offset %d: %w", h.BaseOffset, err)
	}
	for f.it.Next() {
		f.recs = append(f.recs, f.copyRecord(f.it.Record()))
	}
	if err := f.it.Err(); err != nil {
		return nil, fmt.Errorf("storage: compact: batch at offset %d: %w", h.BaseOffset, err)
	}
	return f.rebuild(h, f.recs, true)
}

// rebuild writes a batch with h's header fields and codec holding recs
// (none: an empty batch, kept for its producer fields). With stamp, the
// batch gets its delete horizon, now + delete.retention.ms, and record
// timestamps are re-based on it so that they do not change.
func (f *batchFilter) rebuild(h protocol.BatchHeader, recs []protocol.Record, stamp bool) ([]byte, error) {
	if stamp {
		horizon := f.nowMs + f.retention
		for i := range recs {
			recs[i].TimestampDelta = h.BaseTimestamp + recs[i].TimestampDelta - horizon
		}
		h.BaseTimestamp = horizon
		h.Attributes |= protocol.AttrDeleteHorizon
	}
	if h.Attributes&protocol.AttrDeleteHorizon != 0 && len(recs) > 0 {
		f.noteHorizon(h.BaseTimestamp)
	}
	out, err := protocol.BuildBatch(f.out[:0], h, h.Codec(), recs)
	if err != nil {
		return nil, fmt.Errorf("storage: compact: rebuild batch at offset %d: %w", h.BaseOffset, err)
	}
	f.out = out
	return out, nil
}

// errDedupeBufferTooSmall is returned when not even one batch of the dirty
// part fits in the dedupe map.
var errDedupeBufferTooSmall = errors.New("storage: compact: log.cleaner.dedupe.buffer.size too small for one batch")
