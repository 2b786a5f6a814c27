package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/skiffmq/skiff/protocol"
)

// ErrReplicaOffset is returned by AppendReplicated for batches that do not
// continue the log: a base offset below the log end or not ascending.
var ErrReplicaOffset = errors.New("storage: replicated batch does not continue the log")

// ErrTruncated is returned to an appender waiting for an fsync of records
// that a truncation (TruncateTo) removed meanwhile: they are not durable
// and must not be acknowledged.
var ErrTruncated = errors.New("storage: appended records were truncated")

// AppendReplicated appends batches a follower fetched from its leader as
// they are: offsets, partition leader epochs and producer fields are the
// leader's. Every batch is validated (CRC included) and must start at or
// after the log end, in ascending order; a compacted leader's batches may
// leave gaps. The producer state and the leader-epoch cache follow the
// batches. It never waits for an fsync: the follower calls Flush before it
// asks its leader for more, so what it acknowledges is on its disk.
func (l *Log) AppendReplicated(records []byte) (AppendResult, error) {
	info, err := prepareBatches(records, AppendOptions{replicated: true})
	if err != nil {
		return AppendResult{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return AppendResult{}, ErrClosed
	}
	if l.mu.failed != nil {
		return AppendResult{}, l.mu.failed
	}
	next := l.mu.leo
	var last int64
	for p := 0; p < len(records); {
		b := records[p:]
		base := int64(binary.BigEndian.Uint64(b))
		if base < next {
			return AppendResult{}, fmt.Errorf("%w: batch at offset %d, log end %d", ErrReplicaOffset, base, next)
		}
		last = base + int64(batchLastOffsetDelta(b))
		next = last + 1
		p += batchSize(b)
	}
	info.offsets = last + 1 - l.mu.leo
	if base0 := int64(binary.BigEndian.Uint64(records)); l.mu.leo < base0 && l.activeLocked().size == 0 {
		// Nothing in the active segment: let it begin where the batches
		// do, so that relative offsets stay small.
		info.offsets = last + 1 - base0
	}
	res, err := l.writeLocked(records, info, false)
	if err != nil {
		return res, err
	}
	if !l.mu.cfg.Durable {
		l.advanceHWLocked(l.endPosLocked(), l.mu.maxTs, l.mu.maxTsOffset)
		l.wakeDurableLocked()
		l.armFlushTimerLocked()
	}
	return res, nil
}

// WaitDurable returns a channel closed the next time the durable end
// advances (or the log closes or fails). Call it before checking, as with
// Wait.
func (l *Log) WaitDurable() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return closedCh
	}
	if l.mu.durCh == nil {
		l.mu.durCh = make(chan struct{})
	}
	return l.mu.durCh
}

// WakeWaiters wakes everyone waiting on Wait or WaitDurable without
// anything having moved, so that they look again: a leader that lost its
// leadership answers the produce requests waiting for its high watermark.
func (l *Log) WakeWaiters() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.hwCh != nil {
		close(l.mu.hwCh)
		l.mu.hwCh = nil
	}
	l.wakeDurableLocked()
}

func (l *Log) wakeDurableLocked() {
	if l.mu.durCh != nil {
		close(l.mu.durCh)
		l.mu.durCh = nil
	}
}

// Flush returns once everything below target (at most the log end) is on
// stable storage, joining or running a group-commit round. In page-cache
// mode (not Durable) it returns at once, as Kafka's followers do not
// fsync either.
func (l *Log) Flush(target int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	if !l.mu.cfg.Durable {
		return nil
	}
	return l.syncLocked(min(target, l.mu.leo))
}

// DurableEnd is the offset below which this replica's data counts as held:
// the flushed end in Durable mode, the log end otherwise. A leader counts
// itself in-sync up to here.
func (l *Log) DurableEnd() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durableEndLocked().offset
}

func (l *Log) durableEndLocked() logPos {
	if l.mu.cfg.Durable {
		return l.mu.flushed
	}
	return l.endPosLocked()
}

// SetHighWatermarkCap bounds the high watermark by limit (a leader: the
// smallest offset its in-sync followers hold; a follower: its leader's
// high watermark) and moves it there if the log holds that much durably.
// With lower a follower also moves it down, to its leader's. A leader's
// high watermark never goes down. math.MaxInt64 lifts the bound.
func (l *Log) SetHighWatermarkCap(limit int64, lower bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return
	}
	l.mu.hwCap = max(limit, 0)
	end := l.durableEndLocked()
	if lower && l.mu.hw.offset > min(limit, end.offset) {
		l.mu.hw = l.posForOffsetLocked(min(limit, end.offset))
		l.recomputeMaxLocked()
	}
	l.advanceHWLocked(end, l.mu.maxTs, l.mu.maxTsOffset)
}

