package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// syncLocked returns once everything before offset target is durable. It
// joins the fsync round in progress, if any, and otherwise runs one itself
// (group commit: one round covers every append written before it started, so
// a waiter covered by someone else's round returns without an fsync of its
// own). Called and returns with l.mu held; drops it while waiting.
func (l *Log) syncLocked(target int64) error {
	for {
		if l.mu.flushed.offset >= target {
			return nil
		}
		if target > l.mu.leo {
			// A follower's truncation took what the caller appended.
			return fmt.Errorf("%w: %d past the log end %d", ErrTruncated, target, l.mu.leo)
		}
		if l.mu.failed != nil {
			return l.mu.failed
		}
		if l.mu.flushing {
			done := l.mu.flushDone
			l.mu.Unlock()
			<-done
			l.mu.Lock()
			continue
		}
		l.flushLocked()
	}
}

// flushItem is a segment a flush round must make durable.
type flushItem struct {
	s         *segment
	size      int64
	saveIndex bool
	unpinLog  bool // sealed: drop the log's pin after the round
}

// flushLocked runs one fsync round over everything written so far. The I/O
// happens without l.mu, so appends and reads go on meanwhile. Called and
// returns with l.mu held.
func (l *Log) flushLocked() {
	target := l.endPosLocked()
	var items []flushItem
	// Rounds run one at a time and each covers every dirty segment, so
	// walking back from the active segment can stop at the first clean
	// rolled one.
	for i := len(l.mu.segs) - 1; i >= 0; i-- {
		s := l.mu.segs[i]
		saveIndex := s.rolled && !s.indexSaved
		if s.synced >= s.size && !saveIndex {
			if s.rolled {
				break
			}
			continue
		}
		s.acquire()
		unpin := s.rolled && s.logPin
		if unpin {
			s.logPin = false
		}
		items = append(items, flushItem{s: s, size: s.size, saveIndex: saveIndex, unpinLog: unpin})
	}
	syncDir := l.mu.dirDirty
	l.mu.dirDirty = false
	snapshot := l.mu.pendingSnapshot
	l.mu.pendingSnapshot = nil
	epochs := l.pendingEpochsLocked()
	maxTs, maxTsOffset, msgs := l.mu.maxTs, l.mu.maxTsOffset, l.mu.appendedMsgs
	sync := l.mu.fsync
	done := make(chan struct{})
	l.mu.flushing, l.mu.flushDone = true, done
	l.mu.Unlock()

	var err error
	var fsyncTime time.Duration
	for i := len(items) - 1; i >= 0 && err == nil; i-- { // oldest first
		start := time.Now()
		it := items[i]
		// Segments written since the last round still hold the log's pin,
		// so this is the descriptor they were written through.
		var f File
		if f, err = it.s.pin(); err != nil {
			break
		}
		err = sync(f)
		it.s.unpin()
		fsyncTime += time.Since(start)
		if err != nil {
			err = fmt.Errorf("storage: fsync %s: %w", f.Name(), err)
			break
		}
		l.fsyncs.Add(1)
		if it.saveIndex && !it.s.deleted.Load() {
			// The data is durable either way; a missing index is rebuilt
			// at the next open, so a full disk here only delays it to the
			// next round (or Close) instead of failing the log.
			if ierr := it.s.writeIndexFiles(); ierr != nil {
				l.logger.Warn().Err(ierr).Str("dir", l.dir).Msg("storage: writing a rolled segment's indexes; retrying at the next flush")
				items[i].saveIndex = false
			}
			syncDir = true
		}
	}
	if err == nil && snapshot != nil {
		// Failing to write one only costs a longer scan at the next open.
		if serr := l.writeProducerSnapshot(snapshot); serr != nil {
			l.logger.Warn().Err(serr).Str("dir", l.dir).Msg("storage: writing the producer state snapshot at roll")
		}
		syncDir = true
	}
	if err == nil && epochs != nil {
		// Before the round counts as flushed: the recovery point, from
		// which an open after a crash rescans epochs, must not pass
		// batches whose epoch the checkpoint lacks.
		if err = l.writeEpochCheckpoint(epochs); err != nil {
			err = fmt.Errorf("storage: leader epoch checkpoint: %w", err)
		}
		syncDir = true
	}
	if err == nil && syncDir {
		// New segment files and renamed index files must survive a crash
		// before the high watermark moves into them.
		err = syncDirectory(l.fs, l.dir)
	}
	for _, it := range items {
		if it.unpinLog {
			// Also after a failed round: the log refuses appends then,
			// and nothing fsyncs these again.
			it.s.unpinLog()
		}
		it.s.release()
	}

	l.mu.Lock()
	l.mu.flushing = false
	close(done)
	if err != nil {
		if epochs != nil {
			l.mu.epochs.dirty = true
		}
		l.mu.failed = fmt.Errorf("%w: %w", ErrLogFailed, err)
		l.mu.dirDirty = l.mu.dirDirty || syncDir
		if l.mu.hwCh != nil {
			// Wake those waiting for the high watermark: it will not move
			// again, and they should see Err instead of timing out.
			close(l.mu.hwCh)
			l.mu.hwCh = nil
		}
		l.wakeDurableLocked()
		l.logger.Error().Err(err).Str("dir", l.dir).Msg("storage: flush failed; log refuses appends until reopened")
		return
	}
	rolledDurable := false
	for _, it := range items {
		it.s.synced = max(it.s.synced, it.size)
		if it.saveIndex {
			it.s.indexSaved = true
			rolledDurable = true
		}
	}
	l.mu.flushed = target
	l.wakeDurableLocked()
	if l.onFlushRound != nil && len(items) > 0 {
		l.onFlushRound(fsyncTime, msgs-l.mu.flushedMsgs)
	}
	l.mu.flushedMsgs = msgs
	l.mu.lastFlush = time.Now()
	if l.mu.cfg.Durable {
		l.advanceHWLocked(target, maxTs, maxTsOffset)
	}
	if rolledDurable && l.onDurableRoll != nil {
		// The recovery point just passed a whole segment: checkpoint it so
		// that a crash does not make the next start validate it again.
		l.onDurableRoll()
	}
}

