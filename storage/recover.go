package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/protocol"
)

// logEnv is what a log takes from its store when it opens.
type logEnv struct {
	// clean says whether the previous process stopped cleanly (see Store):
	// then every index file on disk is complete and only the active
	// segment's tail past its last index entry is read.
	clean bool
	// recoveryPoint is the log's checkpointed recovery point, or -1 if
	// unknown. After an unclean stop, segments wholly below the one that
	// holds it were durable before the crash and are opened as after a
	// clean stop.
	recoveryPoint int64
	// checkpointed is the log's recovery point in the checkpoint whether
	// the stop was clean or not (-1 if none): a log that opens ending
	// before it has lost data that was durable, which is logged.
	checkpointed int64
	// fs is the filesystem (nil: OSFS).
	fs FS
	// now is the clock for producer expiry; producerExpiration is
	// producer.id.expiration.ms (<= 0: never).
	now                func() time.Time
	producerExpiration int64
	// onDurableRoll is called after a flush made a rolled segment durable,
	// so the store checkpoints the new recovery point. It must not block
	// or take locks: it runs under the log's lock.
	onDurableRoll func()
	// observer receives flush events; nil: none.
	observer *Observer
	// files is the budget of open sealed-segment files (nil: a budget of
	// the log's own, DefaultSegmentFiles).
	files *fileBudget
}

// openLog opens (creating if needed) the log in dir. After an unclean stop
// the segments from the one holding env.recoveryPoint on (all of them
// without a recovery point) have their tails past the last index entry
// validated, and the first torn or corrupt batch is truncated away with
// every later segment, as Kafka's recovery does for segments past its
// recovery point. Older segments are not validated: damage found in them
// later is left to the reader's CRC check rather than "repaired" by
// deleting the acknowledged data after it.
func openLog(dir, name string, cfg Config, env logEnv, logger zerolog.Logger) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env.fs == nil {
		env.fs = OSFS
	}
	// A new log's directory entry must be durable before anything
	// written in it is acknowledged.
	if err := mkdirDurable(env.fs, dir); err != nil {
		return nil, err
	}
	if env.now == nil {
		env.now = time.Now
	}
	if env.files == nil {
		env.files = newFileBudget(0)
	}
	l := &Log{dir: dir, name: name, fs: env.fs, files: env.files, logger: logger, now: env.now, onDurableRoll: env.onDurableRoll}
	if env.observer != nil {
		l.onFlushRound = env.observer.FlushRound
	}
	l.mu.cfg = cfg
	l.mu.fsync = File.Datasync
	l.mu.hwCap = math.MaxInt64
	l.mu.producers.expiration = env.producerExpiration
	if err := completeSwaps(env.fs, dir, logger); err != nil {
		return nil, err
	}
	bases, err := listSegments(env.fs, dir)
	if err != nil {
		return nil, err
	}
	if err := l.loadSegments(bases, env.clean, env.recoveryPoint); err != nil {
		for _, s := range l.mu.segs {
			s.release()
		}
		return nil, err
	}
	if env.checkpointed > l.mu.leo {
		l.logger.Error().Str("dir", dir).Int64("log_end_offset", l.mu.leo).Int64("recovery_point", env.checkpointed).
			Int64("lost_offsets", env.checkpointed-l.mu.leo).
			Msg("storage: the log ends before its checkpointed recovery point: durable data is gone (segment files deleted or cut short outside Skiff); restore them from a backup to get it back")
	}
	l.loadCompactState()
	return l, nil
}

// ErrMissingSegment is returned by OpenLog when a segment's log file is
// gone from between other segments (its index files are still there):
// opening the log would silently skip its offsets.
var ErrMissingSegment = errors.New("storage: missing segment")