// posForOffsetLocked is the position of the batch boundary at or below
// offset (offset is clamped to the log end): readers below it see whole
// batches only. It may read batch headers (from the page cache, through the
// sparse index) under the lock.
func (l *Log) posForOffsetLocked(offset int64) logPos {
	if offset >= l.mu.leo {
		return l.endPosLocked()
	}
	segs := l.mu.segs
	s := segs[findSegment(segs, offset)]
	if offset <= s.base {
		return logPos{offset: s.base, seg: s, pos: 0}
	}
	idx := s.offIdx
	if s.lazy != nil {
		idx, _ = s.lazy.entries(&l.logger)
	}
	start := lookupOffset(idx, uint32(min(offset-1-s.base, maxRelOffset)))
	f, done, err := l.headerFileLocked(s)
	if err != nil {
		return logPos{offset: s.base, seg: s, pos: 0}
	}
	defer done()
	sc := newHeaderScanner(f, s.size)
	defer sc.free()
	pos, h, found, err := sc.find(start, func(h protocol.BatchHeader) bool { return h.LastOffset() >= offset })
	if err != nil {
		// Headers below the log end were validated; fall back to the
		// segment start rather than expose a partial batch.
		return logPos{offset: s.base, seg: s, pos: 0}
	}
	if !found {
		return logPos{offset: s.next, seg: s, pos: s.size}
	}
	if h.BaseOffset < offset {
		return logPos{offset: h.BaseOffset, seg: s, pos: pos} // inside a batch: round down
	}
	return logPos{offset: offset, seg: s, pos: pos}
}

// ReadFileReplica is ReadFile for a follower: it reads up to the leader's
// durable end instead of the high watermark, since followers must hold
// records before the high watermark can pass them. A follower never gets
// what its leader could still lose in a crash.
func (l *Log) ReadFileReplica(offset int64, maxBytes int) (FileRead, error) {
	res, parts, err := l.captureTo(offset, maxBytes, true, true)
	fr := FileRead{HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset}
	if err != nil || len(parts) == 0 {
		return fr, err
	}
	fr.parts = parts
	if err := openParts(parts); err != nil {
		fr.Release()
		return FileRead{HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset}, err
	}
	if err := l.fillFileRead(&fr, parts, offset, int64(maxBytes), true, math.MaxInt64); err != nil {
		fr.Release()
		return FileRead{HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset}, err
	}
	return fr, nil
}

