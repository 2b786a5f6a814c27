package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/skiffmq/skiff/protocol"
)

// compactState is a log's cleaner bookkeeping, guarded by Log.mu.
type compactState struct {
	firstDirty int64 // the cleaner has compacted everything below against itself
	horizon    int64 // earliest delete horizon the last cleaning left, 0 if none
	running    bool  // a cleaning is under way
}

// CompactStats describes one cleaning.
type CompactStats struct {
	Cleaned      bool    // false: the log was not due
	DirtyRatio   float64 // dirty bytes / cleanable bytes before the cleaning
	FirstDirty   int64   // first dirty offset before the cleaning
	MapEnd       int64   // first offset the dedupe map did not reach: the next first dirty offset
	Keys         int     // keys in the dedupe map
	SegmentsIn   int
	SegmentsOut  int
	BytesRead    int64
	BytesWritten int64
	RecordsRead  int64
	RecordsKept  int64
}

// cleanable is what a cleaning of the log would work on.
type cleanable struct {
	segs       []*segment // from the first segment past the log start to the last cleanable one
	ends       []int64    // each one's end offset (the next segment's base)
	firstDirty int64
	clean      int64 // bytes below firstDirty
	dirty      int64 // bytes from firstDirty on
	must       bool  // max.compaction.lag.ms or a delete horizon passed
}

func (c *cleanable) ratio() float64 {
	if c.clean+c.dirty == 0 {
		return 0
	}
	return float64(c.dirty) / float64(c.clean+c.dirty)
}

// due is Kafka's LogCleanerManager rule: dirty enough, or overdue.
func (c *cleanable) due(minRatio float64) bool {
	return len(c.segs) > 0 && ((c.dirty > 0 && c.ratio() > minRatio) || c.must)
}

// cleanableLocked works out the cleanable range at nowMs, as Kafka's
// cleanableOffsets does: it ends before the active segment, before the last
// stable offset (an open transaction's data is not decided yet) and before
// the first segment with a record newer than min.compaction.lag.ms.
func (l *Log) cleanableLocked(nowMs int64) (cleanable, bool) {
	var c cleanable
	cfg := l.mu.cfg
	segs := l.mu.segs
	if !cfg.Compact || l.mu.closed || l.mu.failed != nil || l.mu.compact.running || len(segs) < 2 {
		return c, false
	}
	limit := l.mu.producers.firstUnstable(l.mu.hw.offset)
	n := 0
	for ; n < len(segs)-1; n++ {
		s := segs[n]
		if segs[n+1].base > limit || !s.indexSaved || s.synced < s.size {
			break // not decided, or the flusher still owes its fsync or indexes
		}
		if ts := segmentTimestamp(s); cfg.MinCompactionLagMs > 0 && ts > nowMs-cfg.MinCompactionLagMs {
			break
		}
	}
	first := 0
	for first < n && segs[first+1].base <= l.mu.logStart {
		first++ // wholly below the log start: retention's, not ours
	}
	if first == n {
		return c, false
	}
	c.firstDirty = max(l.mu.compact.firstDirty, l.mu.logStart)
	for i := first; i < n; i++ {
		s, end := segs[i], segs[i+1].base
		c.segs = append(c.segs, s)
		c.ends = append(c.ends, end)
		if end <= c.firstDirty {
			c.clean += s.size
			continue
		}
		c.dirty += s.size
		ts := s.firstTs
		if ts < 0 {
			ts = segmentTimestamp(s) // not read at a clean open; later, so never early
		}
		if cfg.MaxCompactionLagMs < math.MaxInt64 && ts >= 0 && nowMs-ts > cfg.MaxCompactionLagMs && s.size > 0 {
			c.must = true
		}
	}
	if h := l.mu.compact.horizon; h > 0 && h <= nowMs {
		c.must = true // tombstones or markers wait to be removed
	}
	return c, true
}

// segmentTimestamp is the segment's largest timestamp, or its last
// modification without timestamps (Kafka's fallback).
func segmentTimestamp(s *segment) int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	return s.modified
}

