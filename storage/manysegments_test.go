package storage

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/protocol"
)

// Helpers that lay out data directories as a clean stop leaves them, for
// tests and benchmarks that need thousands of segments or gigabytes: the
// files are written directly (what appends would write, without an fsync
// per roll), in a fraction of the time appending would take.

// writeLogFiles writes the log directory dir with segs segments of perSeg
// copies of batch each (batch's base offset is rewritten; it must hold
// records and a valid CRC), their offset and time indexes as appends with
// index.interval.bytes interval would have built them, and an empty
// producer state snapshot at the log end, as Log.Close leaves it. It
// returns the log end offset. Nothing is fsynced.
func writeLogFiles(t testing.TB, dir string, segs, perSeg int, batch []byte, interval int32) int64 {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := protocol.ParseBatchHeader(batch)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(h.LastOffsetDelta) + 1
	buf := make([]byte, 0, len(batch)*perSeg)
	next := int64(0)
	for range segs {
		s := &segment{base: next, maxTs: -1, maxTsOffset: -1, firstTs: -1}
		buf = buf[:0]
		for range perSeg {
			pos := int64(len(buf))
			buf = append(buf, batch...)
			protocol.SetBaseOffset(buf[pos:], next)
			s.indexBatch(pos, len(batch), next+n-1, h.MaxTimestamp, interval)
			next += n
		}
		s.maybeAppendTimeEntry()
		stem := filepath.Join(dir, segmentName(s.base))
		writeTestFile(t, stem+logExt, buf)
		writeTestFile(t, stem+indexExt, encodeOffsetIndex(s.offIdx))
		writeTestFile(t, stem+timeIndexExt, encodeTimeIndex(s.timeIdx))
	}
	var ps producerState
	ps.init()
	writeTestFile(t, filepath.Join(dir, producerSnapshotFile), encodeProducerSnapshot(&ps, next, 0))
	return next
}

// writeCleanStop marks the store directory dir as cleanly stopped, with
// each log's recovery point at its end (leos: log name -> log end offset).
func writeCleanStop(t testing.TB, dir string, leos map[string]int64) {
	t.Helper()
	writeTestFile(t, filepath.Join(dir, recoveryPointFile), encodeRecoveryPoints(leos))
	writeTestFile(t, filepath.Join(dir, cleanShutdownFile), nil)
}

func writeTestFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(es)
}

