package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/protocol"
)

// fillLog appends n batches of varying size with rising timestamps, the last
// one synced, and returns the appended batches as written.
func fillLog(t testing.TB, l *Log, n int, firstTs int64) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		b := makeBatch(1+i%4, 20+(i*37)%200, firstTs+int64(i), byte(i))
		mustAppend(t, l, b, AppendOptions{Sync: i == n-1})
		out = append(out, b)
	}
	return out
}

func reopen(t testing.TB, dir string, cfg Config) (*Store, *Log) {
	t.Helper()
	st := openTestStore(t, dir)
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, l
}

func checkSameBatches(t testing.TB, l *Log, want [][]byte) {
	t.Helper()
	rr, err := l.Read(l.LogStartOffset(), 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	if all := bytes.Join(want, nil); !bytes.Equal(rr.Records, all) {
		t.Fatalf("read back %d bytes, want %d", len(rr.Records), len(all))
	}
}

func TestReopenAfterCleanCloseDoesNotScan(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	want := fillLog(t, l, 300, 1000)
	leo := l.LogEndOffset()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); err != nil {
		t.Fatal("no clean-shutdown marker:", err)
	}

	st, l = reopen(t, dir, cfg)
	if !st.CleanStart() {
		t.Fatal("clean stop not detected")
	}
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); !os.IsNotExist(err) {
		t.Fatal("marker not removed at open:", err)
	}
	if l.scanned > int64(cfg.IndexIntervalBytes)+2*400 {
		t.Fatalf("scanned %d bytes at a clean open", l.scanned)
	}
	l.mu.Lock()
	for _, s := range l.mu.segs[:len(l.mu.segs)-1] {
		if s.lazy == nil {
			t.Fatalf("segment %d loaded eagerly", s.base)
		}
	}
	l.mu.Unlock()
	if got := l.LogEndOffset(); got != leo || l.HighWatermark() != leo {
		t.Fatalf("log end %d, high watermark %d, want %d", got, l.HighWatermark(), leo)
	}
	checkSameBatches(t, l, want)
	b, ok, err := l.FindTimestamp(1150)
	if err != nil || !ok || batches(t, b)[0].MaxTimestamp != 1150 {
		t.Fatalf("FindTimestamp on lazily loaded segments: %v %v", ok, err)
	}
	res := mustAppend(t, l, makeBatch(2, 5, 5000, 'z'), AppendOptions{Sync: true})
	if res.BaseOffset != leo {
		t.Fatalf("append after reopen at %d, want %d", res.BaseOffset, leo)
	}
	b, ok, err = l.MaxTimestampBatch()
	if err != nil || !ok || batches(t, b)[0].BaseOffset != leo {
		t.Fatalf("MaxTimestampBatch: %v %v", ok, err)
	}
}

func TestRecoverUncleanTruncatesTornBatch(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	want := fillLog(t, l, 100, 1000)
	leo := l.LogEndOffset()
	crash(t, st)

	logs := segmentFiles(t, l.Dir(), logExt)
	active := logs[len(logs)-1]
	before, _ := os.Stat(active)
	half := makeBatch(3, 100, 9999, 'h')
	appendToFile(t, active, half[:len(half)/2]) // a torn write
	appendToFile(t, active, []byte("garbage after the torn batch"))

	var logBuf bytes.Buffer
	st2, err := OpenStore(dir, zerolog.New(&logBuf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st2.Close() })
	if st2.CleanStart() {
		t.Fatal("unclean stop not detected")
	}
	l, err = st2.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.LogEndOffset(); got != leo {
		t.Fatalf("log end %d after recovery, want %d", got, leo)
	}
	after, _ := os.Stat(active)
	if after.Size() != before.Size() {
		t.Fatalf("active segment is %d bytes, want %d", after.Size(), before.Size())
	}
	if !strings.Contains(logBuf.String(), "truncated_bytes") || !strings.Contains(logBuf.String(), `"level":"warn"`) {
		t.Fatalf("no truncation warning logged: %s", logBuf.String())
	}
	checkSameBatches(t, l, want)
	res := mustAppend(t, l, makeBatch(1, 1, 1, 'n'), AppendOptions{Sync: true})
	if res.BaseOffset != leo {
		t.Fatalf("new append at %d, want %d", res.BaseOffset, leo)
	}
	// And the recovered log closes and opens cleanly.
	if err := st2.Close(); err != nil {
		t.Fatal(err)
	}
	_, l = reopen(t, dir, cfg)
	if got := l.LogEndOffset(); got != leo+1 {
		t.Fatalf("log end %d, want %d", got, leo+1)
	}
}