// DirtyRatio reports the log's cleanable dirty ratio at now, and whether
// the log is due for cleaning (for metrics and the cleaner's choice).
func (l *Log) DirtyRatio(now time.Time) (ratio float64, due bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.cleanableLocked(now.UnixMilli())
	if !ok {
		return 0, false
	}
	return c.ratio(), c.due(l.mu.cfg.MinCleanableDirtyRatio)
}

// Compact cleans the log once if it is due at now, with the store's
// cleaner settings (the defaults outside a store). The store's cleaner
// calls it in the background; tests call it with their own clock.
func (l *Log) Compact(now time.Time) (CompactStats, error) {
	opts := CleanerOptions{}.withDefaults()
	var quit <-chan struct{}
	if l.store != nil {
		opts, quit = l.store.opts.Cleaner, l.store.quit
	}
	return l.compact(now.UnixMilli(), opts.DedupeBufferSize/int64(opts.Threads), newThrottler(0, quit))
}

func (l *Log) compact(nowMs int64, mapBytes int64, th *throttler) (CompactStats, error) {
	var st CompactStats
	l.mu.Lock()
	c, ok := l.cleanableLocked(nowMs)
	if !ok || !c.due(l.mu.cfg.MinCleanableDirtyRatio) {
		l.mu.Unlock()
		return st, nil
	}
	cfg := l.mu.cfg
	l.mu.compact.running = true
	for _, s := range c.segs {
		s.acquire()
		s.compacting = true
	}
	aborted := append([]AbortedTxn(nil), l.mu.producers.aborted...)
	producers := make(map[int64]producerLast, len(l.mu.producers.producers))
	for pid, e := range l.mu.producers.producers {
		p := producerLast{lastData: -1, epoch: e.epoch}
		if e.n > 0 {
			p.lastData = e.last.lastOffset()
		}
		producers[pid] = p
	}
	l.wg.Add(1) // Close waits for the cleaning
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.mu.compact.running = false
		for _, s := range c.segs {
			s.compacting = false
		}
		l.mu.Unlock()
		for _, s := range c.segs {
			if !s.deleted.Load() { // swapIn released the replaced ones
				s.release()
			}
		}
		l.wg.Done()
	}()

	st.Cleaned, st.DirtyRatio, st.FirstDirty = true, c.ratio(), c.firstDirty
	om := newOffsetMap(mapBytes)
	mapEnd, err := l.buildOffsetMap(&c, om, aborted, th, &st)
	if err != nil {
		return st, err
	}
	st.MapEnd, st.Keys = mapEnd, len(om.m)

	f := &batchFilter{om: om, mapEnd: mapEnd, nowMs: nowMs, retention: cfg.DeleteRetentionMs,
		producers: producers, txns: newTxnTracker(aborted), keptAborted: map[int64]bool{}}
	defer f.it.Close()
	n := 0
	for n < len(c.segs) && c.segs[n].base < mapEnd {
		n++
	}
	for _, g := range groupSegments(c.segs[:n], c.ends[:n], cfg.SegmentBytes) {
		if l.isClosed() {
			return st, ErrClosed
		}
		if err := l.cleanGroup(c.segs[g[0]:g[1]], c.ends[g[1]-1], f, cfg, nowMs, th, &st); err != nil {
			return st, err
		}
	}
	st.RecordsRead, st.RecordsKept = f.recordsRead, f.recordsKept
	l.mu.Lock()
	l.mu.compact.firstDirty = max(l.mu.compact.firstDirty, mapEnd)
	l.mu.compact.horizon = f.horizon
	l.mu.Unlock()
	if err := writeFileAtomic(l.fs, filepath.Join(l.dir, cleanerCheckpointFile), []byte(fmt.Sprintf("%d\n", mapEnd)), false); err != nil {
		// Costs only a repeated cleaning.
		l.logger.Warn().Err(err).Str("dir", l.dir).Msg("storage: writing the cleaner checkpoint")
	}
	return st, nil
}

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.closed
}

