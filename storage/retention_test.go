package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func segmentBases(l *Log) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b []int64
	for _, s := range l.mu.segs {
		b = append(b, s.base)
	}
	return b
}

func TestDeleteRecordsBeforePersistsAcrossReopen(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(map[bool]string{true: "clean", false: "unclean"}[clean], func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig()
			st, l := reopen(t, dir, cfg)
			fillLog(t, l, 100, 1000)
			bases := segmentBases(l)
			mid := bases[2] + 1 // inside the third segment
			ls, err := l.DeleteRecordsBefore(mid)
			if err != nil || ls != mid {
				t.Fatalf("DeleteRecordsBefore: %d %v", ls, err)
			}
			if got := segmentBases(l); got[0] != bases[2] {
				t.Fatalf("first segment %d, want %d", got[0], bases[2])
			}
			if n := len(segmentFiles(t, l.Dir(), logExt)); n != len(bases)-2 {
				t.Fatalf("%d segment files, want %d", n, len(bases)-2)
			}
			if _, err := l.DeleteRecordsBefore(l.HighWatermark() + 1); !isOutOfRange(err) {
				t.Fatalf("beyond high watermark: %v", err)
			}
			if ls, err := l.DeleteRecordsBefore(1); err != nil || ls != mid {
				t.Fatalf("moving back: %d %v", ls, err)
			}
			if clean {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crash(t, st)
			}
			_, l = reopen(t, dir, cfg)
			if got := l.LogStartOffset(); got != mid {
				t.Fatalf("log start %d after reopen, want %d", got, mid)
			}
			if _, err := l.Read(mid-1, 100, true); !isOutOfRange(err) {
				t.Fatalf("read below start: %v", err)
			}
			readAll(t, l)
		})
	}
}

func TestDeleteRecordsBeforeEverything(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	fillLog(t, l, 60, 1000)
	leo := l.LogEndOffset()
	if ls, err := l.DeleteRecordsBefore(leo); err != nil || ls != leo {
		t.Fatalf("%d %v", ls, err)
	}
	if got := segmentBases(l); len(got) != 1 || got[0] != leo {
		t.Fatalf("segments %v, want one empty at %d", got, leo)
	}
	if l.Size() != 0 {
		t.Fatalf("size %d", l.Size())
	}
	if rr, err := l.Read(leo, 100, true); err != nil || rr.Records != nil {
		t.Fatalf("%+v %v", rr, err)
	}
	if _, ok, err := l.MaxTimestampBatch(); ok || err != nil {
		t.Fatal(ok, err)
	}
	res := mustAppend(t, l, makeBatch(1, 1, 1, 'a'), AppendOptions{Sync: true})
	if res.BaseOffset != leo || res.LogStartOffset != leo {
		t.Fatalf("%+v", res)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, l = reopen(t, dir, cfg)
	if l.LogStartOffset() != leo || l.LogEndOffset() != leo+1 {
		t.Fatalf("start %d end %d", l.LogStartOffset(), l.LogEndOffset())
	}
}

// The checkpoint says the start is beyond the data (segment deletions were
// lost in a crash): the log starts over, empty, at the start offset.
func TestLogStartCheckpointBeyondData(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	st, l := reopen(t, dir, cfg)
	fillLog(t, l, 10, 1000)
	logDir := l.Dir()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(logDir, logStartFile), []byte("500\n")); err != nil {
		t.Fatal(err)
	}
	_, l = reopen(t, dir, cfg)
	if l.LogStartOffset() != 500 || l.LogEndOffset() != 500 || l.HighWatermark() != 500 {
		t.Fatalf("start %d end %d hw %d", l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark())
	}
	if res := mustAppend(t, l, makeBatch(1, 1, 1, 'a'), AppendOptions{Sync: true}); res.BaseOffset != 500 {
		t.Fatalf("%+v", res)
	}
}