// TruncateTo cuts the log back to offset: the batches whose last offset
// is at or past it go (a batch straddling it goes whole, so the log end
// may end up below offset), with the index entries, leader epochs and
// producer state that describe them. A follower truncates so, to where its
// leader's log diverges (KIP-101/320). Segments entirely past offset are
// deleted; the one holding it is cut with ftruncate and becomes active
// again. Readers never see the cut bytes: nothing above the high
// watermark is served to consumers, and the high watermark moves down
// with the log end. It returns the new log end.
func (l *Log) TruncateTo(offset int64) (int64, error) {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if l.mu.failed != nil {
		err := l.mu.failed
		l.mu.Unlock()
		return 0, err
	}
	if offset >= l.mu.leo {
		leo := l.mu.leo
		l.mu.Unlock()
		return leo, nil
	}
	offset = max(offset, l.mu.logStart)
	// Wait out a flush round: it holds positions in the segments.
	for l.mu.flushing {
		done := l.mu.flushDone
		l.mu.Unlock()
		<-done
		l.mu.Lock()
	}
	segs := l.mu.segs
	i := findSegment(segs, offset)
	for _, s := range segs[i:] {
		if s.compacting {
			l.mu.Unlock()
			return 0, fmt.Errorf("storage: truncate to %d: a segment is being compacted", offset)
		}
	}
	var replaced *segment
	if !segs[i].logPin {
		// A sealed segment's file is shared with the budget (read-only,
		// closed while idle); the cut one becomes active and is written
		// again, so it continues as a new segment value on a descriptor
		// of its own, as the active segment holds.
		ns, err := l.reopenActiveLocked(segs[i])
		if err != nil {
			err = l.writeFailedLocked(err)
			l.mu.Unlock()
			return 0, err
		}
		replaced = segs[i]
		segs = append(segs[:i:i], append([]*segment{ns}, segs[i+1:]...)...)
		l.mu.segs = segs
		for _, p := range []*logPos{&l.mu.hw, &l.mu.flushed} {
			if p.seg == replaced {
				p.seg = ns
			}
		}
	}
	cut := l.posForOffsetLocked(offset) // in segs[i]: both use findSegment
	s := segs[i]
	victims := append([]*segment(nil), segs[i+1:]...)
	if err := s.f.Truncate(cut.pos); err != nil {
		err = l.writeFailedLocked(fmt.Errorf("storage: truncate %s: %w", s.f.Name(), err))
		l.mu.Unlock()
		return 0, err
	}
	if s.lazy != nil {
		s.offIdx, s.timeIdx = s.lazy.entries(&l.logger)
		s.lazy = nil
	}
	s.size, s.next = cut.pos, cut.offset
	s.offIdx = keepIndexBelow(s.offIdx, cut.pos)
	for len(s.timeIdx) > 0 && s.base+int64(s.timeIdx[len(s.timeIdx)-1].rel) >= cut.offset {
		s.timeIdx = s.timeIdx[:len(s.timeIdx)-1]
	}
	s.rescanTimestamps()
	s.rolled, s.indexSaved = false, false
	s.synced = min(s.synced, cut.pos)
	s.sinceIndex = 0
	l.mu.segs = append(segs[:i:i], s)
	for _, v := range victims {
		v.deleted.Store(true)
	}
	l.mu.leo = cut.offset
	if l.mu.hw.offset > cut.offset || l.mu.hw.seg != nil && l.mu.hw.seg.deleted.Load() {
		l.mu.hw = cut
	}
	if l.mu.flushed.offset > cut.offset || l.mu.flushed.seg != nil && l.mu.flushed.seg.deleted.Load() {
		l.mu.flushed = cut
	}
	l.mu.flushWanted = min(l.mu.flushWanted, cut.offset)
	l.wakeDurableLocked()
	l.mu.dirDirty = true
	l.recomputeMaxLocked()
	l.mu.epochs.truncateFrom(cut.offset)
	// The producer state is rebuilt from the remaining batches (Kafka
	// reloads it from a snapshot at or below the cut); a snapshot encoded
	// before the cut must not be written.
	l.mu.pendingSnapshot = nil
	l.mu.producers.init()
	l.mu.producers.aborted = nil
	err := l.scanProducersLocked(l.mu.logStart)
	epochs := l.pendingEpochsLocked()
	leo := l.mu.leo
	s.acquire()
	l.mu.Unlock()

	// The cut must be on disk before the epoch checkpoint that no longer
	// names the cut epochs: a crash must not bring back batches whose
	// epochs the cache has forgotten (found by TestEpochCacheCrashSimulation).
	if serr := s.f.Datasync(); serr != nil {
		err = fmt.Errorf("storage: fsync after truncating %s: %w", s.f.Name(), serr)
	}
	s.release()
	if replaced != nil {
		replaced.release() // the log's reference; readers may hold others
	}
	if rerr := removeSegments(victims); err == nil {
		err = rerr
	}
	if serr := syncDirectory(l.fs, l.dir); serr != nil && err == nil {
		err = serr
	}
	for _, v := range victims {
		v.release()
	}
	// The snapshot on disk may describe offsets past the cut, which a
	// later log end could make look valid: remove it (the next roll or
	// Close writes a new one).
	if rerr := l.fs.Remove(filepath.Join(l.dir, producerSnapshotFile)); rerr != nil && !isNotExist(rerr) && err == nil {
		err = fmt.Errorf("storage: %w", rerr)
	}
	if epochs != nil {
		if werr := l.writeEpochCheckpoint(epochs); werr != nil && err == nil {
			err = werr
		}
	}
	if serr := syncDirectory(l.fs, l.dir); serr != nil && err == nil {
		err = serr
	}
	if l.store != nil {
		// Now, not soon: until the recovery point on disk is below the
		// cut, a crash would skip validating (and rescanning the epochs
		// of) whatever is written at the cut next.
		if cerr := l.store.CheckpointRecoveryPoints(); cerr != nil && err == nil {
			err = cerr
		}
	}
	l.logger.Info().Str("dir", l.dir).Int64("offset", offset).Int64("log_end_offset", leo).Msg("storage: truncated")
	return leo, err
}

// keepIndexBelow drops the offset index entries of batches at or past pos.
func keepIndexBelow(idx []offsetEntry, pos int64) []offsetEntry {
	n := len(idx)
	for n > 0 && int64(idx[n-1].pos) >= pos {
		n--
	}
	return idx[:n:n]
}