// buildOffsetMap fills om from the dirty part of c, in offset order, and
// returns the first offset it did not reach: the end of the dirty part, or
// the first batch that no longer fit.
func (l *Log) buildOffsetMap(c *cleanable, om *offsetMap, aborted []AbortedTxn, th *throttler, st *CompactStats) (int64, error) {
	txns := newTxnTracker(aborted)
	var it protocol.RecordIterator
	defer it.Close()
	mapEnd := c.firstDirty
	var pinned *segment // one segment file open at a time
	defer func() {
		if pinned != nil {
			pinned.unpin()
		}
	}()
	for i, s := range c.segs {
		if c.ends[i] <= c.firstDirty {
			continue
		}
		if pinned != nil {
			pinned.unpin()
			pinned = nil
		}
		src, err := s.pin()
		if err != nil {
			return mapEnd, err
		}
		pinned = s
		br := batchReader{r: src, name: src.Name(), limit: s.size}
		for {
			b, _, err := br.next()
			if err != nil {
				return mapEnd, err
			}
			if b == nil {
				break
			}
			if err := th.wait(len(b)); err != nil {
				return mapEnd, err
			}
			st.BytesRead += int64(len(b))
			h, err := protocol.ParseBatchHeader(b)
			if err != nil {
				return mapEnd, fmt.Errorf("%w: %s: %w", errCorruptSegment, src.Name(), err)
			}
			if h.LastOffset() < c.firstDirty {
				continue
			}
			if h.IsControl() {
				txns.onControl(&h, b)
				mapEnd = h.LastOffset() + 1
				continue
			}
			if len(om.m)+int(h.NumRecords) > om.limit {
				if mapEnd == c.firstDirty {
					return mapEnd, errDedupeBufferTooSmall
				}
				return mapEnd, nil // full: the next pass goes on from here
			}
			if txns.onBatch(&h) {
				mapEnd = h.LastOffset() + 1
				continue
			}
			if err := it.Reset(b, protocol.IterFull, 0); err != nil {
				return mapEnd, fmt.Errorf("storage: compact: batch at offset %d: %w", h.BaseOffset, err)
			}
			for it.Next() {
				if r := it.Record(); r.Key != nil {
					om.put(r.Key, h.BaseOffset+int64(r.OffsetDelta))
				}
			}
			if err := it.Err(); err != nil {
				return mapEnd, fmt.Errorf("storage: compact: batch at offset %d: %w", h.BaseOffset, err)
			}
			mapEnd = h.LastOffset() + 1
		}
		mapEnd = c.ends[i] // the whole segment is in, gaps included
	}
	return mapEnd, nil
}

// groupSegments is Kafka's groupSegmentsBySize: consecutive segments whose
// sizes add up to at most maxSize and whose offsets fit a 4-byte relative
// offset of the first. It returns [start, end) index pairs.
func groupSegments(segs []*segment, ends []int64, maxSize int64) [][2]int {
	var groups [][2]int
	for i := 0; i < len(segs); {
		start, size := i, segs[i].size
		i++
		for i < len(segs) && size+segs[i].size <= maxSize &&
			(segs[i].size == 0 || ends[i]-1-segs[start].base <= maxRelOffset) {
			size += segs[i].size
			i++
		}
		groups = append(groups, [2]int{start, i})
	}
	return groups
}