// flushSoonLocked makes sure data up to target is flushed promptly without
// the caller waiting: it starts a background flusher unless one runs.
func (l *Log) flushSoonLocked(target int64) {
	l.mu.flushWanted = max(l.mu.flushWanted, target)
	if l.mu.bgFlushing || l.mu.closed {
		return // the running flusher, or Close, will cover target
	}
	l.mu.bgFlushing = true
	l.wg.Add(1) // never concurrent with Close's Wait: closed is checked under the same lock
	go l.backgroundFlush()
}

// backgroundFlush flushes until flushWanted is durable, however often it is
// raised meanwhile. Owned by the log: Close waits for it.
func (l *Log) backgroundFlush() {
	defer l.wg.Done()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.mu.failed == nil && l.mu.flushed.offset < l.mu.flushWanted {
		_ = l.syncLocked(l.mu.flushWanted)
	}
	l.mu.bgFlushing = false
}

// armFlushTimerLocked schedules the flush.ms flush of page-cache mode for
// flush.ms after the last flush, unless one is scheduled already.
func (l *Log) armFlushTimerLocked() {
	ms, ok := l.mu.cfg.flushMs()
	if !ok || l.mu.flushTimer != nil || l.mu.closed {
		return
	}
	d := max(time.Until(l.mu.lastFlush.Add(time.Duration(ms)*time.Millisecond)), 0)
	l.mu.flushTimer = time.AfterFunc(d, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.mu.flushTimer = nil
		if !l.mu.closed && l.mu.flushed.offset < l.mu.leo {
			l.flushSoonLocked(l.mu.leo)
		}
	})
}

