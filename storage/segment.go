package storage

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/skiffmq/skiff/protocol"
)

const (
	logExt       = ".log"
	indexExt     = ".index"
	timeIndexExt = ".timeindex"
	tmpExt       = ".tmp"

	// maxRelOffset is the largest offset distance from a segment's base that
	// the 4-byte relative offsets in the index files can hold.
	maxRelOffset = math.MaxInt32
)

// segmentName is Kafka's file name stem: the base offset, 20 digits.
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// segment is one file of the log plus its two sparse indexes.
//
// Bytes below size never change once written (nothing truncates a segment
// while the log is open), so readers pread them without holding the log's
// lock. A segment is shared by reference count: the log holds one reference,
// and every reader or flusher that uses the file outside the lock holds
// another, so a segment deleted by retention stays readable until its last
// reader is done. Its file is opened on demand and may be closed while idle
// (see segfiles.go): a user of the file pins it.
type segment struct {
	base  int64
	path  string // file path without extension
	fs    FS
	files *fileBudget
	refs  atomic.Int32

	// fmu guards the file and its pins. It is per segment, and the file is
	// opened and closed under it; fileBudget.mu is taken inside it.
	fmu      sync.Mutex
	f        File          // nil: closed until the next pin. Constant while pinned, so a pinner uses it without fmu.
	pins     int           // users of f, the log's own pin included (active, or rolled and not yet durable)
	counted  bool          // f counts against the budget: opened on demand, or the log's pin is gone
	keep     bool          // never close before the last reference: the path no longer names this data
	released bool          // the last reference is gone; never open again
	lruElem  *list.Element // guarded by files.mu; non-nil: idle in the LRU

	// deleted is set when retention or DeleteRecordsBefore removes the
	// segment; the flusher checks it so as not to recreate its index files.
	deleted atomic.Bool

	// Guarded by Log.mu while the segment is active. Once rolled they do not
	// change, which is what lets the flusher write the indexes of a rolled
	// segment without the lock.
	size        int64 // bytes of whole, validated batches
	next        int64 // offset after the last batch
	maxTs       int64 // largest batch MaxTimestamp, -1 if none
	maxTsOffset int64 // last offset of the first batch carrying maxTs, -1 if none
	firstTs     int64 // MaxTimestamp of the first batch (segment.ms), -1 if none
	created     int64 // unix ms the segment was created or opened (segment.ms fallback)
	modified    int64 // unix ms of the last append (retention.ms fallback without timestamps)
	sinceIndex  int64 // bytes appended since the last offset index entry
	offIdx      []offsetEntry
	timeIdx     []timeEntry
	lazy        *lazyIndex // non-nil: entries are on disk only (see lazyIndex)
	synced      int64      // bytes known to be on stable storage
	indexSaved  bool       // the index files on disk hold exactly offIdx/timeIdx
	rolled      bool       // no longer the active segment
	compacting  bool       // pinned by a cleaning, which will replace it; retention leaves it alone
	logPin      bool       // the log's pin on f is held; the flush that makes the rolled segment durable drops it
}

// newSegment makes a segment of the open file f, which holds the log's pin
// (see unpinLog) until the segment is sealed and durable.
func (l *Log) newSegment(base int64, f File, now int64) *segment {
	s := &segment{
		base:        base,
		path:        filepath.Join(l.dir, segmentName(base)),
		f:           f,
		pins:        1,
		logPin:      true,
		fs:          l.fs,
		files:       l.files,
		next:        base,
		maxTs:       -1,
		maxTsOffset: -1,
		firstTs:     -1,
		created:     now,
		modified:    now,
	}
	s.refs.Store(1)
	return s
}

