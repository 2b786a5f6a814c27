package storage

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// BenchmarkOpenManyPartitions measures start-up over SKIFF_BENCH_PARTITIONS
// partitions (default 1000) of 10 segments each: the time to open every log
// after a clean stop and after a crash (with a recovery point checkpoint),
// and the file descriptors held while they are open. Run with
// -benchtime=1x; it writes about 10 MiB per 100 partitions.
func BenchmarkOpenManyPartitions(b *testing.B) {
	parts := 1000
	if s := os.Getenv("SKIFF_BENCH_PARTITIONS"); s != "" {
		fmt.Sscan(s, &parts)
	}
	cfg := DefaultConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.Durable = false // fill fast; rolls still fsync
	dir := b.TempDir()
	st := openTestStore(b, dir)
	batch := batchOfSize(1000, time.Now().UnixMilli())
	for p := range parts {
		l, err := st.OpenLog(fmt.Sprintf("t-%d", p), cfg)
		if err != nil {
			b.Fatal(err)
		}
		for range 80 { // 10 segments of 8 batches
			if _, err := l.Append(batch, AppendOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	fds := func() int {
		es, _ := os.ReadDir("/proc/self/fd")
		return len(es)
	}
	openAll := func() (*Store, time.Duration) {
		start := time.Now()
		st := openTestStore(b, dir)
		for p := range parts {
			if _, err := st.OpenLog(fmt.Sprintf("t-%d", p), cfg); err != nil {
				b.Fatal(err)
			}
		}
		return st, time.Since(start)
	}
	for range b.N {
		before := fds()
		st, clean := openAll()
		held := fds() - before
		crash(b, st)
		st, unclean := openAll()
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(clean.Milliseconds()), "ms-clean")
		b.ReportMetric(float64(unclean.Milliseconds()), "ms-after-crash")
		b.ReportMetric(float64(held), "fds")
		b.ReportMetric(float64(parts*10), "segments")
	}
}
