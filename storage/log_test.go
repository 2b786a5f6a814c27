package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffmq/skiff/protocol"
)

func TestAppendReadRoundTripManySegments(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	type sent struct {
		base int64
		b    []byte
	}
	var want []sent
	for i := 0; i < 400; i++ {
		b := makeBatch(1+rng.IntN(5), rng.IntN(300), int64(1000+i), byte(i))
		res := mustAppend(t, l, b, AppendOptions{Sync: i%10 == 0, LeaderEpoch: 3})
		h, _ := protocol.ParseBatchHeader(b)
		if res.BaseOffset != h.BaseOffset || res.LastOffset != h.LastOffset() {
			t.Fatalf("append %d: result %+v, batch says %d..%d", i, res, h.BaseOffset, h.LastOffset())
		}
		want = append(want, sent{res.BaseOffset, bytes.Clone(b)})
	}
	checkFor(t, 5*time.Second, func() error {
		if hw, leo := l.HighWatermark(), l.LogEndOffset(); hw != leo {
			return fmt.Errorf("high watermark %d, log end %d", hw, leo)
		}
		return nil
	})
	if n := len(segmentFiles(t, l.Dir(), logExt)); n < 10 {
		t.Fatalf("only %d segments", n)
	}
	// Every offset reads back the batch that contains it, byte for byte.
	for i, w := range want {
		h, _ := protocol.ParseBatchHeader(w.b)
		for off := w.base; off <= h.LastOffset(); off++ {
			rr, err := l.Read(off, 1, true)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rr.Records, w.b) {
				t.Fatalf("read %d (batch %d): got %d bytes, want the batch at %d", off, i, len(rr.Records), w.base)
			}
			if got := batches(t, rr.Records)[0].PartitionLeaderEpoch; got != 3 {
				t.Fatalf("leader epoch %d", got)
			}
		}
	}
	// One big read crosses segments and returns everything in order.
	rr, err := l.Read(0, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, w := range want {
		all = append(all, w.b...)
	}
	if !bytes.Equal(rr.Records, all) {
		t.Fatalf("full read: %d bytes, want %d", len(rr.Records), len(all))
	}
}

