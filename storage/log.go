package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/protocol"
)

var (
	// ErrOffsetOutOfRange is returned for offsets below the log start offset
	// or above the log end offset (Kafka's OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrClosed is returned by a log or store that has been closed.
	ErrClosed = errors.New("storage: closed")
	// ErrLogFailed is returned once an fsync of the log failed. After a failed
	// fsync the kernel may have dropped the dirty pages, so nothing written
	// since the last good fsync can be trusted; the log refuses appends until
	// it is reopened (and recovered). The server maps it to
	// KAFKA_STORAGE_ERROR.
	ErrLogFailed = errors.New("storage: log failed")
	// ErrWriteFailed wraps the error of a write to a segment that failed
	// (a full disk, an I/O error). The failed append is cut off the file
	// again, so nothing of it stays on disk, and the log stays open: the
	// next append tries again, so writes resume by themselves once space
	// is freed. The server maps it to KAFKA_STORAGE_ERROR.
	ErrWriteFailed = errors.New("storage: write failed")
)

// closedCh is returned by Wait on a closed log.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// logPos is a point in the log: offset is the first offset after it, and the
// data before it ends at byte pos of seg (every earlier segment is complete).
type logPos struct {
	offset int64
	seg    *segment
	pos    int64
}

// Log is one partition's log: a sequence of segments, of which the last is
// the active one that appends go to. It is safe for concurrent use.
type Log struct {
	dir    string
	name   string
	store  *Store // nil for a log opened outside a store
	fs     FS
	files  *fileBudget // the budget of open sealed-segment files, shared with the store's other logs
	logger zerolog.Logger

	wg      sync.WaitGroup // background flushes, waited for by Close
	ckptMu  sync.Mutex     // serializes writes of the log start offset checkpoint
	fsyncs  atomic.Int64   // fdatasync calls on segment files (tests, metrics)
	scanned int64          // bytes validated while opening; set before the log is shared

	now           func() time.Time           // clock for producer expiry
	onDurableRoll func()                     // see logEnv; nil outside a store
	onFlushRound  func(time.Duration, int64) // Observer.FlushRound; nil: none

	mu struct {
		sync.Mutex
		cfg      Config
		closed   bool
		failed   error      // set by a failed fsync; see ErrLogFailed
		writeErr error      // the last append's write failed; see ErrWriteFailed
		segs     []*segment // ascending base offsets; the last is active. Never modified in place, so readers may keep a copy of the slice header.
		logStart int64
		leo      int64  // log end offset
		hw       logPos // high watermark
		hwCh     chan struct{}

		// maxTs/maxTsOffset track the largest batch timestamp in the log,
		// hwMaxTs/hwMaxTsOffset the largest below the high watermark.
		maxTs, maxTsOffset     int64
		hwMaxTs, hwMaxTsOffset int64

		// Flushing: one fsync round at a time (flushing), whose end closes
		// flushDone. flushed is the durable prefix of the log.
		flushing     bool
		flushDone    chan struct{}
		flushed      logPos
		flushWanted  int64 // offset the background flusher must reach
		bgFlushing   bool  // a background flush goroutine is running
		dirDirty     bool  // a segment file was created since the last directory fsync
		appendedMsgs int64 // records appended since open
		flushedMsgs  int64 // appendedMsgs covered by the last flush
		lastFlush    time.Time
		flushTimer   *time.Timer      // flush.ms, armed while unflushed data waits
		fsync        func(File) error // File.Datasync; tests inject failures

		producers       producerState // idempotent/transactional producers; see producerstate.go
		pendingSnapshot []byte        // producer state snapshot encoded at a roll, for the next flush round to write

		compact compactState // see compactrun.go

		epochs epochCache // leader epochs (KIP-101); see epochcache.go
		// hwCap bounds the high watermark from outside: a replicated
		// partition's leader sets it to what its in-sync followers hold,
		// a follower to its leader's high watermark. math.MaxInt64 (one
		// node) leaves the high watermark at the durable end, as before.
		hwCap int64
		// durCh is closed when the durable end (DurableEnd) advances: a
		// leader's parked follower fetches wait on it, not on the high
		// watermark, which only their fetches move.
		durCh chan struct{}
	}
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// HighWatermark is the offset below which records are visible to readers.
func (l *Log) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.hw.offset
}

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.leo
}

