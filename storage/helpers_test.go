package storage

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/protocol"
)

// makeBatch builds a valid uncompressed v2 batch of n records, each with a
// value of valueSize bytes (filled with fill), all with timestamp ts.
func makeBatch(n, valueSize int, ts int64, fill byte) []byte {
	var recs []byte
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = fill
	}
	for i := 0; i < n; i++ {
		var r []byte
		r = append(r, 0)                             // attributes
		r = binary.AppendVarint(r, 0)                // timestamp delta
		r = binary.AppendVarint(r, int64(i))         // offset delta
		r = binary.AppendVarint(r, -1)               // null key
		r = binary.AppendVarint(r, int64(valueSize)) // value length
		r = append(r, value...)
		r = binary.AppendVarint(r, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := make([]byte, protocol.BatchHeaderSize, protocol.BatchHeaderSize+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(protocol.BatchHeaderSize-12+len(recs)))
	b[16] = 2                         // magic
	be.PutUint32(b[23:], uint32(n-1)) // last offset delta
	be.PutUint64(b[27:], uint64(ts))  // base timestamp
	be.PutUint64(b[35:], uint64(ts))  // max timestamp
	be.PutUint64(b[43:], ^uint64(0))  // producer id -1
	be.PutUint16(b[51:], 0xffff)      // producer epoch -1
	be.PutUint32(b[53:], 0xffffffff)  // base sequence -1
	be.PutUint32(b[57:], uint32(n))   // record count
	b = append(b, recs...)
	protocol.UpdateCRC(b)
	return b
}

// batchOfSize returns a one-record batch of exactly size bytes (size >= 72).
func batchOfSize(size int, ts int64) []byte {
	for v := size - 72; v <= size; v++ {
		if b := makeBatch(1, max(v, 0), ts, 'x'); len(b) == size {
			return b
		}
	}
	panic("no batch of that size")
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 256
	return cfg
}

func openTestStore(t testing.TB, dir string) *Store {
	t.Helper()
	st, err := OpenStore(dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openTestLog opens a store in a temp dir and a log "t-0" in it, closed by
// t.Cleanup.
func openTestLog(t testing.TB, cfg Config) (*Store, *Log) {
	t.Helper()
	st := openTestStore(t, t.TempDir())
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, l
}

// crash simulates the process dying: goroutines stop and files close, but
// nothing is flushed, no index is written, and no clean-shutdown marker.
func crash(t testing.TB, st *Store) {
	t.Helper()
	st.mu.Lock()
	st.mu.closed = true
	logs := st.mu.logs
	st.mu.Unlock()
	close(st.quit)
	st.bg.Wait()
	for _, l := range logs {
		if l != nil {
			_ = l.close(false)
		}
	}
	_ = st.lock.Close()
}

func mustAppend(t testing.TB, l *Log, b []byte, opts AppendOptions) AppendResult {
	t.Helper()
	res, err := l.Append(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// batches splits records into validated batch headers.
func batches(t testing.TB, records []byte) []protocol.BatchHeader {
	t.Helper()
	var hs []protocol.BatchHeader
	for p := 0; p < len(records); {
		h, err := protocol.ValidateBatch(records[p:])
		if err != nil {
			t.Fatalf("batch at %d: %v", p, err)
		}
		hs = append(hs, h)
		p += h.Size()
	}
	return hs
}

// readAll reads the whole visible log and checks that offsets are contiguous.
func readAll(t testing.TB, l *Log) []protocol.BatchHeader {
	t.Helper()
	var all []protocol.BatchHeader
	off := l.LogStartOffset()
	for {
		rr, err := l.Read(off, 10000, true)
		if err != nil {
			t.Fatal(err)
		}
		if rr.Records == nil {
			if off != rr.HighWatermark {
				t.Fatalf("no records at %d below high watermark %d", off, rr.HighWatermark)
			}
			return all
		}
		for _, h := range batches(t, rr.Records) {
			if len(all) > 0 && h.BaseOffset != all[len(all)-1].LastOffset()+1 {
				t.Fatalf("gap: batch at %d after %d", h.BaseOffset, all[len(all)-1].LastOffset())
			}
			all = append(all, h)
			off = h.LastOffset() + 1
		}
	}
}

// checkFor polls cond until it holds or the deadline passes.
func checkFor(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

func segmentFiles(t testing.TB, dir, ext string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func appendToFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func isOutOfRange(err error) bool { return errors.Is(err, ErrOffsetOutOfRange) }