// createSegment starts a new, empty segment at base. Stale index files with
// the same name (left by an earlier life of this offset range) are removed so
// that recovery never pairs them with the new log file.
func (l *Log) createSegment(base int64, now int64) (*segment, error) {
	fsys := l.fs
	stem := filepath.Join(l.dir, segmentName(base))
	for _, ext := range []string{indexExt, timeIndexExt} {
		if err := fsys.Remove(stem + ext); err != nil && !isNotExist(err) {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	f, err := fsys.OpenFile(stem+logExt, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: create segment: %w", err)
	}
	return l.newSegment(base, f, now), nil
}

// acquire takes a reference for use outside Log.mu. Call with Log.mu held so
// the segment cannot be released by its log at the same time.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference and closes the file with the last one.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.closeFile()
	}
}

// removeFiles unlinks the segment's files. Readers that hold a reference
// keep reading through the descriptor, which is opened first if the budget
// had closed it, until they release the segment. The segment must be out
// of its log already, so that no new reference can be taken.
func (s *segment) removeFiles() error {
	var first error
	if s.refs.Load() > 1 {
		first = s.holdOpen()
	}
	// The index files go first: a crash (or an unsynced directory) can keep
	// any prefix of these removals, and a log file without its indexes is
	// rebuilt at open, where indexes without their log file look like a
	// lost segment and stop the start.
	for _, ext := range []string{timeIndexExt, indexExt, logExt} {
		if err := s.fs.Remove(s.path + ext); err != nil && !isNotExist(err) && first == nil {
			first = fmt.Errorf("storage: %w", err)
		}
	}
	return first
}

// indexBatch records a batch appended at pos, following Kafka's
// LogSegment.append: an offset index entry (and a time index entry, if the
// largest timestamp grew) once more than interval bytes were appended since
// the last entry. Guarded by Log.mu.
func (s *segment) indexBatch(pos int64, size int, last, maxTs int64, interval int32) {
	if pos == 0 {
		s.firstTs = maxTs
	}
	if maxTs > s.maxTs {
		s.maxTs, s.maxTsOffset = maxTs, last
	}
	if s.sinceIndex > int64(interval) {
		s.offIdx = append(s.offIdx, offsetEntry{rel: uint32(last - s.base), pos: uint32(pos)})
		s.maybeAppendTimeEntry()
		s.sinceIndex = 0
	}
	s.sinceIndex += int64(size)
}

// maybeAppendTimeEntry adds the current largest timestamp to the time index
// if it is newer than the last entry. Called at index points and when the
// segment stops being active, so the last entry is the segment's maximum.
func (s *segment) maybeAppendTimeEntry() {
	s.timeIdx = withMaxTime(s.timeIdx, s.base, s.maxTs, s.maxTsOffset)
}

// withMaxTime returns idx with an entry for the largest timestamp maxTs
// (first reached at offset maxTsOffset) appended, unless it has one.
func withMaxTime(idx []timeEntry, base, maxTs, maxTsOffset int64) []timeEntry {
	if maxTs < 0 {
		return idx
	}
	if n := len(idx); n > 0 && idx[n-1].ts >= maxTs {
		return idx
	}
	return append(idx, timeEntry{ts: maxTs, rel: uint32(maxTsOffset - base)})
}

// writeIndexFiles persists both indexes atomically (temp file, fsync,
// rename), the time index first: a crash between the two renames then leaves
// an offset index no newer than the time index, and recovery, which rescans
// from the last offset index entry, still sees every timestamp. The caller
// fsyncs the directory. The entries must not change meanwhile: the segment is
// rolled, or the log is closed.
func (s *segment) writeIndexFiles() error {
	if err := writeFileAtomic(s.fs, s.path+timeIndexExt, encodeTimeIndex(s.timeIdx), false); err != nil {
		return err
	}
	return writeFileAtomic(s.fs, s.path+indexExt, encodeOffsetIndex(s.offIdx), false)
}

// scanBufPool holds the blocks headerScanner reads into, so that seeking
// within a segment allocates nothing.
var scanBufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// headerScanner walks batch headers of one segment file, reading it in blocks
// so that skipping small batches costs one pread per block, not per batch.
type headerScanner struct {
	f      File
	limit  int64 // never look at bytes at or beyond limit
	bufp   *[]byte
	win    []byte // file bytes [winPos, winPos+len(win))
	winPos int64
}