// listSegments returns the base offsets of the segment files in dir, after
// removing leftover temp files and index files without a log file. Index
// files without a log file are left by a crash while retention removed the
// oldest segments (their log file goes first), so they lie below the first
// segment; one between two segments means that segment's log file was lost,
// and the log is refused with ErrMissingSegment instead of opening with a
// silent hole.
func listSegments(fsys FS, dir string) ([]int64, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var bases []int64
	logs := map[string]bool{}
	var indexes []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			continue
		}
		ext := filepath.Ext(name)
		stem := strings.TrimSuffix(name, ext)
		switch ext {
		case tmpExt:
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("storage: %w", err)
			}
		case logExt:
			if base, err := strconv.ParseInt(stem, 10, 64); err == nil && len(stem) == 20 && base >= 0 {
				bases = append(bases, base)
				logs[stem] = true
			}
		case indexExt, timeIndexExt:
			indexes = append(indexes, name)
		}
	}
	slices.Sort(bases)
	for _, name := range indexes {
		stem := strings.TrimSuffix(name, filepath.Ext(name))
		if !logs[stem] {
			base, err := strconv.ParseInt(stem, 10, 64)
			if err == nil && len(bases) > 0 && base > bases[0] && base < bases[len(bases)-1] {
				return nil, fmt.Errorf("%w: %s has index files but no log file %s between other segments; "+
					"restore the log file from a backup, or, to accept losing its offsets, delete %s.index and %s.timeindex and restart",
					ErrMissingSegment, dir, stem+logExt, stem, stem)
			}
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("storage: %w", err)
			}
		}
	}
	return bases, nil
}

func (l *Log) loadSegments(bases []int64, clean bool, recoveryPoint int64) error {
	now := time.Now().UnixMilli()
	ckpt, err := readLogStart(l.fs, l.dir)
	if err != nil {
		l.logger.Warn().Err(err).Str("dir", l.dir).Msg("storage: ignoring log start offset checkpoint")
	}
	// Segments before firstUnflushed were durable at the last checkpoint.
	firstUnflushed := 0
	if !clean && recoveryPoint >= 0 && len(bases) > 0 {
		firstUnflushed = findBase(bases, recoveryPoint)
		if firstUnflushed > 0 {
			l.logger.Info().Str("dir", l.dir).Int64("recovery_point", recoveryPoint).
				Int("segments_validated", len(bases)-firstUnflushed).Int("segments_skipped", firstUnflushed).
				Msg("storage: recovering the segments past the recovery point")
		}
	}
	for i, base := range bases {
		// loadSegment opens the file only if it must read it.
		s := l.newSegment(base, nil, now)
		l.mu.segs = append(l.mu.segs, s)
		last := i == len(bases)-1
		nextBase := int64(-1)
		if !last {
			nextBase = bases[i+1]
		}
		flushed := i < firstUnflushed
		var later []int64
		if !flushed {
			later = bases[i+1:]
		}
		truncated, err := l.loadSegment(s, nextBase, clean, flushed, later)
		if err != nil {
			return err
		}
		if truncated && len(later) > 0 {
			break
		}
	}
	if len(l.mu.segs) == 0 {
		s, err := l.createSegment(max(ckpt, 0), now)
		if err != nil {
			return err
		}
		l.mu.segs = append(l.mu.segs, s)
		l.mu.dirDirty = true
	}
	active := l.activeLocked()
	active.rolled, active.indexSaved = false, false
	l.mu.leo = active.next
	l.mu.logStart = max(ckpt, l.mu.segs[0].base)
	if l.mu.logStart > l.mu.leo {
		// Everything on disk is below the checkpointed start (a restart
		// right after DeleteRecordsBefore removed everything, with the
		// segment deletions lost): start over empty at the start offset.
		l.logger.Warn().Str("dir", l.dir).Int64("log_start_offset", l.mu.logStart).Int64("log_end_offset", l.mu.leo).
			Msg("storage: log start offset beyond the data; starting empty")
		for _, s := range l.mu.segs {
			if err := s.removeFiles(); err != nil {
				return err
			}
			s.release()
		}
		s, err := l.createSegment(l.mu.logStart, now)
		l.mu.segs = nil
		if err != nil {
			return err
		}
		l.mu.segs = []*segment{s}
		l.mu.leo = l.mu.logStart
		l.mu.dirDirty = true
	}
	if l.mu.dirDirty {
		if err := syncDirectory(l.fs, l.dir); err != nil {
			return err
		}
		l.mu.dirDirty = false
	}
	end := l.endPosLocked()
	l.mu.hw, l.mu.flushed, l.mu.flushWanted = end, end, end.offset
	l.mu.lastFlush = time.Now()
	l.mu.hwMaxTs, l.mu.hwMaxTsOffset = -1, -1
	l.recomputeMaxLocked()
	if err := l.loadProducerStateLocked(); err != nil {
		return err
	}
	// After a clean stop the epoch checkpoint was written by Close; after
	// a crash the epochs of batches past the recovery point may be missing
	// from it (a flush round writes it before the data it covers counts
	// as flushed).
	epochsFrom := l.mu.leo
	if !clean {
		epochsFrom = max(recoveryPoint, l.mu.logStart)
	}
	return l.loadEpochsLocked(epochsFrom)
}