// A clean stop, then more appends (the active segment's index file on disk is
// now stale), a roll, and a crash: recovery must find everything, including
// the data past the stale index.
func TestRecoverStaleAndOverlongIndexFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	want := fillLog(t, l, 50, 1000)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, l = reopen(t, dir, cfg)
	want = append(want, fillLog(t, l, 50, 2000)...)
	leo := l.LogEndOffset()
	crash(t, st)

	// Garbage index entries past the end of the log file, and a time index
	// with a torn last entry.
	idx := segmentFiles(t, l.Dir(), indexExt)
	last := idx[len(idx)-1]
	var junk []byte
	junk = binary.BigEndian.AppendUint32(junk, 1<<20)
	junk = binary.BigEndian.AppendUint32(junk, 1<<30)
	appendToFile(t, last, junk)
	tidx := segmentFiles(t, l.Dir(), timeIndexExt)
	appendToFile(t, tidx[len(tidx)-1], []byte{1, 2, 3})

	_, l = reopen(t, dir, cfg)
	if got := l.LogEndOffset(); got != leo {
		t.Fatalf("log end %d, want %d", got, leo)
	}
	checkSameBatches(t, l, want)
	for _, ts := range []int64{1010, 2030} {
		b, ok, err := l.FindTimestamp(ts)
		if err != nil || !ok || batches(t, b)[0].MaxTimestamp != ts {
			t.Fatalf("FindTimestamp(%d): %v %v", ts, ok, err)
		}
	}
}

// lastBatchOf returns the position and header of the last batch in a
// segment file's bytes.
func lastBatchOf(t testing.TB, b []byte) (int, protocol.BatchHeader) {
	t.Helper()
	var lastPos int
	var lastH protocol.BatchHeader
	for p := 0; p < len(b); {
		h, err := protocol.ValidateBatch(b[p:])
		if err != nil {
			t.Fatalf("batch at %d: %v", p, err)
		}
		lastPos, lastH = p, h
		p += h.Size()
	}
	return lastPos, lastH
}