func TestReadSeeksThroughOffsetIndex(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.IndexIntervalBytes = 0 // an entry for every batch but the first
	_, l := openTestLog(t, cfg)
	for i := 0; i < 200; i++ {
		mustAppend(t, l, makeBatch(2, 10, 1, 'a'), AppendOptions{Sync: i == 199})
	}
	l.mu.Lock()
	s := l.activeLocked()
	idx := s.offIdx
	l.mu.Unlock()
	if len(idx) != 199 {
		t.Fatalf("%d index entries, want 199", len(idx))
	}
	size := int64(len(makeBatch(2, 10, 1, 'a')))
	for off := int64(0); off < 400; off++ {
		// The entry found is for the batch holding off or the one before.
		pos := lookupOffset(idx, uint32(off))
		if batch := off / 2; pos != batch*size && pos != (batch-1)*size && !(batch == 0 && pos == 0) {
			t.Fatalf("offset %d: index position %d", off, pos)
		}
		rr, err := l.Read(off, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		if h := batches(t, rr.Records)[0]; h.BaseOffset != off/2*2 {
			t.Fatalf("read %d got batch at %d", off, h.BaseOffset)
		}
	}
}

func TestReadMaxBytesAndMinOne(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	b := batchOfSize(500, 1)
	for i := 0; i < 5; i++ {
		mustAppend(t, l, bytes.Clone(b), AppendOptions{Sync: true})
	}
	for _, tc := range []struct {
		maxBytes int
		minOne   bool
		want     int // batches
	}{
		{499, false, 0},
		{499, true, 1},
		{0, true, 1},
		{500, false, 1},
		{999, false, 1},
		{1000, false, 2},
		{1 << 20, false, 5},
	} {
		rr, err := l.Read(0, tc.maxBytes, tc.minOne)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(rr.Records) / 500; got != tc.want || len(rr.Records)%500 != 0 {
			t.Errorf("Read(0, %d, %v): %d bytes, want %d batches", tc.maxBytes, tc.minOne, len(rr.Records), tc.want)
		}
		if tc.want == 0 && rr.Records != nil {
			t.Errorf("Read(0, %d, %v): want nil records", tc.maxBytes, tc.minOne)
		}
	}
}

func TestReadOutOfRange(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	for i := 0; i < 3; i++ {
		mustAppend(t, l, makeBatch(2, 5, 1, 'a'), AppendOptions{Sync: true})
	}
	if _, err := l.Read(-1, 100, true); !isOutOfRange(err) {
		t.Fatalf("offset -1: %v", err)
	}
	if _, err := l.Read(7, 100, true); !isOutOfRange(err) {
		t.Fatalf("offset 7: %v", err)
	}
	rr, err := l.Read(6, 100, true)
	if err != nil || rr.Records != nil || rr.HighWatermark != 6 {
		t.Fatalf("offset == high watermark: %+v, %v", rr, err)
	}
	if _, err := l.DeleteRecordsBefore(4); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(3, 100, true); !isOutOfRange(err) {
		t.Fatalf("below log start: %v", err)
	}
	rr, err = l.Read(5, 100, true)
	if err != nil || batches(t, rr.Records)[0].BaseOffset != 4 || rr.LogStartOffset != 4 {
		t.Fatalf("at log start: %+v, %v", rr, err)
	}
}

func TestAppendRejectsCorruptBatchWritingNothing(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	mustAppend(t, l, makeBatch(1, 10, 1, 'a'), AppendOptions{Sync: true})
	good := makeBatch(1, 10, 1, 'b')
	bad := makeBatch(1, 10, 1, 'c')
	bad[len(bad)-1] ^= 0xff // the CRC no longer matches
	for _, tc := range []struct {
		name    string
		records []byte
		want    error
	}{
		{"crc", append(bytes.Clone(good), bad...), protocol.ErrBatchCRC},
		{"truncated", append(bytes.Clone(good), good[:30]...), protocol.ErrBatchTruncated},
		{"empty", nil, protocol.ErrBatchTruncated},
		{"count", func() []byte { b := makeBatch(2, 1, 1, 'd'); b[60] = 5; protocol.UpdateCRC(b); return b }(), protocol.ErrBatchOffsetDelta},
	} {
		if _, err := l.Append(tc.records, AppendOptions{Sync: true}); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if leo, size := l.LogEndOffset(), l.Size(); leo != 1 || size != int64(len(good)) {
		t.Fatalf("after rejected appends: log end %d, size %d", leo, size)
	}
	if got := readAll(t, l); len(got) != 1 {
		t.Fatalf("%d batches", len(got))
	}
}

func TestLogAppendTime(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	b := append(makeBatch(1, 1, 5, 'a'), makeBatch(3, 1, 6, 'b')...)
	mustAppend(t, l, b, AppendOptions{LogAppendTime: 123456, Sync: true})
	rr, err := l.Read(0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	hs := batches(t, rr.Records) // validates the rewritten CRCs
	if len(hs) != 2 {
		t.Fatalf("%d batches", len(hs))
	}
	for _, h := range hs {
		if !h.IsLogAppendTime() || h.MaxTimestamp != 123456 {
			t.Fatalf("batch %+v not rewritten to log append time", h)
		}
	}
}

func TestWaitWakesOnAppend(t *testing.T) {
	for _, durable := range []bool{true, false} {
		t.Run(fmt.Sprint("durable=", durable), func(t *testing.T) {
			cfg := testConfig()
			cfg.Durable = durable
			_, l := openTestLog(t, cfg)
			ch := l.Wait()
			if ch2 := l.Wait(); ch2 != ch {
				t.Fatal("Wait made a new channel without an advance")
			}
			select {
			case <-ch:
				t.Fatal("woken without an append")
			default:
			}
			go func() { _, _ = l.Append(makeBatch(1, 1, 1, 'a'), AppendOptions{}) }() // acks=0: no waiting
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatal("Wait not woken by an append")
			}
			if hw := l.HighWatermark(); hw != 1 {
				t.Fatalf("high watermark %d", hw)
			}
		})
	}
}

func TestDurableHighWatermarkOnlyCoversSyncedData(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	l.mu.Lock()
	l.mu.flushing = true // hold off every fsync round
	l.mu.flushDone = make(chan struct{})
	l.mu.Unlock()
	mustAppend(t, l, makeBatch(1, 1, 1, 'a'), AppendOptions{})
	if hw, leo := l.HighWatermark(), l.LogEndOffset(); hw != 0 || leo != 1 {
		t.Fatalf("high watermark %d, log end %d before any fsync", hw, leo)
	}
	if rr, err := l.Read(0, 100, true); err != nil || rr.Records != nil {
		t.Fatalf("read of unflushed data: %v %v", rr.Records, err)
	}
	l.mu.Lock()
	l.mu.flushing = false
	close(l.mu.flushDone)
	l.mu.Unlock()
	checkFor(t, 5*time.Second, func() error {
		if hw := l.HighWatermark(); hw != 1 {
			return fmt.Errorf("high watermark %d", hw)
		}
		return nil
	})
}

func TestGroupCommitSharesFsyncs(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	const writers, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := l.Append(makeBatch(1, 50, 1, byte(w)), AppendOptions{Sync: true})
				if err != nil {
					errs <- err
					return
				}
				// Sync returns only once the high watermark covers the append.
				if hw := l.HighWatermark(); hw <= res.LastOffset {
					errs <- fmt.Errorf("acked offset %d above high watermark %d", res.LastOffset, hw)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fsyncs := l.fsyncs.Load()
	t.Logf("%d sync appends, %d fsyncs", writers*each, fsyncs)
	if fsyncs >= writers*each {
		t.Fatalf("%d fsyncs for %d appends: no group commit", fsyncs, writers*each)
	}
	if got := readAll(t, l); len(got) != writers*each {
		t.Fatalf("%d batches", len(got))
	}
}

func TestConcurrentAppendAndRead(t *testing.T) {
	cfg := testConfig()
	cfg.RetentionBytes = 20000
	_, l := openTestLog(t, cfg)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				if _, err := l.Append(makeBatch(1+i%3, 40, int64(i), 'w'), AppendOptions{Sync: i%2 == 0}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(0)
			for {
				ch := l.Wait()
				rr, err := l.Read(off, 3000, r%2 == 0)
				if isOutOfRange(err) { // retention moved the start
					off = rr.LogStartOffset
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				for p := 0; p < len(rr.Records); {
					h, err := protocol.ValidateBatch(rr.Records[p:])
					if err != nil {
						t.Error(err)
						return
					}
					if p == 0 && (h.BaseOffset > off || h.LastOffset() < off) {
						t.Errorf("read %d got batch %d..%d", off, h.BaseOffset, h.LastOffset())
						return
					}
					off = h.LastOffset() + 1
					p += h.Size()
				}
				if _, _, err := l.FindTimestamp(100); err != nil {
					t.Error(err)
					return
				}
				if rr.Records == nil {
					select {
					case <-ch:
					case <-stop:
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			ch := l.Wait()
			if _, err := l.EnforceRetention(time.Now()); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-stop:
				return
			case <-ch:
			}
		}
	}()
	checkFor(t, 30*time.Second, func() error {
		if leo := l.LogEndOffset(); leo < 4*600 {
			return fmt.Errorf("log end %d", leo)
		}
		return nil
	})
	close(stop)
	wg.Wait()
}

func TestRollBySegmentMs(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.SegmentMs = 1000
	_, l := openTestLog(t, cfg)
	mustAppend(t, l, makeBatch(1, 1, 10_000, 'a'), AppendOptions{})
	mustAppend(t, l, makeBatch(1, 1, 11_000, 'a'), AppendOptions{}) // exactly segment.ms later: no roll
	mustAppend(t, l, makeBatch(1, 1, 11_001, 'a'), AppendOptions{}) // older than segment.ms: roll
	mustAppend(t, l, makeBatch(1, 1, 11_002, 'a'), AppendOptions{})
	if n := len(segmentFiles(t, l.Dir(), logExt)); n != 2 {
		t.Fatalf("%d segments, want 2", n)
	}
	l.mu.Lock()
	base := l.activeLocked().base
	l.mu.Unlock()
	if base != 2 {
		t.Fatalf("active segment at %d, want 2", base)
	}
}

func TestFindTimestampAndMaxTimestamp(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	// Timestamps rise with a dip, across several segments.
	var tss []int64
	for i := 0; i < 200; i++ {
		ts := int64(1000 + 10*i)
		if i == 150 {
			ts = 500 // a late record
		}
		tss = append(tss, ts)
		mustAppend(t, l, makeBatch(1, 100, ts, 'a'), AppendOptions{Sync: i%50 == 0})
	}
	checkFor(t, 5*time.Second, func() error {
		if hw := l.HighWatermark(); hw != 200 {
			return fmt.Errorf("high watermark %d", hw)
		}
		return nil
	})
	for _, target := range []int64{0, 500, 999, 1000, 1001, 1500, 2490, 2990, 2991} {
		want := int64(-1)
		for off, ts := range tss {
			if ts >= target {
				want = int64(off)
				break
			}
		}
		b, ok, err := l.FindTimestamp(target)
		if err != nil {
			t.Fatal(err)
		}
		if want < 0 {
			if ok {
				t.Fatalf("FindTimestamp(%d) found a batch", target)
			}
			continue
		}
		if !ok {
			t.Fatalf("FindTimestamp(%d) found nothing, want offset %d", target, want)
		}
		if h := batches(t, b)[0]; h.BaseOffset != want {
			t.Fatalf("FindTimestamp(%d) = offset %d, want %d", target, h.BaseOffset, want)
		}
	}
	b, ok, err := l.MaxTimestampBatch()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if h := batches(t, b)[0]; h.MaxTimestamp != 2990 || h.BaseOffset != 199 {
		t.Fatalf("max timestamp batch %+v", h)
	}
	// Below the log start offset nothing is found.
	if _, err := l.DeleteRecordsBefore(100); err != nil {
		t.Fatal(err)
	}
	b, ok, err = l.FindTimestamp(0)
	if err != nil || !ok || batches(t, b)[0].BaseOffset != 100 {
		t.Fatalf("after delete: ok=%v err=%v", ok, err)
	}
}

func TestEmptyLog(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	if rr, err := l.Read(0, 100, true); err != nil || rr.Records != nil || rr.HighWatermark != 0 {
		t.Fatalf("%+v %v", rr, err)
	}
	if _, ok, err := l.FindTimestamp(0); ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok, err := l.MaxTimestampBatch(); ok || err != nil {
		t.Fatal(ok, err)
	}
	if n, err := l.EnforceRetention(time.Now().Add(1000 * time.Hour)); n != 0 || err != nil {
		t.Fatal(n, err)
	}
}

func TestClosedLog(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	mustAppend(t, l, makeBatch(1, 1, 1, 'a'), AppendOptions{Sync: true})
	ch := l.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	<-ch // Close wakes long polls
	if _, err := l.Append(makeBatch(1, 1, 1, 'a'), AppendOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := l.Read(0, 1, true); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestFsyncFailureFailsLog(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	mustAppend(t, l, makeBatch(1, 1, 1, 'a'), AppendOptions{Sync: true})
	l.mu.Lock()
	l.mu.fsync = func(File) error { return syscall.EIO }
	l.mu.Unlock()
	if _, err := l.Append(makeBatch(1, 1, 1, 'a'), AppendOptions{Sync: true}); !errors.Is(err, ErrLogFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with failing fsync: %v", err)
	}
	if _, err := l.Append(makeBatch(1, 1, 1, 'a'), AppendOptions{Sync: true}); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append on failed log: %v", err)
	}
	if hw := l.HighWatermark(); hw != 1 {
		t.Fatalf("high watermark %d moved past the failed fsync", hw)
	}
}

func TestPageCacheModeFlushRules(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.Durable = false
	cfg.FlushMessages = 10
	_, l := openTestLog(t, cfg)
	for i := 0; i < 25; i++ {
		res := mustAppend(t, l, makeBatch(1, 1, 1, 'a'), AppendOptions{Sync: true})
		if hw := l.HighWatermark(); hw != res.LastOffset+1 {
			t.Fatalf("high watermark %d, want the log end %d", hw, res.LastOffset+1)
		}
	}
	if n := l.fsyncs.Load(); n != 2 {
		t.Fatalf("%d fsyncs for 25 messages at flush.messages=10, want 2", n)
	}
	cfg.FlushMessages = 0
	cfg.FlushMs = 1
	l.SetConfig(cfg)
	mustAppend(t, l, makeBatch(1, 1, 1, 'a'), AppendOptions{})
	checkFor(t, 5*time.Second, func() error {
		if n := l.fsyncs.Load(); n < 3 {
			return fmt.Errorf("%d fsyncs, want flush.ms to add one", n)
		}
		return nil
	})
}

func TestSetConfigDurableToPageCache(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	l.mu.Lock()
	l.mu.flushing = true // hold off fsyncs
	l.mu.flushDone = make(chan struct{})
	l.mu.Unlock()
	mustAppend(t, l, makeBatch(1, 1, 1, 'a'), AppendOptions{})
	cfg := testConfig()
	cfg.Durable = false
	l.SetConfig(cfg)
	if hw := l.HighWatermark(); hw != 1 {
		t.Fatalf("high watermark %d after switching to page-cache mode", hw)
	}
	l.mu.Lock()
	l.mu.flushing = false
	close(l.mu.flushDone)
	l.mu.Unlock()
	bad := cfg
	bad.SegmentBytes = 0
	l.SetConfig(bad) // ignored
	l.mu.Lock()
	got := l.mu.cfg.SegmentBytes
	l.mu.Unlock()
	if got != cfg.SegmentBytes {
		t.Fatalf("invalid config applied: segment.bytes %d", got)
	}
}

// TestAppendValidatedSkipsOnlyTheCRC: with Validated the caller vouches for
// the CRC, but a batch that overruns the input is still refused.
func TestAppendValidatedSkipsOnlyTheCRC(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	bad := makeBatch(2, 10, 1000, 'v')
	bad[len(bad)-1] ^= 0xff // breaks the CRC
	if _, err := l.Append(append([]byte(nil), bad...), AppendOptions{}); err == nil {
		t.Fatal("a batch with a bad CRC was appended without Validated")
	}
	if _, err := l.Append(append([]byte(nil), bad...), AppendOptions{Validated: true}); err != nil {
		t.Fatalf("Validated append re-checked the CRC: %v", err)
	}
	cut := makeBatch(2, 10, 1000, 'v')
	if _, err := l.Append(cut[:len(cut)-3], AppendOptions{Validated: true}); err == nil {
		t.Fatal("a truncated batch was appended with Validated")
	}
}