// LogStartOffset is the first offset that can be read.
func (l *Log) LogStartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.logStart
}

// Size is the number of bytes of all segments' log files.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sizeLocked()
}

func (l *Log) sizeLocked() int64 {
	var n int64
	for _, s := range l.mu.segs {
		n += s.size
	}
	return n
}

// Err returns why the log refuses appends for good (ErrLogFailed after a
// failed fsync, ErrClosed), or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	return l.mu.failed
}

// Wait returns a channel that is closed the next time the high watermark
// advances, or when the log closes or fails (see Err). To not miss an advance, call Wait before
// checking the high watermark (or reading), then wait on the channel.
func (l *Log) Wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return closedCh
	}
	if l.mu.hwCh == nil {
		l.mu.hwCh = make(chan struct{})
	}
	return l.mu.hwCh
}

// SetConfig applies a topic config change at once. An invalid config is
// logged and ignored (the caller validates with Config.Validate first).
func (l *Log) SetConfig(cfg Config) {
	if err := cfg.Validate(); err != nil {
		l.logger.Warn().Err(err).Msg("storage: ignoring invalid log config")
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.mu.cfg
	l.mu.cfg = cfg
	if l.mu.closed {
		return
	}
	switch {
	case old.Durable && !cfg.Durable:
		// Page-cache mode: everything written is visible.
		l.advanceHWLocked(l.endPosLocked(), l.mu.maxTs, l.mu.maxTsOffset)
	case !old.Durable && cfg.Durable && l.mu.flushed.offset < l.mu.leo:
		l.flushSoonLocked(l.mu.leo)
	}
	if l.mu.flushTimer != nil && old.FlushMs != cfg.FlushMs {
		l.mu.flushTimer.Stop()
		l.mu.flushTimer = nil
	}
	if !cfg.Durable && l.mu.flushed.offset < l.mu.leo {
		l.armFlushTimerLocked()
	}
}

// AppendOptions control one Append.
type AppendOptions struct {
	LogAppendTime int64 // if > 0, every batch is rewritten as LogAppendTime with this timestamp (protocol.SetLogAppendTime)
	LeaderEpoch   int32 // written into each batch's partition leader epoch
	Sync          bool  // return only once the appended data is durable (acks=1/all); ignored when !Durable
	// Validated says the caller already ran protocol.ValidateBatch on every
	// batch (the produce path does, to answer with Kafka's error codes), so
	// Append skips the second CRC pass and only parses the headers.
	Validated bool
	// Guard is the verification guard of a client's transactional produce
	// (StartVerification); the zero value skips the check.
	Guard VerificationGuard
	// replicated: a leader's batches copied by a follower (AppendReplicated),
	// whose leader epoch stays and whose record count may be below the
	// offset delta (a compacted leader's batches).
	replicated bool
}

// AppendResult describes where an Append put the records.
type AppendResult struct {
	BaseOffset     int64 // offset assigned to the first record
	LastOffset     int64
	LogStartOffset int64
	// Duplicate is set when the (single) batch repeats one of its
	// producer's last five batches: nothing was written, and BaseOffset and
	// LastOffset are where the original went.
	Duplicate bool
}

// appendInfo is what Append learns about records before taking the lock.
type appendInfo struct {
	offsets int64 // offsets the records consume
	msgs    int64 // records, for flush.messages
	maxTs   int64 // largest batch MaxTimestamp, for segment.ms
}

// Append validates every batch in records (one or more concatenated magic-2
// batches, as in a produce request's partition payload) with
// protocol.ValidateBatch before writing anything (all or nothing), assigns
// offsets (rewriting base offsets in place: Append owns records), writes them
// to the active segment, maintains the indexes, rolls segments by size/age,
// and in Durable mode either waits (Sync) for a group-commit fsync or makes
// sure a flush happens promptly without the caller waiting (so acks=0 data
// becomes visible soon). Errors wrap protocol.ErrBatch* (the server maps them
// to CORRUPT_MESSAGE), ErrClosed or ErrLogFailed.
//
// Beyond ValidateBatch, Append checks what Kafka checks of a client's v2
// batch header: the record count is positive and matches the offset delta.
// It also checks producer ids, epochs and sequences against the producer
// state under the same lock as the write (see producerstate.go): errors
// wrap ErrOutOfOrderSequence or ErrInvalidProducerEpoch, and a retried
// batch is not written again but answered with AppendResult.Duplicate.
func (l *Log) Append(records []byte, opts AppendOptions) (AppendResult, error) {
	info, err := prepareBatches(records, opts)
	if err != nil {
		return AppendResult{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	res, err := l.appendLocked(records, info, opts.Guard)
	if err != nil {
		return res, err
	}
	cfg := l.mu.cfg
	switch {
	case cfg.Durable && opts.Sync:
		err = l.syncLocked(res.LastOffset + 1)
	case cfg.Durable:
		l.flushSoonLocked(res.LastOffset + 1)
	default:
		l.advanceHWLocked(l.endPosLocked(), l.mu.maxTs, l.mu.maxTsOffset)
		l.wakeDurableLocked()
		if n, ok := cfg.flushMessages(); ok && l.mu.appendedMsgs-l.mu.flushedMsgs >= n {
			// Kafka flushes in the append path, so the producer's ack
			// follows the fsync.
			err = l.syncLocked(res.LastOffset + 1)
		} else {
			l.armFlushTimerLocked()
		}
	}
	return res, err
}

// prepareBatches validates records and rewrites the header fields the broker
// owns, all outside the log's lock.
func prepareBatches(records []byte, opts AppendOptions) (appendInfo, error) {
	info := appendInfo{maxTs: -1}
	if len(records) == 0 {
		return info, fmt.Errorf("storage: append of no batches: %w", protocol.ErrBatchTruncated)
	}
	if len(records) > math.MaxInt32 {
		return info, fmt.Errorf("storage: append of %d bytes: %w", len(records), protocol.ErrBatchLength)
	}
	check := protocol.ValidateBatch
	if opts.Validated {
		check = parseWholeBatch
	}
	for p := 0; p < len(records); {
		h, err := check(records[p:])
		if err != nil {
			return info, fmt.Errorf("storage: batch at byte %d: %w", p, err)
		}
		if !opts.replicated && (h.NumRecords <= 0 || int64(h.NumRecords) != int64(h.LastOffsetDelta)+1) {
			return info, fmt.Errorf("storage: batch at byte %d has %d records for last offset delta %d: %w",
				p, h.NumRecords, h.LastOffsetDelta, protocol.ErrBatchOffsetDelta)
		}
		info.offsets += int64(h.LastOffsetDelta) + 1
		info.msgs += int64(h.NumRecords)
		p += h.Size()
	}
	if !opts.replicated && info.offsets > maxRelOffset {
		return info, fmt.Errorf("storage: append of %d offsets: %w", info.offsets, protocol.ErrBatchOffsetDelta)
	}
	for p := 0; p < len(records); {
		size := batchSize(records[p:])
		b := records[p : p+size]
		if !opts.replicated {
			protocol.SetPartitionLeaderEpoch(b, opts.LeaderEpoch)
		}
		if opts.LogAppendTime > 0 {
			protocol.SetLogAppendTime(b, opts.LogAppendTime)
		}
		info.maxTs = max(info.maxTs, batchMaxTimestamp(b))
		p += size
	}
	return info, nil
}

// Header field readers for batches that were already validated.
// parseWholeBatch is ValidateBatch without the CRC: the header parses and
// the batch fits in b. Offsets and sizes are still checked here because
// everything after relies on them.
func parseWholeBatch(b []byte) (protocol.BatchHeader, error) {
	h, err := protocol.ParseBatchHeader(b)
	if err == nil && h.Size() > len(b) {
		err = protocol.ErrBatchTruncated
	}
	return h, err
}

func batchSize(b []byte) int              { return int(int32(binary.BigEndian.Uint32(b[8:]))) + 12 }
func batchLastOffsetDelta(b []byte) int32 { return int32(binary.BigEndian.Uint32(b[23:])) }
func batchMaxTimestamp(b []byte) int64    { return int64(binary.BigEndian.Uint64(b[35:])) }

func (l *Log) appendLocked(records []byte, info appendInfo, guard VerificationGuard) (AppendResult, error) {
	if l.mu.closed {
		return AppendResult{}, ErrClosed
	}
	if l.mu.failed != nil {
		return AppendResult{}, l.mu.failed
	}
	dup, isDup, err := l.checkProducersLocked(records, guard)
	if err != nil {
		return AppendResult{}, err
	}
	if isDup {
		return AppendResult{BaseOffset: dup.firstOffset, LastOffset: dup.lastOffset(), LogStartOffset: l.mu.logStart, Duplicate: true}, nil
	}
	return l.writeLocked(records, info, true)
}

// writeLocked writes checked batches at the log end: with assign, at
// offsets from the log end on (rewriting their base offsets); without, at
// the offsets they carry (a follower's copy of its leader's batches, which
// the caller checked to start at or after the log end and ascend).
func (l *Log) writeLocked(records []byte, info appendInfo, assign bool) (AppendResult, error) {
	now := time.Now().UnixMilli()
	seg := l.activeLocked()
	if l.shouldRollLocked(seg, int64(len(records)), info, now) {
		if err := l.rollLocked(now); err != nil {
			return AppendResult{}, l.writeFailedLocked(err)
		}
		seg = l.activeLocked()
	}
	base := l.mu.leo
	off := base
	for p := 0; p < len(records); {
		b := records[p:]
		if assign {
			protocol.SetBaseOffset(b, off)
		} else {
			off = int64(binary.BigEndian.Uint64(b))
			if p == 0 {
				base = off
			}
		}
		l.mu.epochs.assign(int32(binary.BigEndian.Uint32(b[12:])), off)
		off += int64(batchLastOffsetDelta(b)) + 1
		p += batchSize(b)
	}
	pos := seg.size
	// The active segment holds the log's pin: seg.f stays open.
	if _, err := seg.f.WriteAt(records, pos); err != nil {
		err = fmt.Errorf("storage: write %s: %w", seg.f.Name(), err)
		// Nothing is published, and the part of the batch that reached
		// the file is cut off again: a clean stop trusts the sizes of
		// rolled segments, so a half batch must never stay behind.
		if terr := seg.f.Truncate(pos); terr != nil {
			l.mu.failed = fmt.Errorf("%w: %w (and cutting it off: %w)", ErrLogFailed, err, terr)
			l.logger.Error().Err(l.mu.failed).Str("dir", l.dir).
				Msg("storage: partition offline for writes until the broker restarts")
			return AppendResult{}, l.mu.failed
		}
		return AppendResult{}, l.writeFailedLocked(err)
	}
	if l.mu.writeErr != nil {
		l.mu.writeErr = nil
		l.logger.Warn().Str("dir", l.dir).Msg("storage: partition writable again")
	}
	interval := l.mu.cfg.IndexIntervalBytes
	for p := 0; p < len(records); {
		b := records[p:]
		size := batchSize(b)
		last := int64(binary.BigEndian.Uint64(b)) + int64(batchLastOffsetDelta(b))
		seg.indexBatch(pos+int64(p), size, last, batchMaxTimestamp(b), interval)
		p += size
	}
	seg.size += int64(len(records))
	seg.next = off
	l.updateProducersLocked(records)
	seg.modified = now
	l.mu.leo = off
	l.mu.appendedMsgs += info.msgs
	if seg.maxTs > l.mu.maxTs {
		l.mu.maxTs, l.mu.maxTsOffset = seg.maxTs, seg.maxTsOffset
	}
	return AppendResult{BaseOffset: base, LastOffset: off - 1, LogStartOffset: l.mu.logStart}, nil
}

// writeFailedLocked takes the log offline for writes after a failed write
// (logged once, not per append) and returns the error for the appender.
// Every later append tries again and brings it back online if it succeeds.
func (l *Log) writeFailedLocked(err error) error {
	if l.mu.writeErr == nil {
		l.logger.Error().Err(err).Str("dir", l.dir).
			Msg("storage: partition offline for writes (appends fail with KAFKA_STORAGE_ERROR) until a write succeeds again")
	}
	l.mu.writeErr = err
	return fmt.Errorf("%w: %w", ErrWriteFailed, err)
}

func (l *Log) activeLocked() *segment { return l.mu.segs[len(l.mu.segs)-1] }

// endPosLocked is the log end as a position.
func (l *Log) endPosLocked() logPos {
	s := l.activeLocked()
	return logPos{offset: l.mu.leo, seg: s, pos: s.size}
}

// shouldRollLocked follows Kafka's LogSegment.shouldRoll for an append of n
// bytes: a non-empty segment rolls when the append would overflow
// segment.bytes or the index's 4-byte relative offsets, or when segment.ms
// has passed since its first batch's timestamp (or, without timestamps,
// since it was created).
func (l *Log) shouldRollLocked(seg *segment, n int64, info appendInfo, now int64) bool {
	if seg.size == 0 {
		return false // a segment always accepts at least one append
	}
	cfg := l.mu.cfg
	if seg.size+n > cfg.SegmentBytes || l.mu.leo+info.offsets-1-seg.base > maxRelOffset {
		return true
	}
	waited := now - seg.created
	if seg.firstTs >= 0 {
		waited = info.maxTs - seg.firstTs
	}
	return waited > cfg.SegmentMs
}

// rollLocked starts a new active segment at the log end offset and arranges
// for the old one to be fsynced and its indexes written soon, as Kafka
// schedules a flush on roll.
func (l *Log) rollLocked(now int64) error {
	old := l.activeLocked()
	s, err := l.createSegment(l.mu.leo, now)
	if err != nil {
		return err
	}
	old.maybeAppendTimeEntry()
	old.rolled = true
	l.mu.segs = append(l.mu.segs, s)
	l.mu.dirDirty = true
	// A producer state snapshot at each roll bounds what an open after a
	// crash must scan to the active segment (Kafka snapshots on roll too).
	// It is encoded here, under the lock, and written by the flush round
	// the roll starts, outside it, as Kafka defers the snapshot's fsync to
	// its flush task.
	l.mu.pendingSnapshot = l.producerSnapshotLocked()
	l.flushSoonLocked(l.mu.leo)
	return nil
}

// advanceHWLocked moves the high watermark forward to p and wakes Wait()ers.
func (l *Log) advanceHWLocked(p logPos, maxTs, maxTsOffset int64) {
	if p.offset > l.mu.hwCap {
		// Replicated: not past what the in-sync replicas hold.
		p = l.posForOffsetLocked(l.mu.hwCap)
		if maxTsOffset >= p.offset {
			maxTs, maxTsOffset = -1, -1
		}
	}
	if p.offset <= l.mu.hw.offset {
		return
	}
	l.mu.hw = p
	if maxTs > l.mu.hwMaxTs {
		l.mu.hwMaxTs, l.mu.hwMaxTsOffset = maxTs, maxTsOffset
	}
	if l.mu.hwCh != nil {
		close(l.mu.hwCh)
		l.mu.hwCh = nil
	}
}

// recomputeMaxLocked rebuilds the timestamp maxima after segments were
// deleted. A maximum in data not yet below the high watermark is left out
// of the high-watermark maximum until the next flush covers it.
func (l *Log) recomputeMaxLocked() {
	l.mu.maxTs, l.mu.maxTsOffset = -1, -1
	l.mu.hwMaxTs, l.mu.hwMaxTsOffset = -1, -1
	for _, s := range l.mu.segs {
		if s.maxTs > l.mu.maxTs {
			l.mu.maxTs, l.mu.maxTsOffset = s.maxTs, s.maxTsOffset
		}
		if s.maxTs > l.mu.hwMaxTs && s.maxTsOffset < l.mu.hw.offset {
			l.mu.hwMaxTs, l.mu.hwMaxTsOffset = s.maxTs, s.maxTsOffset
		}
	}
}

// findSegment returns the index of the last segment whose base is <= offset.
func findSegment(segs []*segment, offset int64) int {
	lo, hi := 0, len(segs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if segs[m].base <= offset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return max(lo-1, 0)
}