// flipInLastBatch flips one byte in the records of the last batch of the
// segment file and returns that batch's header.
func flipInLastBatch(t testing.TB, path string) protocol.BatchHeader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pos, h := lastBatchOf(t, b)
	b[pos+h.Size()-1] ^= 0x55
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// Corruption in the tail of a segment past the recovery point (here there
// is none: the checkpoint is gone) is what a crash can tear: Kafka
// truncates there and drops every later segment.
func TestRecoverCorruptSegmentPastRecoveryPointDropsLaterOnes(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	fillLog(t, l, 100, 1000)
	crash(t, st)
	if err := os.Remove(filepath.Join(dir, recoveryPointFile)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	logs := segmentFiles(t, l.Dir(), logExt)
	if len(logs) < 4 {
		t.Fatalf("%d segments", len(logs))
	}
	lastH := flipInLastBatch(t, logs[1])
	_, l = reopen(t, dir, cfg)
	if got := len(segmentFiles(t, l.Dir(), logExt)); got != 2 {
		t.Fatalf("%d segments after recovery, want 2", got)
	}
	if got := l.LogEndOffset(); got != lastH.BaseOffset {
		t.Fatalf("log end %d, want %d", got, lastH.BaseOffset)
	}
	readAll(t, l)
	res := mustAppend(t, l, makeBatch(1, 1, 1, 'n'), AppendOptions{Sync: true})
	if res.BaseOffset != lastH.BaseOffset {
		t.Fatalf("append at %d, want %d", res.BaseOffset, lastH.BaseOffset)
	}
}

// Regression (Hardening finding 6): one flipped byte in the last batch of
// segment 2 of many, after a crash, deleted every later segment although
// they were all flushed and acknowledged. Segments below the checkpointed
// recovery point are not validated now: every batch but the damaged one
// stays readable, and the log end does not move.
func TestRecoverCorruptFlushedSegmentKeepsLaterData(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	want := fillLog(t, l, 100, 1000)
	leo := l.LogEndOffset()
	logs := segmentFiles(t, l.Dir(), logExt)
	if len(logs) < 6 {
		t.Fatalf("%d segments, want at least 6", len(logs))
	}
	// The checkpoint written after the roll past segment 3 covers segment 2.
	third := mustBase(t, logs[2])
	checkFor(t, 10*time.Second, func() error {
		points, err := readRecoveryPoints(OSFS, dir)
		if err != nil || points["t-0"] < third {
			return fmt.Errorf("recovery point checkpoint %v (%v), want t-0 >= %d", points, err, third)
		}
		return nil
	})
	crash(t, st)
	damaged := flipInLastBatch(t, logs[1])

	_, l = reopen(t, dir, cfg)
	if got := len(segmentFiles(t, l.Dir(), logExt)); got != len(logs) {
		t.Fatalf("%d segments after recovery, want all %d", got, len(logs))
	}
	if got := l.LogEndOffset(); got != leo {
		t.Fatalf("log end %d after recovery, want %d", got, leo)
	}
	// Everything before the damaged batch, and everything after it.
	var before, after [][]byte
	for _, b := range want {
		h, _ := protocol.ParseBatchHeader(b)
		switch {
		case h.BaseOffset < damaged.BaseOffset:
			before = append(before, b)
		case h.BaseOffset > damaged.LastOffset():
			after = append(after, b)
		}
	}
	if len(before)+len(after) != len(want)-1 {
		t.Fatalf("split %d+%d batches of %d around the damaged one", len(before), len(after), len(want))
	}
	rr, err := l.Read(0, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	if all := bytes.Join(before, nil); !bytes.HasPrefix(rr.Records, all) {
		t.Fatalf("the %d batches before the damaged one do not read back", len(before))
	}
	rr, err = l.Read(damaged.LastOffset()+1, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	if all := bytes.Join(after, nil); !bytes.Equal(rr.Records, all) {
		t.Fatalf("read %d bytes after the damaged batch, want the %d batches after it (%d bytes)", len(rr.Records), len(after), len(all))
	}
	if res := mustAppend(t, l, makeBatch(1, 1, 1, 'n'), AppendOptions{Sync: true}); res.BaseOffset != leo {
		t.Fatalf("append at %d, want %d", res.BaseOffset, leo)
	}
}

func mustBase(t testing.TB, path string) int64 {
	t.Helper()
	base, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(path), logExt), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

func TestRecoverMissingIndexFilesAfterCleanStop(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	want := fillLog(t, l, 80, 1000)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(segmentFiles(t, l.Dir(), indexExt), segmentFiles(t, l.Dir(), timeIndexExt)...) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	_, l = reopen(t, dir, cfg)
	checkSameBatches(t, l, want)
	if len(segmentFiles(t, l.Dir(), indexExt)) == 0 {
		t.Fatal("index files not rebuilt")
	}
	b, ok, err := l.FindTimestamp(1042)
	if err != nil || !ok || batches(t, b)[0].MaxTimestamp != 1042 {
		t.Fatalf("FindTimestamp: %v %v", ok, err)
	}
}

func FuzzRecover(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte("garbage"), uint16(3))
	f.Add(makeBatch(2, 10, 5, 'f'), uint16(0))
	f.Add(makeBatch(2, 10, 5, 'f')[:40], uint16(100))
	f.Fuzz(func(t *testing.T, tail []byte, cut uint16) {
		dir := t.TempDir()
		cfg := testConfig()
		st := openTestStore(t, dir)
		l, err := st.OpenLog("t-0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := fillLog(t, l, 12, 1000)
		crash(t, st)
		logs := segmentFiles(t, l.Dir(), logExt)
		active := logs[len(logs)-1]
		fi, _ := os.Stat(active)
		// Cut the active segment somewhere, then add the fuzzed tail.
		keep := max(fi.Size()-int64(cut), 0)
		if err := os.Truncate(active, keep); err != nil {
			t.Fatal(err)
		}
		appendToFile(t, active, tail)

		st2 := openTestStore(t, dir)
		defer st2.Close()
		l, err = st2.OpenLog("t-0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, l)
		// Every batch read back is one that was written, in order.
		for i, h := range got {
			if i < len(want) {
				if w, _ := protocol.ParseBatchHeader(want[i]); w.BaseOffset != h.BaseOffset || w.CRC != h.CRC {
					// A fuzzed tail may add valid batches only after the
					// written ones.
					t.Fatalf("batch %d: got offset %d crc %x, want %d %x", i, h.BaseOffset, h.CRC, w.BaseOffset, w.CRC)
				}
			}
		}
		leo := l.LogEndOffset()
		if res := mustAppend(t, l, makeBatch(1, 1, 1, 'n'), AppendOptions{Sync: true}); res.BaseOffset != leo {
			t.Fatalf("append at %d, want %d", res.BaseOffset, leo)
		}
	})
}

// A segment below the recovery point whose index files are gone is rebuilt
// by a scan, as Kafka rebuilds one that fails its index sanity check; the
// corrupt batch found then is cut from that segment alone, leaving a gap in
// the offsets that reads step over, and every later segment stays.
func TestRecoverFlushedSegmentWithoutIndexKeepsLaterData(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	want := fillLog(t, l, 100, 1000)
	leo := l.LogEndOffset()
	if err := st.CheckpointRecoveryPoints(); err != nil {
		t.Fatal(err)
	}
	crash(t, st)
	logs := segmentFiles(t, l.Dir(), logExt)
	if points, _ := readRecoveryPoints(OSFS, dir); points["t-0"] < mustBase(t, logs[2]) {
		t.Fatalf("recovery point %d does not cover segment 2", points["t-0"])
	}
	damaged := flipInLastBatch(t, logs[1])
	stem := strings.TrimSuffix(logs[1], logExt)
	for _, ext := range []string{indexExt, timeIndexExt} {
		if err := os.Remove(stem + ext); err != nil {
			t.Fatal(err)
		}
	}

	_, l = reopen(t, dir, cfg)
	if got := len(segmentFiles(t, l.Dir(), logExt)); got != len(logs) {
		t.Fatalf("%d segments after recovery, want all %d", got, len(logs))
	}
	if got := l.LogEndOffset(); got != leo {
		t.Fatalf("log end %d, want %d", got, leo)
	}
	var after [][]byte
	for _, b := range want {
		if h, _ := protocol.ParseBatchHeader(b); h.BaseOffset > damaged.LastOffset() {
			after = append(after, b)
		}
	}
	// A read in the gap starts at the next segment.
	rr, err := l.Read(damaged.BaseOffset, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	if all := bytes.Join(after, nil); !bytes.Equal(rr.Records, all) {
		t.Fatalf("read %d bytes from the damaged batch's offset, want the %d batches after it (%d bytes)", len(rr.Records), len(after), len(all))
	}
}