// TestReadTenThousandSegmentsWithinDescriptorBudget reads a log of 10,000
// segments from its first offset to its last, through ReadFile (the
// sendfile path) and Read, and checks that every batch comes back in order
// and intact while the process's descriptors stay within the budget. Every
// segment held an open descriptor before the budget: 10,000 of them.
func TestReadTenThousandSegmentsWithinDescriptorBudget(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/self/fd")
	}
	const (
		segs   = 10_000
		budget = 64
	)
	dir := t.TempDir()
	batch := makeBatch(2, 100, 1_700_000_000_000, 'v')
	leo := writeLogFiles(t, filepath.Join(dir, "t-0"), segs, 3, batch, 4096)
	writeCleanStop(t, dir, map[string]int64{"t-0": leo})

	before := openFDs(t)
	st, err := OpenStoreWith(dir, zerolog.Nop(), StoreOptions{SegmentFiles: budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	l, err := st.OpenLog("t-0", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := l.LogEndOffset(); got != leo {
		t.Fatalf("log end offset %d, want %d", got, leo)
	}
	// After a clean stop nothing sealed is opened, and no index is read.
	l.mu.Lock()
	for _, s := range l.mu.segs[:len(l.mu.segs)-1] {
		if s.f != nil || s.lazy == nil || s.lazy.off != nil {
			l.mu.Unlock()
			t.Fatalf("segment %d opened at start (file open %v, index read %v)", s.base, s.f != nil, s.lazy != nil && s.lazy.off != nil)
		}
	}
	l.mu.Unlock()
	// The store's lock file, the active segment, and the Go runtime's
	// occasional descriptor: a handful besides the budget.
	const slack = 8
	if held := openFDs(t) - before; held > slack {
		t.Fatalf("%d descriptors held after opening %d segments", held, segs)
	}

	// maxBytes spans a few segments, so each read pins several files.
	maxBytes := 4 * 3 * len(batch)
	check := func(records []byte, from int64) int64 {
		t.Helper()
		for p := 0; p < len(records); {
			h, err := protocol.ValidateBatch(records[p:])
			if err != nil {
				t.Fatalf("batch at offset %d: %v", from, err)
			}
			if h.BaseOffset != from {
				t.Fatalf("batch at offset %d, want %d", h.BaseOffset, from)
			}
			from = h.LastOffset() + 1
			p += h.Size()
		}
		return from
	}
	peak := 0
	for off := int64(0); off < leo; {
		fr, err := l.ReadFile(off, maxBytes, true, leo)
		if err != nil {
			t.Fatal(err)
		}
		if fr.Size == 0 {
			t.Fatalf("no data at offset %d", off)
		}
		var data []byte
		for _, r := range fr.Ranges {
			b := make([]byte, r.Len)
			if _, err := r.File.ReadAt(b, r.Offset); err != nil {
				t.Fatal(err)
			}
			data = append(data, b...)
		}
		peak = max(peak, openFDs(t)-before)
		fr.Release()
		next := check(data, off)
		if next != fr.NextOffset {
			t.Fatalf("read from %d ended at %d, NextOffset %d", off, next, fr.NextOffset)
		}
		// The same range through Read, on files the budget may have closed.
		res, err := l.Read(off, maxBytes, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := check(res.Records, off); got != next {
			t.Fatalf("Read from %d ended at %d, ReadFile at %d", off, got, next)
		}
		off = next
	}
	// A read pins the files of the segments it spans (up to 5 here) on
	// top of the budget's idle ones.
	if peak > budget+5+slack {
		t.Fatalf("%d descriptors held while reading, budget %d", peak, budget)
	}
	if n := st.OpenSegmentFiles(); n > budget {
		t.Fatalf("%d sealed segment files open after the reads, budget %d", n, budget)
	}
	t.Logf("%d segments read; at most %d descriptors held, budget %d", segs, peak, budget)
}

// sealedLog opens a log of n single-batch sealed segments (plus the active
// one) in a store with a budget of one open sealed file.
func sealedLog(t *testing.T, n int) (*Store, *Log) {
	t.Helper()
	dir := t.TempDir()
	st, err := OpenStoreWith(dir, zerolog.Nop(), StoreOptions{SegmentFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := testConfig()
	cfg.SegmentBytes = 1000 // one 1000-byte batch per segment
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n + 1 {
		mustAppend(t, l, batchOfSize(1000, int64(i+1)), AppendOptions{Sync: true})
	}
	return st, l
}

// fileOpen reports whether the segment holding offset has its file open.
func fileOpen(l *Log, offset int64) bool {
	l.mu.Lock()
	s := l.mu.segs[findSegment(l.mu.segs, offset)]
	l.mu.Unlock()
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.f != nil
}

// TestFileReadKeepsFileOpenPastBudget: the files of a FileRead being sent
// are pinned, so reads of other segments that push the budget over never
// close them under the sender.
func TestFileReadKeepsFileOpenPastBudget(t *testing.T) {
	st, l := sealedLog(t, 6)
	fr, err := l.ReadFile(0, 1000, true, 1<<62)
	if err != nil || len(fr.Ranges) != 1 {
		t.Fatalf("read: %v, %d ranges", err, len(fr.Ranges))
	}
	for off := int64(1); off < 6; off++ { // each opens another sealed file
		if _, err := l.Read(off, 1000, true); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.OpenSegmentFiles(); n > 2 {
		t.Fatalf("%d sealed files open, want the pinned one and at most one idle", n)
	}
	r := fr.Ranges[0]
	b := make([]byte, r.Len)
	if _, err := r.File.ReadAt(b, r.Offset); err != nil {
		t.Fatalf("pinned file closed under the reader: %v", err)
	}
	if h, err := protocol.ValidateBatch(b); err != nil || h.BaseOffset != 0 {
		t.Fatalf("pinned file's batch: %+v %v", h, err)
	}
	fr.Release()
	if _, err := l.Read(5, 1000, true); err != nil {
		t.Fatal(err)
	}
	if fileOpen(l, 0) {
		t.Fatal("the released file stayed open past the budget")
	}
}

// TestRetentionOfClosedSegmentUnderReader: a reader took a segment whose
// file the budget had closed, and retention unlinked it before the reader
// opened it. The deletion opens it first, so the read still gets the data.
func TestRetentionOfClosedSegmentUnderReader(t *testing.T) {
	_, l := sealedLog(t, 3)
	for off := range int64(2) { // opens segment 0's file, then closes it for segment 1's
		if _, err := l.Read(off, 1000, true); err != nil {
			t.Fatal(err)
		}
	}
	if fileOpen(l, 0) {
		t.Fatal("segment 0's file still open; the test needs it closed")
	}
	l.mu.Lock()
	p := l.partLocked(l.mu.segs[0], l.mu.hw) // as a Read in flight would
	l.mu.Unlock()
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	cfg.RetentionMs = 0
	l.SetConfig(cfg)
	if n, err := l.EnforceRetention(l.now()); err != nil || n < 1 {
		t.Fatalf("deleted %d: %v", n, err)
	}
	if _, err := os.Stat(p.s.path + logExt); !os.IsNotExist(err) {
		t.Fatalf("segment file not removed: %v", err)
	}
	if err := p.open(); err != nil {
		t.Fatalf("reader of a deleted segment: %v", err)
	}
	pos, h, found, err := l.seek(p, 0)
	if err != nil || !found || pos != 0 || h.Size() != 1000 {
		t.Fatalf("read of deleted segment: %v %v", found, err)
	}
	p.done()
	if p.s.refs.Load() != 0 {
		t.Fatalf("%d references left", p.s.refs.Load())
	}
	p.s.fmu.Lock()
	open := p.s.f != nil
	p.s.fmu.Unlock()
	if open {
		t.Fatal("deleted segment's file still open after its last reader")
	}
}

// TestFlushDropsLogPinOfRolledSegment: a rolled segment keeps its file
// (the log's pin) until the flush that makes it durable, then joins the
// budget, which closes it when it is over.
func TestFlushDropsLogPinOfRolledSegment(t *testing.T) {
	st, l := sealedLog(t, 4)
	l.mu.Lock()
	segs := l.mu.segs
	l.mu.Unlock()
	for _, s := range segs[:len(segs)-1] {
		s.fmu.Lock()
		pins, open := s.pins, s.f != nil
		s.fmu.Unlock()
		if pins != 0 {
			t.Fatalf("segment %d: %d pins after its flush", s.base, pins)
		}
		if open && st.OpenSegmentFiles() > 1 {
			t.Fatalf("%d sealed files open, budget 1", st.OpenSegmentFiles())
		}
	}
	active := segs[len(segs)-1]
	active.fmu.Lock()
	pins, open := active.pins, active.f != nil
	active.fmu.Unlock()
	if !open || pins != 1 {
		t.Fatalf("active segment: open %v, pins %d", open, pins)
	}
}

// TestCompactionSwapOfClosedSegmentUnderReader: the cleaned segment takes
// the name of the first segment it replaces. A reader that took the old
// segment before the swap, while the budget had its file closed, must
// still read the old file, not open the new one by the shared name.
func TestCompactionSwapOfClosedSegmentUnderReader(t *testing.T) {
	const now = 1_000_000
	clock := &fakeClock{}
	clock.set(now)
	st, err := OpenStoreWith(t.TempDir(), zerolog.Nop(), StoreOptions{Now: clock.Now, SegmentFiles: 1, Cleaner: CleanerOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := compactConfig()
	cfg.SegmentBytes = 100 // a segment per batch, and a cleaned group per segment
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []kv{{"a", val("old")}, {"b", val("x")}, {"a", val("new")}, {"c", val("y")}} {
		mustAppend(t, l, keyedBatch(t, now, protocol.CodecNone, -1, 0, false, r), AppendOptions{Sync: true})
	}
	for off := range int64(2) { // opens segment 0's file, then closes it for segment 1's
		if _, err := l.Read(off, 1000, true); err != nil {
			t.Fatal(err)
		}
	}
	if fileOpen(l, 0) {
		t.Fatal("segment 0's file still open; the test needs it closed")
	}
	l.mu.Lock()
	p := l.partLocked(l.mu.segs[0], l.mu.hw)
	l.mu.Unlock()
	if cs := mustCompact(t, l, now); cs.SegmentsOut == 0 {
		t.Fatalf("nothing cleaned: %+v", cs)
	}
	if err := p.open(); err != nil {
		t.Fatal(err)
	}
	_, h, found, err := l.seek(p, 0)
	p.done()
	if err != nil || !found || h.BaseOffset != 0 || h.NumRecords != 1 {
		t.Fatalf("the reader of the replaced segment read %+v (found %v, %v), want its one record at offset 0", h, found, err)
	}
	got := latestByKey(readRecords(t, l))
	if len(got) != 3 || string(got["a"].value) != "new" || got["a"].offset != 2 {
		t.Fatalf("log after cleaning: %+v", got)
	}
}
