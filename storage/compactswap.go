package storage

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// The swap of a cleaned segment, Kafka's replaceSegments, and its recovery,
// Kafka's LogLoader rules:
//
//  1. The cleaner writes "<base>.log.cleaned" and its two index files and
//     fsyncs them. A crash now leaves .cleaned files, which the next open
//     deletes: the old segments are untouched.
//  2. It renames the index files, then the log file, to ".swap" and fsyncs
//     the directory. The log file's rename decides the swap: from now on a
//     crash is completed by the next open.
//  3. Under Log.mu, the cleaned segment replaces the old ones in memory.
//  4. The old segments' files are removed (readers still holding them
//     read on through their open descriptors).
//  5. The .swap files are renamed to their final names and the directory
//     fsynced.
//
// Recovery (completeSwaps) deletes every .cleaned file; for each
// "<base>.log.swap" it deletes the segments whose base offsets the swap
// covers, from base to the swap's last offset, and renames the swap files to
// their final names; .swap index files without their log file are deleted.
// The cleaned segment always ends with the last offset of the segments it
// replaced (an empty batch stays if need be), so the covered segments are
// exactly those.

// compactCrashAt, when set (by tests), is asked at each step of a swap
// whether to stop there as if the process died: the files are left as they
// are and the cleaning fails with errCompactCrash.
var compactCrashAt func(step string) bool

var errCompactCrash = errors.New("storage: compact: simulated crash")

func crashAt(step string) bool { return compactCrashAt != nil && compactCrashAt(step) }

// errSwapAbandoned reports a swap given up because the log closed meanwhile.
var errSwapAbandoned = errors.New("storage: compact: log closed during the swap")

var segmentExts = []string{timeIndexExt, indexExt, logExt} // the log last: its rename decides

// swapIn replaces the segments g of the log with the cleaned segment out,
// whose files carry the .cleaned suffix. keptAborted lists the aborted
// transactions (by marker offset) the cleaning kept in the index.
func (l *Log) swapIn(g []*segment, out *segment, keptAborted map[int64]bool) error {
	stem := out.path
	if crashAt("cleaned") {
		return errCompactCrash
	}
	for _, ext := range segmentExts {
		if err := renameCompactFile(l.fs, stem+ext+cleanedExt, stem+ext+swapExt, false); err != nil {
			return err
		}
		if crashAt("renamed-" + ext) {
			return errCompactCrash
		}
	}
	if err := syncDirectory(l.fs, l.dir); err != nil {
		return err
	}
	if crashAt("swap") {
		return errCompactCrash
	}

	l.mu.Lock()
	i := slices.Index(l.mu.segs, g[0])
	if l.mu.closed || i < 0 || i+len(g) >= len(l.mu.segs) {
		l.mu.Unlock()
		// Nothing was replaced: roll back.
		for _, ext := range segmentExts {
			_ = removeCompactFile(l.fs, stem+ext+swapExt)
		}
		_ = syncDirectory(l.fs, l.dir)
		return errSwapAbandoned // cleanGroup closes out's file
	}
	segs := make([]*segment, 0, len(l.mu.segs)-len(g)+1) // a fresh slice: readers may hold the old one
	segs = append(segs, l.mu.segs[:i]...)
	segs = append(segs, out)
	segs = append(segs, l.mu.segs[i+len(g):]...)
	for _, s := range g {
		s.deleted.Store(true)
	}
	l.mu.segs = segs
	next := segs[i+1]
	if l.mu.hw.seg != nil && l.mu.hw.seg.deleted.Load() {
		// It sat at the end of a replaced segment, which is the next's start.
		l.mu.hw.seg, l.mu.hw.pos = next, 0
	}
	if l.mu.flushed.seg != nil && l.mu.flushed.seg.deleted.Load() {
		l.mu.flushed.seg, l.mu.flushed.pos = next, 0
	}
	l.recomputeMaxLocked()
	ps := &l.mu.producers
	ps.aborted = slices.DeleteFunc(ps.aborted, func(a AbortedTxn) bool {
		return a.LastOffset >= out.base && a.LastOffset < out.next && !keptAborted[a.LastOffset]
	})
	// The snapshot must not keep the aborted transactions just dropped.
	l.mu.pendingSnapshot = l.producerSnapshotLocked()
	l.flushSoonLocked(l.mu.leo)
	l.mu.Unlock()

	// The cleaning is done with g: drop its references now (compact skips
	// the deleted ones), so that removeFiles keeps a file open only for
	// readers that still hold one.
	for _, s := range g {
		s.release()
	}
	var first error
	for i, s := range g {
		if crashAt("remove-" + strconv.Itoa(i)) {
			return errCompactCrash
		}
		if err := s.removeFiles(); err != nil && first == nil {
			first = err
		}
		s.release() // the log's reference
	}
	for _, ext := range segmentExts {
		if crashAt("final-" + ext) {
			return errCompactCrash
		}
		if err := renameCompactFile(l.fs, stem+ext+swapExt, stem+ext, false); err != nil && first == nil {
			first = err
		}
	}
	if err := syncDirectory(l.fs, l.dir); err != nil && first == nil {
		first = err
	}
	if first == nil {
		// Its path names it now: the budget may close it and reopen it.
		out.unpinLog()
	}
	// A failure here leaves .swap files that the next open completes (and
	// out's file pinned open, as its path may not lead to it).
	return first
}

