package storage

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// lockedBuffer collects log output written from any goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) count(s string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.b.String(), s)
}

func openMemStore(t *testing.T, fsys *MemFS, logs *lockedBuffer) *Store {
	t.Helper()
	logger := zerolog.Nop()
	if logs != nil {
		logger = zerolog.New(logs)
	}
	st, err := OpenStoreWith("/data", logger, StoreOptions{FS: fsys, RecoveryPointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// activeFileSize returns the size of the active segment's file and the
// bytes the log counts in it.
func activeFileSize(t *testing.T, l *Log) (file, counted int64) {
	t.Helper()
	l.mu.Lock()
	s := l.activeLocked()
	counted = s.size
	l.mu.Unlock()
	fi, err := s.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size(), counted
}

// TestAppendWriteFailureCutsBatchAndResumes covers a full disk (a short
// write) and an I/O error on a segment write: the append fails with
// ErrWriteFailed, nothing of it stays in the file, earlier data stays
// readable, the partition goes offline with one log line however many
// appends fail, and writes resume by themselves once a write succeeds.
func TestAppendWriteFailureCutsBatchAndResumes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(*MemFS)
		clear  func(*MemFS)
		errno  error
		fails  int // appends that fail before clear
	}{
		{"disk full", func(m *MemFS) { m.SetSpace(m.Used() + 100) }, func(m *MemFS) { m.SetSpace(-1) }, syscall.ENOSPC, 3},
		{"EIO", func(m *MemFS) { m.FailWrite(1, syscall.EIO) }, func(*MemFS) {}, syscall.EIO, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := NewMemFS()
			logs := &lockedBuffer{}
			st := openMemStore(t, fsys, logs)
			l, err := st.OpenLog("t-0", testConfig())
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				mustAppend(t, l, makeBatch(1, 150, 1, byte('a'+i)), AppendOptions{Sync: true})
			}
			fileBefore, _ := activeFileSize(t, l)
			tc.inject(fsys)
			for range tc.fails {
				_, err := l.Append(makeBatch(1, 500, 1, 'x'), AppendOptions{Sync: true})
				if !errors.Is(err, ErrWriteFailed) || !errors.Is(err, tc.errno) {
					t.Fatalf("append on a failing disk: %v, want ErrWriteFailed wrapping %v", err, tc.errno)
				}
				if file, counted := activeFileSize(t, l); file != fileBefore || counted != fileBefore {
					t.Fatalf("segment file %d bytes (log counts %d) after the failed append, want %d: half a batch stayed", file, counted, fileBefore)
				}
			}
			if n := logs.count("partition offline for writes"); n != 1 {
				t.Fatalf("%d offline log lines for %d failed appends, want 1", n, tc.fails)
			}
			if got := readAll(t, l); len(got) != 5 {
				t.Fatalf("read %d batches on the failing disk, want the 5 written before", len(got))
			}
			tc.clear(fsys)
			res := mustAppend(t, l, makeBatch(1, 500, 1, 'y'), AppendOptions{Sync: true})
			if res.BaseOffset != 5 {
				t.Fatalf("first append after the fault at offset %d, want 5", res.BaseOffset)
			}
			if n := logs.count("partition writable again"); n != 1 {
				t.Fatalf("%d writable-again log lines, want 1", n)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = openMemStore(t, fsys, nil)
			defer st.Close()
			l, err = st.OpenLog("t-0", testConfig())
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, l); len(got) != 6 {
				t.Fatalf("read %d batches after restart, want 6", len(got))
			}
		})
	}
}