func newHeaderScanner(f File, limit int64) headerScanner {
	return headerScanner{f: f, limit: limit, bufp: scanBufPool.Get().(*[]byte)}
}

func (sc *headerScanner) free() {
	scanBufPool.Put(sc.bufp)
	sc.bufp, sc.win = nil, nil
}

// errCorruptSegment reports batch framing that cannot be right inside the
// part of a segment that was validated when written.
var errCorruptSegment = errors.New("storage: corrupt batch framing in segment")

// header returns the header of the batch starting at pos, or ok=false at
// the limit.
func (sc *headerScanner) header(pos int64) (h protocol.BatchHeader, ok bool, err error) {
	if pos >= sc.limit {
		return h, false, nil
	}
	end := sc.winPos + int64(len(sc.win))
	if pos < sc.winPos || pos+protocol.BatchHeaderSize > end {
		buf := *sc.bufp
		n := min(int64(len(buf)), sc.limit-pos)
		if n < protocol.BatchHeaderSize {
			return h, false, fmt.Errorf("%w: %s at %d", errCorruptSegment, sc.f.Name(), pos)
		}
		if _, err := sc.f.ReadAt(buf[:n], pos); err != nil {
			return h, false, fmt.Errorf("storage: read %s: %w", sc.f.Name(), err)
		}
		sc.win, sc.winPos = buf[:n], pos
	}
	h, err = protocol.ParseBatchHeader(sc.win[pos-sc.winPos:])
	if err != nil || pos+int64(h.Size()) > sc.limit {
		return h, false, fmt.Errorf("%w: %s at %d", errCorruptSegment, sc.f.Name(), pos)
	}
	return h, true, nil
}

// find returns the first batch at or after pos for which match is true.
func (sc *headerScanner) find(pos int64, match func(protocol.BatchHeader) bool) (int64, protocol.BatchHeader, bool, error) {
	for {
		h, ok, err := sc.header(pos)
		if !ok || err != nil {
			return pos, h, false, err
		}
		if match(h) {
			return pos, h, true, nil
		}
		pos += int64(h.Size())
	}
}

// validateFrom checks every batch from pos to fileSize (CRC included) and
// indexes the valid ones as appends do. It stops at the first batch that is
// torn, corrupt or out of order and returns where the valid data ends; the
// error is for I/O failures only. s.size and s.next must describe the data
// before pos.
func (s *segment) validateFrom(pos, fileSize int64, interval int32) (int64, error) {
	const chunk = 1 << 20
	var buf, win []byte
	winPos := pos
	fill := func(at, need int64) error {
		n := min(max(chunk, need), fileSize-at)
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		if _, err := s.f.ReadAt(buf[:n], at); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("storage: read %s: %w", s.f.Name(), err)
		}
		win, winPos = buf[:n], at
		return nil
	}
	for pos+12 <= fileSize {
		if pos+12 > winPos+int64(len(win)) {
			if err := fill(pos, 12); err != nil {
				return pos, err
			}
		}
		size, err := protocol.PeekBatchSize(win[pos-winPos:])
		if err != nil || pos+int64(size) > fileSize {
			break
		}
		if pos+int64(size) > winPos+int64(len(win)) {
			if err := fill(pos, int64(size)); err != nil {
				return pos, err
			}
		}
		h, err := protocol.ValidateBatch(win[pos-winPos : pos-winPos+int64(size)])
		if err != nil || h.BaseOffset < s.next || h.LastOffset()-s.base > maxRelOffset {
			break
		}
		s.indexBatch(pos, size, h.LastOffset(), indexTimestamp(&h), interval)
		s.next = h.LastOffset() + 1
		pos += int64(size)
		s.size = pos
	}
	return pos, nil
}

// indexTimestamp is the timestamp a batch contributes to the time index and
// the segment's maximum: none for an empty batch (left by compaction), which
// holds no record a timestamp lookup could return.
func indexTimestamp(h *protocol.BatchHeader) int64 {
	if h.NumRecords == 0 {
		return -1
	}
	return h.MaxTimestamp
}