// dropSegments deletes the segments with the given bases, logging what is
// lost, and fsyncs the directory. Newest first, index files before the log
// file: a crash halfway leaves whole segments right after the kept ones, and
// never an index file without its log file between segments (which would
// read as a missing segment).
func (l *Log) dropSegments(bases []int64) error {
	if len(bases) == 0 {
		return nil
	}
	var lostBytes int64
	for _, b := range bases {
		if fi, err := l.fs.Stat(filepath.Join(l.dir, segmentName(b)+logExt)); err == nil {
			lostBytes += fi.Size()
		}
	}
	l.logger.Warn().Str("dir", l.dir).Int("segments", len(bases)).
		Int64("first_deleted_offset", bases[0]).Int64("deleted_bytes", lostBytes).
		Msg("storage: deleting the segments after a corrupt batch, as Kafka does past the recovery point")
	for k := len(bases) - 1; k >= 0; k-- {
		stem := filepath.Join(l.dir, segmentName(bases[k]))
		for _, ext := range []string{indexExt, timeIndexExt, logExt} {
			if err := l.fs.Remove(stem + ext); err != nil && !isNotExist(err) {
				return fmt.Errorf("storage: %w", err)
			}
		}
	}
	return syncDirectory(l.fs, l.dir)
}

// findBase returns the index of the last base <= offset (0 if none).
func findBase(bases []int64, offset int64) int {
	i, found := slices.BinarySearch(bases, offset)
	if !found {
		i--
	}
	return max(i, 0)
}

