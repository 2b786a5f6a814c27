package storage

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// Corruption found at start-up: each case gets a rebuild (indexes), a
// truncation logged with the bytes and offsets lost (tails), or a refusal
// to open that names the file and the fix. Never a silent loss.

func reopenLogged(t *testing.T, dir string, cfg Config) (*Log, *lockedBuffer, error) {
	t.Helper()
	logs := &lockedBuffer{}
	st, err := OpenStoreWith(dir, zerolog.New(logs), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		_ = st.Close()
	}
	return l, logs, err
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestCorruptTruncatedIndexIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	want := fillLog(t, l, 80, 1000)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	idx := segmentFiles(t, l.Dir(), indexExt)
	if len(idx) < 3 {
		t.Fatalf("%d segments", len(idx))
	}
	fi, err := os.Stat(idx[1])
	if err != nil || fi.Size() < offsetEntrySize {
		t.Fatalf("index %s: %v", idx[1], err)
	}
	if err := os.Truncate(idx[1], fi.Size()-3); err != nil { // cut mid-entry
		t.Fatal(err)
	}
	l, logs, err := reopenLogged(t, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "rebuilding them from the segment") {
		t.Fatalf("no rebuild logged: %s", logs)
	}
	checkSameBatches(t, l, want)
	if err := checkIndexes(l); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(idx[1]); err != nil || fi.Size()%offsetEntrySize != 0 {
		t.Fatalf("index after the rebuild: %v, %d bytes", err, fi.Size())
	}
}

// Garbage in the middle of a segment past the recovery point (here a rolled
// segment whose index files a crash kept from being written, so no part of
// it is known durable): the segment is truncated before it and every later
// segment deleted, as Kafka does, with the loss logged in bytes and offsets.
func TestCorruptGarbageMidSegmentTruncatesAndLogsLoss(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	fillLog(t, l, 100, 1000)
	crash(t, st)
	if err := os.Remove(filepath.Join(dir, recoveryPointFile)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	segs := segmentFiles(t, l.Dir(), logExt)
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	b, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	mid := len(b) / 2
	copy(b[mid:], []byte("\xde\xad\xbe\xef garbage \xde\xad\xbe\xef"))
	if err := os.WriteFile(segs[1], b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{indexExt, timeIndexExt} {
		if err := os.Remove(strings.TrimSuffix(segs[1], logExt) + ext); err != nil {
			t.Fatal(err)
		}
	}
	l, logs, err := reopenLogged(t, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, field := range []string{`"truncated_bytes":`, `"first_lost_offset":`, `"first_deleted_offset":`, `"deleted_bytes":`} {
		if !strings.Contains(out, field) {
			t.Fatalf("loss log lacks %s: %s", field, out)
		}
	}
	if n := len(segmentFiles(t, l.Dir(), logExt)); n != 2 {
		t.Fatalf("%d segments after recovery, want 2", n)
	}
	got := readAll(t, l)
	if leo := l.LogEndOffset(); len(got) == 0 || got[len(got)-1].LastOffset()+1 != leo || leo >= mustBase(t, segs[2]) {
		t.Fatalf("log end %d after truncating segment 1 (segment 2 began at %d)", leo, mustBase(t, segs[2]))
	}
	if err := checkIndexes(l); err != nil {
		t.Fatal(err)
	}
}

// A segment's log file gone from between others (its index files left):
// the log refuses to open, naming the file and the fix; after the fix it
// opens with the hole.
func TestCorruptMissingSegmentRefusesToOpen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	fillLog(t, l, 80, 1000)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, l.Dir(), logExt)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	if err := os.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	_, _, err := reopenLogged(t, dir, cfg)
	if !errors.Is(err, ErrMissingSegment) || !strings.Contains(err.Error(), filepath.Base(segs[1])) || !strings.Contains(err.Error(), "restore") {
		t.Fatalf("open with a missing segment: %v; want ErrMissingSegment naming %s and the fix", err, filepath.Base(segs[1]))
	}
	stem := strings.TrimSuffix(segs[1], logExt)
	for _, ext := range []string{indexExt, timeIndexExt} {
		if err := os.Remove(stem + ext); err != nil {
			t.Fatal(err)
		}
	}
	l, _, err = reopenLogged(t, dir, cfg)
	if err != nil {
		t.Fatalf("open after accepting the loss: %v", err)
	}
	if rr, err := l.Read(mustBase(t, segs[1]), 1<<20, true); err != nil || rr.Records == nil {
		t.Fatalf("read across the hole: %v", err)
	}
}

// The last segments gone after a clean stop: nothing on disk can tell, but
// the checkpointed recovery point can, and the loss is logged.
func TestCorruptMissingLastSegmentLogsLoss(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	fillLog(t, l, 80, 1000)
	leo := l.LogEndOffset()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, l.Dir(), logExt)
	last := strings.TrimSuffix(segs[len(segs)-1], logExt)
	for _, ext := range []string{logExt, indexExt, timeIndexExt} {
		if err := os.Remove(last + ext); err != nil {
			t.Fatal(err)
		}
	}
	l, logs, err := reopenLogged(t, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "ends before its checkpointed recovery point") || !strings.Contains(logs.String(), `"recovery_point":`) {
		t.Fatalf("missing tail not logged: %s", logs)
	}
	if got := l.LogEndOffset(); got >= leo {
		t.Fatalf("log end %d, was %d", got, leo)
	}
}