func TestRetentionByTime(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionMs = 1000
	_, l := openTestLog(t, cfg)
	// Timestamps 10_000 + 10*i: each segment covers a range of them.
	for i := 0; i < 100; i++ {
		mustAppend(t, l, batchOfSize(500, int64(10_000+10*i)), AppendOptions{Sync: i == 99})
	}
	bases := segmentBases(l)
	if len(bases) < 10 {
		t.Fatalf("%d segments", len(bases))
	}
	// Segments whose largest timestamp is before 10_500 are expired at 11_500.
	n, err := l.EnforceRetention(time.UnixMilli(11_500))
	if err != nil {
		t.Fatal(err)
	}
	// Eight batches per segment: segment k's largest timestamp is
	// 10_000+10*(8k+7), expired at 11_500 for k <= 5.
	left := segmentBases(l)
	if n != 6 || left[0] != 48 || len(left) != len(bases)-6 {
		t.Fatalf("deleted %d of %v, left %v", n, bases, left)
	}
	if ls := l.LogStartOffset(); ls != 48 {
		t.Fatalf("log start %d, want 48", ls)
	}
	if n, _ := l.EnforceRetention(time.UnixMilli(11_500)); n != 0 {
		t.Fatalf("second run deleted %d", n)
	}
	// Everything expired: the active segment is rolled, then all go.
	leo := l.LogEndOffset()
	n, err = l.EnforceRetention(time.UnixMilli(1 << 40))
	if err != nil || n != len(left) {
		t.Fatalf("deleted %d of %d: %v", n, len(left), err)
	}
	if got := segmentBases(l); len(got) != 1 || got[0] != leo || l.LogStartOffset() != leo {
		t.Fatalf("segments %v, start %d, want one at %d", got, l.LogStartOffset(), leo)
	}
	if n, err := l.EnforceRetention(time.UnixMilli(1 << 40)); n != 0 || err != nil {
		t.Fatalf("empty active segment deleted: %d %v", n, err)
	}
}

func TestRetentionByBytes(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2000 // four 500-byte batches per segment
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 5000
	_, l := openTestLog(t, cfg)
	for i := 0; i < 40; i++ { // 10 segments of 2000 bytes
		mustAppend(t, l, batchOfSize(500, 1), AppendOptions{Sync: i == 39})
	}
	if got := len(segmentBases(l)); got != 10 {
		t.Fatalf("%d segments", got)
	}
	// 20000 bytes, 15000 over: seven whole segments go, leaving 6000.
	n, err := l.EnforceRetention(time.Now())
	if err != nil || n != 7 {
		t.Fatalf("deleted %d: %v", n, err)
	}
	if l.Size() != 6000 || l.LogStartOffset() != 28 {
		t.Fatalf("size %d, start %d", l.Size(), l.LogStartOffset())
	}
	if n, _ := l.EnforceRetention(time.Now()); n != 0 {
		t.Fatalf("second run deleted %d", n)
	}
	readAll(t, l)
}

// Retention never deletes what readers cannot see yet: in durable mode,
// segments at or above the high watermark stay.
func TestRetentionStopsAtHighWatermark(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionMs = 0
	_, l := openTestLog(t, cfg)
	l.mu.Lock()
	l.mu.flushing = true // hold off fsyncs
	l.mu.flushDone = make(chan struct{})
	l.mu.Unlock()
	mustAppend(t, l, batchOfSize(3000, 1), AppendOptions{})
	mustAppend(t, l, batchOfSize(3000, 1), AppendOptions{}) // rolls; nothing durable
	n, err := l.EnforceRetention(time.Now())
	if err != nil || n != 0 {
		t.Fatalf("deleted %d above the high watermark: %v", n, err)
	}
	l.mu.Lock()
	l.mu.flushing = false
	close(l.mu.flushDone)
	l.mu.Unlock()
	checkFor(t, 5*time.Second, func() error {
		if hw := l.HighWatermark(); hw != 2 {
			return errors.New("not flushed")
		}
		return nil
	})
	if n, err := l.EnforceRetention(time.Now()); err != nil || n != 2 {
		t.Fatalf("deleted %d: %v", n, err)
	}
}

// A read holding a segment keeps working while retention deletes it.
func TestReadOfDeletedSegmentInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionMs = 0
	_, l := openTestLog(t, cfg)
	for i := 0; i < 3; i++ {
		mustAppend(t, l, batchOfSize(3000, 1), AppendOptions{Sync: true})
	}
	l.mu.Lock()
	p := l.partLocked(l.mu.segs[0], l.mu.hw) // as a Read in flight would
	l.mu.Unlock()
	if n, err := l.EnforceRetention(time.Now()); err != nil || n != 3 {
		t.Fatalf("deleted %d: %v", n, err)
	}
	if _, err := os.Stat(p.s.path + logExt); !os.IsNotExist(err) {
		t.Fatal("segment file not removed")
	}
	if err := p.open(); err != nil { // a reader opens its file after taking the segment
		t.Fatal(err)
	}
	pos, h, found, err := l.seek(p, 0)
	if err != nil || !found || pos != 0 || h.Size() != 3000 {
		t.Fatalf("read of deleted segment: %v %v", found, err)
	}
	p.done()
}