// Close flushes and fsyncs everything, writes the active segment's indexes
// (so the next open need not scan), and closes the files. Reads still in
// flight finish first on their own references.
func (l *Log) Close() error {
	err := l.close(true)
	if l.store != nil && !errors.Is(err, ErrClosed) {
		rp := int64(-1) // after a failed close, recover it whole
		if err == nil {
			rp = l.RecoveryPoint()
		}
		l.store.forget(l, rp)
	}
	return err
}

// Delete closes the log without flushing and removes its directory. The
// directory is first renamed to a hidden name, so that a crash halfway
// through never leaves a half-deleted log to be opened again; OpenStore
// removes such leftovers.
func (l *Log) Delete() error {
	if err := l.close(false); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	parent := filepath.Dir(l.dir)
	gone := filepath.Join(parent, fmt.Sprintf(".%s.%d%s", filepath.Base(l.dir), time.Now().UnixNano(), deletingSuffix))
	err := l.fs.Rename(l.dir, gone)
	if err == nil {
		_ = syncDirectory(l.fs, parent)
	}
	if l.store != nil {
		l.store.forget(l, -1)
		// A log created again under this name must not inherit the old
		// recovery point, which could skip validating its new segments.
		if cerr := l.store.CheckpointRecoveryPoints(); cerr != nil {
			l.logger.Warn().Err(cerr).Msg("storage: writing the recovery point checkpoint after a delete")
		}
	}
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("storage: delete log: %w", err)
	}
	if err := l.fs.RemoveAll(gone); err != nil {
		return fmt.Errorf("storage: delete log: %w", err)
	}
	return nil
}

func (l *Log) close(flush bool) error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.mu.closed = true
	if l.mu.flushTimer != nil {
		l.mu.flushTimer.Stop()
		l.mu.flushTimer = nil
	}
	if l.mu.hwCh != nil {
		close(l.mu.hwCh)
		l.mu.hwCh = nil
	}
	l.wakeDurableLocked()
	l.mu.Unlock()
	l.wg.Wait() // no new background flush can start: closed is set

	l.mu.Lock()
	var err error
	if flush {
		err = l.syncLocked(l.mu.leo)
	}
	for l.mu.flushing { // a Sync appender's round may still be running
		done := l.mu.flushDone
		l.mu.Unlock()
		<-done
		l.mu.Lock()
	}
	if l.mu.failed == nil {
		// Sync appenders still waiting must not start a round on files
		// about to be closed.
		l.mu.failed = ErrClosed
	}
	segs := l.mu.segs
	active := l.activeLocked()
	if flush && err == nil {
		// The final time index entry makes its last entry the segment's
		// maximum, as for rolled segments.
		active.maybeAppendTimeEntry()
		// The producer state snapshot spares the next open a scan.
		err = l.saveProducerStateLocked()
		if err == nil {
			l.mu.epochs.dirty = false
			err = l.writeEpochCheckpoint(l.mu.epochs.encode())
		}
	}
	l.mu.Unlock()

	if flush && err == nil {
		err = l.saveIndexes(segs, active)
	}
	for _, s := range segs {
		if s.refs.Load() > 1 {
			// A reader that took its reference before the close may not
			// have opened the file yet, and Delete is about to move it.
			if herr := s.holdOpen(); herr != nil {
				l.logger.Warn().Err(herr).Str("dir", l.dir).Msg("storage: keeping a segment open for a reader of a closing log")
			}
		}
		s.release()
	}
	return err
}

// saveIndexes writes the index files not yet on disk, then fsyncs the
// directory. Only for a closed log: nothing changes the entries anymore.
func (l *Log) saveIndexes(segs []*segment, active *segment) error {
	for _, s := range segs {
		if s.indexSaved && s != active {
			continue
		}
		if err := s.writeIndexFiles(); err != nil {
			return err
		}
	}
	return syncDirectory(l.fs, l.dir)
}