// TestCrashWhileDroppingCorruptTailRedoesIt is the regression test for
// recovery deleting the segments after a corrupt batch only after
// truncating it: a crash in between left them after a hole at the next
// start, which no longer saw the corruption. Now they go first, newest
// first, and a crash at any point of the recovery is recovered again.
func TestCrashWhileDroppingCorruptTailRedoesIt(t *testing.T) {
	setup := func() (*MemFS, int64) {
		fsys := NewMemFS()
		st, err := OpenStoreWith("/data", zerolog.Nop(), StoreOptions{FS: fsys, RecoveryPointInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		l, err := st.OpenLog("t-0", testConfig())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 60 {
			mustAppend(t, l, makeBatch(1, 150, 1000+int64(i), byte(i)), AppendOptions{Sync: true})
		}
		crash(t, st)
		_ = fsys.Remove("/data/" + recoveryPointFile)
		entries, _ := fsys.ReadDir("/data/t-0")
		var logs []string
		for _, e := range entries {
			if filepath.Ext(e.Name()) == logExt {
				logs = append(logs, "/data/t-0/"+e.Name())
			}
		}
		if len(logs) < 4 {
			t.Fatalf("%d segments", len(logs))
		}
		f, err := fsys.OpenFile(logs[1], os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("garbage!garbage!"), 300); err != nil {
			t.Fatal(err)
		}
		_ = f.Sync()
		_ = f.Close()
		// Its index files never written: nothing says it was durable.
		stem := strings.TrimSuffix(logs[1], logExt)
		_ = fsys.Remove(stem + indexExt)
		_ = fsys.Remove(stem + timeIndexExt)
		if err := fsys.SyncDir("/data/t-0"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.SyncDir("/data"); err != nil {
			t.Fatal(err)
		}
		base := mustBase(t, logs[2])
		return fsys, base
	}
	for k := 1; ; k++ {
		fsys, seg2 := setup()
		fsys.CrashAfter(1+k-1, rand.New(rand.NewPCG(uint64(k), 0)))
		st, err := OpenStoreWith("/data", zerolog.Nop(), StoreOptions{FS: fsys, RecoveryPointInterval: -1})
		if err == nil {
			_, _ = st.OpenLog("t-0", testConfig())
			_ = st.Close()
		}
		img := fsys.Crashed()
		if img == nil {
			t.Logf("recovery crashed at each of its first %d mutating calls", k-1)
			break // the recovery finished before the crash point
		}
		st, err = OpenStoreWith("/data", zerolog.Nop(), StoreOptions{FS: img, RecoveryPointInterval: -1})
		if err != nil {
			t.Fatalf("crash at call %d of the recovery: reopen: %v", k, err)
		}
		l, err := st.OpenLog("t-0", testConfig())
		if err != nil {
			t.Fatalf("crash at call %d of the recovery: %v", k, err)
		}
		got := readAll(t, l) // fails on a hole
		if leo := l.LogEndOffset(); leo >= seg2 || len(got) == 0 {
			t.Fatalf("crash at call %d of the recovery: log end %d, the corrupt segment's successor began at %d", k, leo, seg2)
		}
		_ = st.Close()
	}
}