// reopenActiveLocked returns a segment value for sealed segment s that
// can become the active one again: the same file and indexes, opened for
// writing and held by the log's pin. Opening a file under Log.mu is what a
// roll does too; a follower truncates into a sealed segment rarely.
func (l *Log) reopenActiveLocked(s *segment) (*segment, error) {
	f, err := l.fs.OpenFile(s.path+logExt, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("storage: reopening %s to truncate it: %w", s.path+logExt, err)
	}
	ns := l.newSegment(s.base, f, s.created)
	ns.offIdx, ns.timeIdx = s.offIdx, s.timeIdx
	if s.lazy != nil {
		ns.offIdx, ns.timeIdx = s.lazy.entries(&l.logger)
	}
	ns.size, ns.next, ns.synced = s.size, s.next, s.synced
	ns.maxTs, ns.maxTsOffset, ns.firstTs = s.maxTs, s.maxTsOffset, s.firstTs
	ns.modified, ns.indexSaved, ns.rolled = s.modified, s.indexSaved, s.rolled
	return ns, nil
}

// headerFileLocked returns a file to read s's batch headers from under
// Log.mu, and what to call when done. The log's pin keeps the active
// segment's file open and constant; a sealed segment's may be closed by
// the file budget at any time (under its fmu, which is never taken under
// Log.mu), so a private read-only descriptor is opened for it. That is
// rare: a truncation, a high watermark or an epoch rebuild reaching below
// the active segment.
func (l *Log) headerFileLocked(s *segment) (File, func(), error) {
	if s.logPin {
		return s.f, func() {}, nil
	}
	f, err := l.fs.OpenFile(s.path+logExt, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: %w", err)
	}
	return f, func() { _ = f.Close() }, nil
}

// rescanTimestamps recomputes the timestamp fields of a segment that was
// cut, from its remaining batch headers. The segment holds the log's pin.
func (s *segment) rescanTimestamps() {
	s.maxTs, s.maxTsOffset, s.firstTs = -1, -1, -1
	sc := newHeaderScanner(s.f, s.size)
	defer sc.free()
	for pos := int64(0); ; {
		h, ok, err := sc.header(pos)
		if err != nil || !ok {
			break
		}
		if s.firstTs < 0 {
			s.firstTs = h.MaxTimestamp
		}
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.LastOffset()
		}
		pos += int64(h.Size())
	}
	s.modified = time.Now().UnixMilli()
}

// ResetTo empties the log and starts it again at offset, which becomes its
// log start and end (Kafka's truncateFullyAndStartAt): a follower whose log
// ends before its leader's log start (retention or DeleteRecords removed
// what it lacks) copies the leader from there. Every segment, the leader
// epochs and the producer state go.
func (l *Log) ResetTo(offset int64) error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.mu.failed != nil {
		err := l.mu.failed
		l.mu.Unlock()
		return err
	}
	for l.mu.flushing {
		done := l.mu.flushDone
		l.mu.Unlock()
		<-done
		l.mu.Lock()
	}
	for _, s := range l.mu.segs {
		if s.compacting || s.base >= offset {
			l.mu.Unlock()
			return fmt.Errorf("storage: reset to %d: segment %d is being compacted or not below it", offset, s.base)
		}
	}
	s, err := l.createSegment(offset, time.Now().UnixMilli())
	if err != nil {
		err = l.writeFailedLocked(err)
		l.mu.Unlock()
		return err
	}
	victims := l.mu.segs
	for _, v := range victims {
		v.deleted.Store(true)
	}
	l.mu.segs = []*segment{s}
	l.mu.leo, l.mu.logStart = offset, offset
	end := l.endPosLocked()
	l.mu.hw, l.mu.flushed, l.mu.flushWanted = end, end, offset
	l.mu.dirDirty = true
	l.recomputeMaxLocked()
	l.mu.epochs.entries, l.mu.epochs.dirty = nil, true
	l.mu.pendingSnapshot = nil
	l.mu.producers.init()
	l.mu.producers.aborted = nil
	l.wakeDurableLocked()
	epochs := l.pendingEpochsLocked()
	l.mu.Unlock()

	err = removeSegments(victims)
	for _, v := range victims {
		v.release()
	}
	// The old segments' removal is durable before the checkpoints say the
	// log starts over, as in TruncateTo.
	if serr := syncDirectory(l.fs, l.dir); serr != nil && err == nil {
		err = serr
	}
	if rerr := l.fs.Remove(filepath.Join(l.dir, producerSnapshotFile)); rerr != nil && !isNotExist(rerr) && err == nil {
		err = fmt.Errorf("storage: %w", rerr)
	}
	if werr := l.writeEpochCheckpoint(epochs); werr != nil && err == nil {
		err = werr
	}
	if cerr := l.checkpointLogStart(); cerr != nil && err == nil {
		err = cerr
	}
	if serr := syncDirectory(l.fs, l.dir); serr != nil && err == nil {
		err = serr
	}
	if l.store != nil {
		l.store.requestCheckpoint()
	}
	l.logger.Info().Str("dir", l.dir).Int64("offset", offset).Msg("storage: emptied and restarted at the leader's log start")
	return err
}
