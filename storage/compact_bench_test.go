package storage

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/skiffmq/skiff/protocol"
)

// BenchmarkCompact1MRecords10kKeys cleans a log of 1M records (100-byte
// values, 100 per uncompressed batch) over 10k keys in one pass and
// reports records/s and MB/s of the log read, with the descriptors and
// heap the cleaning held at its swap steps.
func BenchmarkCompact1MRecords10kKeys(b *testing.B) {
	const records, keys, perBatch = 1_000_000, 10_000, 100
	value := make([]byte, 100)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		clock := &fakeClock{}
		clock.set(time.Now().UnixMilli())
		st := compactStore(b, b.TempDir(), clock)
		cfg := DefaultConfig()
		cfg.Compact, cfg.SegmentBytes = true, 64<<20
		l, err := st.OpenLog("t-0", cfg)
		if err != nil {
			b.Fatal(err)
		}
		ts := clock.Now().UnixMilli()
		for r := 0; r < records; r += perBatch {
			recs := make([]kv, perBatch)
			for j := range recs {
				recs[j] = kv{key: fmt.Sprintf("key-%05d", (r+j)%keys), value: value}
			}
			if _, err := l.Append(keyedBatch(b, ts, protocol.CodecNone, -1, 0, false, recs...), AppendOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		mustAppend(b, l, keyedBatch(b, ts, protocol.CodecNone, -1, 0, false, kv{key: "x", value: make([]byte, 65<<20)}), AppendOptions{Sync: true})
		size := l.Size()
		runtime.GC()
		var m0 runtime.MemStats
		runtime.ReadMemStats(&m0)
		maxFDs, maxHeap := 0, uint64(0)
		compactCrashAt = func(string) bool {
			if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
				maxFDs = max(maxFDs, len(ents))
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			maxHeap = max(maxHeap, m.HeapAlloc)
			return false
		}
		fds0 := 0
		if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
			fds0 = len(ents)
		}
		b.StartTimer()
		start := time.Now()
		s, err := l.Compact(clock.Now())
		took := time.Since(start)
		b.StopTimer()
		compactCrashAt = nil
		if err != nil || !s.Cleaned || s.RecordsKept > keys {
			b.Fatalf("compact: %+v %v", s, err)
		}
		b.ReportMetric(float64(s.RecordsRead)/took.Seconds(), "records/s")
		b.ReportMetric(float64(size-(65<<20))/took.Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(maxFDs-fds0), "extra-fds")
		b.ReportMetric(float64(int64(maxHeap)-int64(m0.HeapAlloc))/1e6, "heap-MB")
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
