package storage

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffmq/skiff/protocol"
)

// vmRSS is the process's resident set in bytes, from /proc (0 elsewhere).
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkProducerState200k: 200,000 idempotent producers write one or
// five batches each to one log (Hardening finding 9). Reports what their
// state costs: heap and RSS growth, the snapshot's size, and how long a
// close (snapshot write and fsync) takes. Run with -benchtime=1x.
func BenchmarkProducerState200k(b *testing.B) {
	for _, n := range []int32{1, 5} {
		b.Run("batches="+strconv.Itoa(int(n)), func(b *testing.B) { benchProducerState(b, 200_000, n) })
	}
}

func benchProducerState(b *testing.B, producers int64, batches int32) {
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		st := openTestStore(b, dir)
		l, err := st.OpenLog("t-0", DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		batch := makeBatch(1, 8, time.Now().UnixMilli(), 'p')
		runtime.GC()
		var m0 runtime.MemStats
		runtime.ReadMemStats(&m0)
		rss0 := vmRSS()
		for seq := range batches {
			for pid := int64(1); pid <= producers; pid++ {
				binary.BigEndian.PutUint64(batch[43:], uint64(pid))
				binary.BigEndian.PutUint16(batch[51:], 0)
				binary.BigEndian.PutUint32(batch[53:], uint32(seq))
				protocol.UpdateCRC(batch)
				if _, err := l.Append(batch, AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		rss1 := vmRSS()
		b.StartTimer()
		start := time.Now()
		if err := l.Close(); err != nil { // writes the snapshot
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "close-ms")
		b.StopTimer()
		snap := int64(0)
		for _, name := range []string{"producer-state.snapshot", "producer-state.json"} {
			if fi, err := os.Stat(filepath.Join(l.Dir(), name)); err == nil {
				snap += fi.Size()
			}
		}
		b.ReportMetric(float64(snap)/(1<<20), "snapshot-MiB")
		b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/float64(producers), "heap-B/producer")
		b.ReportMetric(float64(rss1-rss0)/(1<<20), "rss-growth-MiB")
		_ = st.Close()
	}
}