// TestFsyncFailureKeepsReadsAndAckedData: after a failed fsync the log
// refuses appends (ErrLogFailed) until reopened, as Kafka takes the log
// directory offline, while acknowledged data stays readable and survives
// the restart.
func TestFsyncFailureKeepsReadsAndAckedData(t *testing.T) {
	fsys := NewMemFS()
	logs := &lockedBuffer{}
	st := openMemStore(t, fsys, logs)
	l, err := st.OpenLog("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		mustAppend(t, l, makeBatch(2, 100, 1, byte('a'+i)), AppendOptions{Sync: true})
	}
	fsys.FailSync(1, syscall.EIO)
	if _, err := l.Append(makeBatch(1, 100, 1, 'x'), AppendOptions{Sync: true}); !errors.Is(err, ErrLogFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing fsync: %v", err)
	}
	if _, err := l.Append(makeBatch(1, 100, 1, 'x'), AppendOptions{Sync: true}); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append on the failed log: %v", err)
	}
	if got := readAll(t, l); len(got) != 4 {
		t.Fatalf("read %d batches from the failed log, want the 4 acknowledged", len(got))
	}
	if n := logs.count("flush failed"); n != 1 {
		t.Fatalf("%d flush failure log lines, want 1", n)
	}
	_ = st.Close() // fails: the log cannot flush
	st = openMemStore(t, fsys, nil)
	defer st.Close()
	l, err = st.OpenLog("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l); len(got) < 4 || got[3].LastOffset() != 7 {
		t.Fatalf("acknowledged data after restart: %d batches", len(got))
	}
	mustAppend(t, l, makeBatch(1, 100, 1, 'y'), AppendOptions{Sync: true})
}

// TestIndexWriteFailureAtRollKeepsLogWritable is the regression test for a
// full disk while a rolled segment's index files were written: that failed
// the whole log until restart, though the data was durable and a missing
// index is only rebuilt. Now the index is written at a later flush or at
// Close.
func TestIndexWriteFailureAtRollKeepsLogWritable(t *testing.T) {
	fsys := NewMemFS()
	st := openMemStore(t, fsys, nil)
	cfg := testConfig()
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := batchOfSize(1000, 1)
	for range 4 {
		mustAppend(t, l, batchOfSize(1000, 1), AppendOptions{Sync: true})
	}
	// The next append rolls: its data is write 1, the rolled segment's time
	// index (temp file) write 2.
	fsys.FailWrite(2, syscall.ENOSPC)
	if _, err := l.Append(b, AppendOptions{Sync: true}); err != nil {
		t.Fatalf("append whose roll could not write the old segment's index: %v", err)
	}
	mustAppend(t, l, batchOfSize(1000, 1), AppendOptions{Sync: true})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat("/data/t-0/" + segmentName(0) + timeIndexExt); err != nil {
		t.Fatalf("rolled segment's time index after close: %v", err)
	}
	st = openMemStore(t, fsys, nil)
	defer st.Close()
	if l, err = st.OpenLog("t-0", cfg); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l); len(got) != 6 {
		t.Fatalf("%d batches after restart, want 6", len(got))
	}
	if err := checkIndexes(l); err != nil {
		t.Fatal(err)
	}
}

// TestFailedFlushWakesHighWatermarkWaiters is the regression test for
// acks=all producers that, after an fsync failed, waited for the high
// watermark until their request timed out instead of hearing
// KAFKA_STORAGE_ERROR: a failed flush now wakes Wait and Err says why.
func TestFailedFlushWakesHighWatermarkWaiters(t *testing.T) {
	fsys := NewMemFS()
	st := openMemStore(t, fsys, nil)
	defer st.Close()
	l, err := st.OpenLog("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, makeBatch(1, 10, 1, 'a'), AppendOptions{Sync: true})
	fsys.FailSync(1, syscall.EIO)
	l.mu.Lock()
	l.mu.flushing = true // hold off the background flush until we wait
	l.mu.Unlock()
	ch := l.Wait()
	mustAppend(t, l, makeBatch(1, 10, 1, 'b'), AppendOptions{}) // acks=all path: no Sync, wait for the high watermark
	l.mu.Lock()
	l.mu.flushing = false
	l.flushLocked()
	l.mu.Unlock()
	select {
	case <-ch:
	default:
		t.Fatal("the failed flush did not wake the high watermark waiters")
	}
	if err := l.Err(); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("Err after a failed flush: %v", err)
	}
	if hw := l.HighWatermark(); hw != 1 {
		t.Fatalf("high watermark %d after the failed flush, want 1", hw)
	}
}