// completeSwaps finishes or rolls back what a crash left of swaps in dir
// (see the top of this file). It runs before the segments are listed.
func completeSwaps(fsys FS, dir string, logger zerolog.Logger) error {
	names, err := listCompactDir(fsys, dir)
	if err != nil {
		return err
	}
	changed := false
	var logs []int64
	swaps := map[string]bool{}
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, cleanedExt):
			if err := removeCompactFile(fsys, filepath.Join(dir, name)); err != nil {
				return err
			}
			changed = true
		case strings.HasSuffix(name, logExt+swapExt):
			swaps[strings.TrimSuffix(name, logExt+swapExt)] = true
		case strings.HasSuffix(name, logExt):
			if b, err := strconv.ParseInt(strings.TrimSuffix(name, logExt), 10, 64); err == nil {
				logs = append(logs, b)
			}
		}
	}
	for _, name := range names {
		if strings.HasSuffix(name, swapExt) && !strings.HasSuffix(name, logExt+swapExt) {
			stem := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, swapExt), indexExt), timeIndexExt)
			if !swaps[stem] {
				if err := removeCompactFile(fsys, filepath.Join(dir, name)); err != nil {
					return err
				}
				changed = true
			}
		}
	}
	stems := make([]string, 0, len(swaps))
	for stem := range swaps {
		stems = append(stems, stem)
	}
	slices.Sort(stems)
	for _, stem := range stems {
		base, err := strconv.ParseInt(stem, 10, 64)
		if err != nil {
			continue
		}
		last, err := lastOffsetIn(fsys, filepath.Join(dir, stem+logExt+swapExt))
		if err != nil {
			return err
		}
		var replaced []int64
		for _, b := range logs {
			if b >= base && (b <= last || b == base) {
				replaced = append(replaced, b)
				for _, ext := range segmentExts {
					if err := removeCompactFile(fsys, filepath.Join(dir, segmentName(b)+ext)); err != nil {
						return err
					}
				}
			}
		}
		for _, ext := range segmentExts {
			// A missing index swap file was renamed already, or is rebuilt.
			if err := renameCompactFile(fsys, filepath.Join(dir, stem+ext+swapExt), filepath.Join(dir, stem+ext), ext != logExt); err != nil {
				return err
			}
		}
		logger.Warn().Str("dir", dir).Int64("base_offset", base).Int64("last_offset", last).
			Int("segments_replaced", len(replaced)).Msg("storage: completed a compaction swap cut short by a crash")
		changed = true
	}
	if changed {
		return syncDirectory(fsys, dir)
	}
	return nil
}

// lastOffsetIn returns the last offset of the whole batches in a segment
// file, or -1.
func lastOffsetIn(fsys FS, path string) (int64, error) {
	f, err := openCompactFile(fsys, path)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return -1, err
	}
	sc := newHeaderScanner(f, st.Size())
	defer sc.free()
	last := int64(-1)
	for pos := int64(0); ; {
		h, ok, err := sc.header(pos)
		if err != nil || !ok {
			// It was fsynced whole before its rename; damage ends it here.
			return last, nil
		}
		last = h.LastOffset()
		pos += int64(h.Size())
	}
}

// loadCompactState reads the log's cleaner checkpoint at open.
func (l *Log) loadCompactState() {
	b, ok, err := readCompactFile(l.fs, filepath.Join(l.dir, cleanerCheckpointFile))
	if err != nil || !ok {
		if err != nil {
			l.logger.Warn().Err(err).Str("dir", l.dir).Msg("storage: ignoring the cleaner checkpoint")
		}
		return
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		l.logger.Warn().Str("dir", l.dir).Str("content", string(b)).Msg("storage: ignoring a bad cleaner checkpoint")
		return
	}
	l.mu.compact.firstDirty = min(v, l.mu.leo)
}