// loadSegment fills in s from its files. nextBase is the next segment's base
// offset, or -1 for the last (active) segment. flushed says the segment was
// durable before the stop (below the recovery point): it opens as after a
// clean stop, and only if its index files are unusable is it rebuilt, as
// Kafka rebuilds a segment whose index fails its sanity check. It reports
// whether the log file was truncated.
//
// later are the bases of the segments after s that go if s is truncated:
// data after a corrupt batch cannot be trusted to continue the offset
// sequence (Kafka's rule past the recovery point). They are deleted before
// s is truncated, so a crash in between redoes both at the next start
// instead of leaving them after a hole.
func (l *Log) loadSegment(s *segment, nextBase int64, clean, flushed bool, later []int64) (truncated bool, err error) {
	st, err := l.fs.Stat(s.path + logExt)
	if err != nil {
		return false, fmt.Errorf("storage: %w", err)
	}
	fileSize := st.Size()
	s.modified = st.ModTime().UnixMilli()
	if (clean || flushed) && nextBase >= 0 {
		if l.loadLazy(s, fileSize, nextBase) {
			// Sealed and durable: no pin, no open file until a reader
			// asks for it.
			s.pins, s.logPin = 0, false
			return false, nil
		}
		l.logger.Warn().Str("dir", l.dir).Str("segment", filepath.Base(s.path)+logExt).
			Msg("storage: index files missing or damaged; rebuilding them from the segment")
	}
	f, err := l.fs.OpenFile(s.path+logExt, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("storage: %w", err)
	}
	s.f = f // under the log's pin, which a sealed segment drops below
	maxRel := int64(maxRelOffset)
	if nextBase >= 0 {
		maxRel = nextBase - s.base - 1
	}
	offB, offOK, err := readIndexFile(l.fs, s.path+indexExt)
	if err != nil {
		return false, err
	}
	timeB, timeOK, err := readIndexFile(l.fs, s.path+timeIndexExt)
	if err != nil {
		return false, err
	}
	s.offIdx = decodeOffsetIndex(offB, fileSize)
	s.timeIdx = decodeTimeIndex(timeB, maxRel)
	diskOff, diskTime := s.offIdx, s.timeIdx // appends below never change these elements
	interval := l.mu.cfg.IndexIntervalBytes

	validEnd, resumed := int64(-1), false
	if n := len(s.offIdx); n > 0 && offOK && timeOK {
		// Resume at the last indexed batch, if it is where the index says.
		e := s.offIdx[n-1]
		var hdr [protocol.BatchHeaderSize]byte
		if _, err := s.f.ReadAt(hdr[:], int64(e.pos)); err == nil {
			h, err := protocol.ParseBatchHeader(hdr[:])
			if err == nil && h.LastOffset() == s.base+int64(e.rel) {
				s.size, s.next = int64(e.pos), h.BaseOffset
				if k := len(s.timeIdx); k > 0 {
					s.maxTs, s.maxTsOffset = s.timeIdx[k-1].ts, s.base+int64(s.timeIdx[k-1].rel)
				}
				if validEnd, err = s.validateFrom(int64(e.pos), fileSize, interval); err != nil {
					return false, err
				}
				l.scanned += validEnd - int64(e.pos)
				resumed = validEnd == fileSize
				if k := len(s.timeIdx); k > 0 && s.base+int64(s.timeIdx[k-1].rel) >= s.next {
					resumed = false // the time index speaks of data that is not there
				}
			}
		}
	}
	if !resumed {
		// No usable index, or the tail is torn: rebuild from the start.
		s.offIdx, s.timeIdx = nil, nil
		s.size, s.next, s.maxTs, s.maxTsOffset, s.sinceIndex = 0, s.base, -1, -1, 0
		if validEnd, err = s.validateFrom(0, fileSize, interval); err != nil {
			return false, err
		}
		l.scanned += validEnd
	} else if s.size > 0 {
		if err := l.readFirstTimestamp(s); err != nil {
			return false, err
		}
	}
	if validEnd < fileSize {
		l.logger.Warn().Str("dir", l.dir).Str("segment", filepath.Base(s.path)+logExt).
			Int64("valid_bytes", validEnd).Int64("truncated_bytes", fileSize-validEnd).
			Int64("first_lost_offset", s.next).Bool("below_recovery_point", flushed).
			Msg("storage: truncating torn or corrupt data after unclean shutdown")
		if err := l.dropSegments(later); err != nil {
			return false, err
		}
		if err := s.f.Truncate(validEnd); err != nil {
			return false, fmt.Errorf("storage: %w", err)
		}
		truncated = true
	}
	if !clean || truncated {
		// Make what is now the log durable, so the high watermark that
		// covers it after open means what it says.
		if err := s.f.Datasync(); err != nil {
			return false, fmt.Errorf("storage: fsync %s: %w", s.f.Name(), err)
		}
	}
	s.synced = s.size
	if nextBase >= 0 && (!truncated || flushed) {
		// A flushed segment truncated during an index rebuild stays before
		// the later ones; its lost offsets are a gap readers skip.
		s.maybeAppendTimeEntry()
		s.rolled = true
	}
	// Rewrite the index files when they no longer match, so that every
	// index file on disk describes a prefix of its log file, and those of
	// inactive segments all of it. Files that already do are left alone:
	// a clean open of an idle partition (an active segment smaller than an
	// index interval, so with no entry to resume from) must not cost
	// fsyncs and renames, a thousand partitions times.
	whole := len(offB) == len(diskOff)*offsetEntrySize && len(timeB) == len(diskTime)*timeEntrySize // nothing dropped or cut mid-entry
	var current bool
	if s.rolled {
		current = whole && offOK && timeOK && slices.Equal(diskOff, s.offIdx) && slices.Equal(diskTime, s.timeIdx)
	} else {
		// Roll and Close write the active segment's files whole. The time
		// index Close wrote may end with the segment's maximum, which the
		// scan adds only at an index point.
		final := withMaxTime(slices.Clip(s.timeIdx), s.base, s.maxTs, s.maxTsOffset)
		current = whole && offOK == timeOK && hasPrefix(s.offIdx, diskOff) &&
			(hasPrefix(s.timeIdx, diskTime) || hasPrefix(final, diskTime))
	}
	if truncated || !current {
		if err := s.writeIndexFiles(); err != nil {
			return false, err
		}
		l.mu.dirDirty = true
	}
	s.indexSaved = true
	if s.rolled {
		// Read again on first use, like after a clean start.
		s.lazy = &lazyIndex{fs: l.fs, path: s.path, base: s.base, logSize: s.size, maxRel: nextBase - s.base - 1}
		s.offIdx, s.timeIdx = nil, nil
		// Durable now: the file joins the budget (and may be closed).
		s.logPin = false
		s.unpinLog()
	}
	return truncated, nil
}