// cleanGroup writes the cleaned form of the segments g (ending at offset
// end) as one segment and swaps it in.
func (l *Log) cleanGroup(g []*segment, end int64, f *batchFilter, cfg Config, nowMs int64, th *throttler, st *CompactStats) error {
	base := g[0].base
	stem := filepath.Join(l.dir, segmentName(base))
	file, err := createCompactFile(l.fs, stem+logExt+cleanedExt)
	if err != nil {
		return err
	}
	out := l.newSegment(base, file, nowMs)
	// swapIn drops the log's pin once the file has its final name, not a
	// flush: until then its path does not lead to it.
	out.logPin = false
	ok := false
	defer func() {
		if !ok {
			_ = file.Close()
			for _, ext := range []string{logExt, indexExt, timeIndexExt} {
				_ = removeCompactFile(l.fs, stem+ext+cleanedExt)
			}
		}
	}()
	w := bufio.NewWriterSize(&fileAppender{f: file}, 256<<10)
	lastKept := int64(-1)
	var last []byte     // the group's last batch, should it have to stay as an empty one
	var pinned *segment // one segment file open at a time
	defer func() {
		if pinned != nil {
			pinned.unpin()
		}
	}()
	for _, s := range g {
		if s.lazy != nil {
			// Read the old index before the cleaned one takes its name: a
			// reader of the old segment must never find the new one's.
			s.lazy.entries(&l.logger)
		}
		if pinned != nil {
			pinned.unpin()
			pinned = nil
		}
		src, err := s.pin()
		if err != nil {
			return err
		}
		pinned = s
		br := batchReader{r: src, name: src.Name(), limit: s.size}
		for {
			b, _, err := br.next()
			if err != nil {
				return err
			}
			if b == nil {
				break
			}
			if err := th.wait(len(b)); err != nil {
				return err
			}
			st.BytesRead += int64(len(b))
			last = append(last[:0], b[:protocol.BatchHeaderSize]...)
			kept, err := f.filter(b)
			if err != nil {
				return err
			}
			if kept == nil {
				continue
			}
			if err := l.writeCleaned(w, out, kept, cfg, th); err != nil {
				return err
			}
			lastKept = batchLastOffset(kept)
		}
	}
	if last != nil && lastKept < batchLastOffset(last) {
		// The cleaned segment ends where the segments it replaces ended,
		// with the last batch emptied if need be: a read or a replay at an
		// offset past its last record then finds that batch instead of
		// nothing, and recovery of a half-done swap knows which segments
		// the cleaned one covers (Kafka's LogLoader deletes those its
		// offsets overlap).
		h, err := protocol.ParseBatchHeader(last)
		if err != nil {
			return fmt.Errorf("%w: %w", errCorruptSegment, err)
		}
		empty, err := f.rebuild(h, nil, false)
		if err != nil {
			return err
		}
		if err := l.writeCleaned(w, out, empty, cfg, th); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("storage: compact: write %s: %w", file.Name(), err)
	}
	if err := file.Datasync(); err != nil {
		return fmt.Errorf("storage: compact: fsync %s: %w", file.Name(), err)
	}
	out.next = end
	out.maybeAppendTimeEntry()
	out.rolled, out.indexSaved, out.synced = true, true, out.size
	if err := writeCompactFile(l.fs, stem+timeIndexExt+cleanedExt, encodeTimeIndex(out.timeIdx)); err != nil {
		return err
	}
	if err := writeCompactFile(l.fs, stem+indexExt+cleanedExt, encodeOffsetIndex(out.offIdx)); err != nil {
		return err
	}
	st.SegmentsIn += len(g)
	st.SegmentsOut++
	st.BytesWritten += out.size
	if err := l.swapIn(g, out, f.keptAborted); err != nil {
		if errors.Is(err, errCompactCrash) {
			ok = true // leave the files as a crash would
			return err
		}
		if errors.Is(err, errSwapAbandoned) {
			return ErrClosed
		}
		return err
	}
	ok = true
	return nil
}

func batchLastOffset(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b)) + int64(batchLastOffsetDelta(b))
}

// writeCleaned appends a kept batch to the cleaned segment and indexes it.
func (l *Log) writeCleaned(w *bufio.Writer, out *segment, b []byte, cfg Config, th *throttler) error {
	if err := th.wait(len(b)); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("storage: compact: write %s: %w", out.f.Name(), err)
	}
	ts := batchMaxTimestamp(b)
	if binary.BigEndian.Uint32(b[57:]) == 0 {
		ts = -1 // see indexTimestamp
	}
	out.indexBatch(out.size, len(b), batchLastOffset(b), ts, cfg.IndexIntervalBytes)
	out.size += int64(len(b))
	return nil
}
