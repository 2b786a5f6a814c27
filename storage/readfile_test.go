package storage

import (
	"bytes"
	"errors"
	"math"
	"os"
	"testing"
	"time"
)

// fileBytes reads what the ranges of fr name.
func fileBytes(t testing.TB, fr FileRead) []byte {
	t.Helper()
	var out []byte
	for _, r := range fr.Ranges {
		b := make([]byte, r.Len)
		if _, err := r.File.ReadAt(b, r.Offset); err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	if int64(len(out)) != fr.Size {
		t.Fatalf("ranges hold %d bytes, Size says %d", len(out), fr.Size)
	}
	return out
}

// TestReadFileMatchesRead checks that ReadFile names exactly the bytes Read
// returns, across segments and for every offset and many byte limits.
func TestReadFileMatchesRead(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	fillLog(t, l, 120, 1000)
	hw := l.HighWatermark()
	for off := int64(0); off < hw; off += 7 {
		for _, maxBytes := range []int{0, 1, 100, 300, 1000, 4096, 9000, 1 << 20} {
			for _, minOne := range []bool{false, true} {
				rr, err := l.Read(off, maxBytes, minOne)
				if err != nil {
					t.Fatal(err)
				}
				fr, err := l.ReadFile(off, maxBytes, minOne, math.MaxInt64)
				if err != nil {
					t.Fatal(err)
				}
				got := fileBytes(t, fr)
				fr.Release()
				if !bytes.Equal(got, rr.Records) {
					t.Fatalf("offset %d max %d minOne %v: ReadFile %d bytes, Read %d", off, maxBytes, minOne, len(got), len(rr.Records))
				}
				if len(got) > 0 {
					hs := batches(t, got)
					if last := hs[len(hs)-1].LastOffset(); fr.NextOffset <= last {
						t.Fatalf("NextOffset %d not beyond last offset %d", fr.NextOffset, last)
					}
				}
				if fr.HighWatermark != rr.HighWatermark || fr.LogStartOffset != rr.LogStartOffset {
					t.Fatalf("offsets differ: %+v %+v", fr, rr)
				}
			}
		}
	}
}

// TestReadFileStopsAtUpTo checks the read_committed cut: no batch whose
// base offset is upTo or more.
func TestReadFileStopsAtUpTo(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	fillLog(t, l, 60, 1000)
	hw := l.HighWatermark()
	for upTo := int64(0); upTo <= hw; upTo += 5 {
		fr, err := l.ReadFile(0, 1<<20, true, upTo)
		if err != nil {
			t.Fatal(err)
		}
		got := fileBytes(t, fr)
		fr.Release()
		rr, err := l.Read(0, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, h := range batches(t, rr.Records) {
			if h.BaseOffset >= upTo {
				break
			}
			want += h.Size()
		}
		if !bytes.Equal(got, rr.Records[:want]) {
			t.Fatalf("upTo %d: %d bytes, want %d", upTo, len(got), want)
		}
		if want > 0 && fr.NextOffset > upTo {
			t.Fatalf("upTo %d: NextOffset %d beyond it", upTo, fr.NextOffset)
		}
	}
}

// TestReadFileOfDeletedSegmentInFlight: retention deletes every segment a
// FileRead names; the ranges stay readable, with the same bytes, until
// Release, which closes the files.
func TestReadFileOfDeletedSegmentInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionMs = 0
	_, l := openTestLog(t, cfg)
	for i := 0; i < 3; i++ {
		mustAppend(t, l, batchOfSize(3000, 1), AppendOptions{Sync: true})
	}
	fr, err := l.ReadFile(0, 1<<20, true, math.MaxInt64)
	if err != nil || len(fr.Ranges) != 3 {
		t.Fatalf("ReadFile: %d ranges, %v", len(fr.Ranges), err)
	}
	before := fileBytes(t, fr)
	if n, err := l.EnforceRetention(time.Now()); err != nil || n != 3 {
		t.Fatalf("deleted %d: %v", n, err)
	}
	if len(segmentFiles(t, l.Dir(), logExt)) != 1 {
		t.Fatal("segment files not removed")
	}
	if after := fileBytes(t, fr); !bytes.Equal(before, after) {
		t.Fatal("bytes of a deleted segment changed while a read held it")
	}
	f := fr.Ranges[0].File
	fr.Release()
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("file not closed after the last reference went: %v", err)
	}
}