// loadLazy opens a complete, inactive segment after a clean stop without
// reading its indexes, only the last time index entry (the segment's largest
// timestamp, needed for retention). It returns false if the index files
// look wrong, and the caller then rebuilds them.
func (l *Log) loadLazy(s *segment, fileSize, nextBase int64) bool {
	oi, err1 := l.fs.Stat(s.path + indexExt)
	ti, err2 := l.fs.Stat(s.path + timeIndexExt)
	if err1 != nil || err2 != nil || oi.Size()%offsetEntrySize != 0 || ti.Size()%timeEntrySize != 0 {
		return false
	}
	if n := ti.Size(); n > 0 {
		f, err := l.fs.OpenFile(s.path+timeIndexExt, os.O_RDONLY, 0)
		if err != nil {
			return false
		}
		var b [timeEntrySize]byte
		_, err = f.ReadAt(b[:], n-timeEntrySize)
		_ = f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return false
		}
		ts, rel := int64(binary.BigEndian.Uint64(b[:])), int64(binary.BigEndian.Uint32(b[8:]))
		if ts < 0 || rel >= nextBase-s.base {
			return false
		}
		s.maxTs, s.maxTsOffset = ts, s.base+rel
	}
	s.size, s.next, s.synced = fileSize, nextBase, fileSize
	s.rolled, s.indexSaved = true, true
	s.lazy = &lazyIndex{fs: l.fs, path: s.path, base: s.base, logSize: fileSize, maxRel: nextBase - s.base - 1}
	return true
}

// readFirstTimestamp sets firstTs from the first batch (for segment.ms) when
// the tail scan did not see it.
func (l *Log) readFirstTimestamp(s *segment) error {
	var hdr [protocol.BatchHeaderSize]byte
	if _, err := s.f.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("storage: read %s: %w", s.f.Name(), err)
	}
	h, err := protocol.ParseBatchHeader(hdr[:])
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errCorruptSegment, s.f.Name(), err)
	}
	s.firstTs = h.MaxTimestamp
	return nil
}

// hasPrefix reports whether s begins with prefix.
func hasPrefix[E comparable](s, prefix []E) bool {
	return len(s) >= len(prefix) && slices.Equal(s[:len(prefix)], prefix)
}
