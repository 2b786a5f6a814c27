package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// logStartFile holds the log start offset when DeleteRecordsBefore moved it
// past the first segment's base offset, which alone cannot tell it.
const logStartFile = "log-start-offset"

// DeleteRecordsBefore moves the log start offset to offset (which must be <=
// HighWatermark, else ErrOffsetOutOfRange), deletes whole segments entirely
// below it, and persists the new log start offset so it survives restart.
// An offset at or below the current log start offset changes nothing.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	if offset < 0 || offset > l.mu.hw.offset {
		err := fmt.Errorf("%w: delete before %d, high watermark %d", ErrOffsetOutOfRange, offset, l.mu.hw.offset)
		ls := l.mu.logStart
		l.mu.Unlock()
		return ls, err
	}
	if offset <= l.mu.logStart {
		ls := l.mu.logStart
		l.mu.Unlock()
		return ls, nil
	}
	l.mu.logStart = offset
	victims, err := l.deletePrefixLocked(func(_ *segment, end int64) bool { return end <= offset })
	ls := l.mu.logStart
	l.mu.Unlock()

	// Persist first: should the process die between the two, the start
	// offset still hides whatever segment files survive.
	if cerr := l.checkpointLogStart(); err == nil {
		err = cerr
	}
	if rerr := removeSegments(victims); err == nil {
		err = rerr
	}
	return ls, err
}

// EnforceRetention deletes old segments, as Kafka's deleteOldSegments does:
// first those whose largest timestamp is more than retention.ms before now,
// then the oldest while the log exceeds retention.bytes by at least their
// size, then any entirely below the log start offset. Only segments entirely
// below the high watermark go; the active segment only if it is not empty,
// and then a new one is rolled first. Returns the number of segments deleted.
func (l *Log) EnforceRetention(now time.Time) (int, error) {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	cfg := l.mu.cfg
	var victims []*segment
	var err error
	add := func(pred func(s *segment, end int64) bool) {
		if err != nil {
			return
		}
		var v []*segment
		v, err = l.deletePrefixLocked(pred)
		victims = append(victims, v...)
	}
	if cfg.RetentionMs >= 0 {
		nowMs := now.UnixMilli()
		add(func(s *segment, _ int64) bool {
			ts := s.maxTs
			if ts < 0 {
				ts = s.modified // Kafka falls back to the file's modification time
			}
			return nowMs-ts > cfg.RetentionMs
		})
	}
	if cfg.RetentionBytes >= 0 {
		diff := l.sizeLocked() - cfg.RetentionBytes
		add(func(s *segment, _ int64) bool {
			if diff-s.size < 0 {
				return false
			}
			diff -= s.size
			return true
		})
	}
	logStart := l.mu.logStart
	add(func(_ *segment, end int64) bool { return end <= logStart })
	l.mu.Unlock()

	if rerr := removeSegments(victims); err == nil {
		err = rerr
	}
	return len(victims), err
}

// deletePrefixLocked takes the longest prefix of segments that are entirely
// below the high watermark (the active one only if not empty) and match
// pred, out of the log. If that is every segment, a new active segment is
// rolled first. pred is called in order and may keep state. The caller
// removes the returned segments' files after dropping the lock.
func (l *Log) deletePrefixLocked(pred func(s *segment, end int64) bool) ([]*segment, error) {
	segs := l.mu.segs
	k := 0
	for ; k < len(segs); k++ {
		s := segs[k]
		end := l.mu.leo
		if k+1 < len(segs) {
			end = segs[k+1].base
		}
		if l.mu.hw.offset < end || (k+1 == len(segs) && s.size == 0) || s.compacting || !pred(s, end) {
			break
		}
	}
	if k == 0 {
		return nil, nil
	}
	if k == len(segs) {
		if err := l.rollLocked(time.Now().UnixMilli()); err != nil {
			return nil, err
		}
		segs = l.mu.segs
	}
	victims := segs[:k]
	// A fresh slice: readers may hold the old one.
	l.mu.segs = append([]*segment(nil), segs[k:]...)
	for _, s := range victims {
		s.deleted.Store(true)
	}
	l.mu.logStart = max(l.mu.logStart, l.mu.segs[0].base)
	if l.mu.hw.seg != nil && l.mu.hw.seg.deleted.Load() {
		// Keep no pointer to a deleted segment: the high watermark then
		// sits exactly at the start of the first remaining one.
		l.mu.hw.seg, l.mu.hw.pos = l.mu.segs[0], 0
	}
	if l.mu.flushed.seg != nil && l.mu.flushed.seg.deleted.Load() {
		l.mu.flushed.seg, l.mu.flushed.pos = l.mu.segs[0], 0
	}
	l.recomputeMaxLocked()
	return victims, nil
}

// removeSegments unlinks deleted segments and drops the log's references.
func removeSegments(victims []*segment) error {
	var first error
	for _, s := range victims {
		if err := s.removeFiles(); err != nil && first == nil {
			first = err
		}
		s.release()
	}
	return first
}

// checkpointLogStart persists the current log start offset. The mutex keeps
// concurrent calls from writing an older value last.
func (l *Log) checkpointLogStart() error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	v := l.mu.logStart
	l.mu.Unlock()
	return writeFileAtomic(l.fs, filepath.Join(l.dir, logStartFile), []byte(strconv.FormatInt(v, 10)+"\n"), true)
}

// readLogStart returns the checkpointed log start offset, or -1.
func readLogStart(fsys FS, dir string) (int64, error) {
	b, err := fsys.ReadFile(filepath.Join(dir, logStartFile))
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("storage: %w", err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		return -1, fmt.Errorf("storage: bad log start offset checkpoint in %s: %q", dir, b)
	}
	return v, nil
}
