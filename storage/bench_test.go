package storage

import (
	"math/rand/v2"
	"testing"
	"time"
)

const benchBatchSize = 1024

func benchConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 20
	return cfg
}

// BenchmarkAppend appends 1 KiB batches. Append rewrites only the base
// offset, which the CRC does not cover, so one buffer serves every append.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		durable  bool
		sync     bool
		parallel bool
	}{
		{"durable/nosync", true, false, false}, // acks=0: background group commit
		{"durable/sync", true, true, false},    // acks=1/all, one producer: an fsync per append
		{"durable/sync-par", true, true, true}, // acks=1/all, GOMAXPROCS*16 producers share fsyncs
		{"pagecache/sync", false, true, false}, // Durable=false: Kafka's default, no fsync
		{"pagecache/par", false, false, true},  // lock contention only
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := benchConfig()
			cfg.Durable = bc.durable
			_, l := openTestLog(b, cfg)
			opts := AppendOptions{Sync: bc.sync}
			b.SetBytes(benchBatchSize)
			b.ReportAllocs()
			if bc.parallel {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					batch := batchOfSize(benchBatchSize, time.Now().UnixMilli())
					for pb.Next() {
						if _, err := l.Append(batch, opts); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				batch := batchOfSize(benchBatchSize, time.Now().UnixMilli())
				for b.Loop() {
					if _, err := l.Append(batch, opts); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			if n := l.fsyncs.Load(); n > 0 {
				b.ReportMetric(float64(b.N)/float64(n), "appends/fsync")
			}
		})
	}
}

// BenchmarkRead reads from a 64 MiB log of 1 KiB batches spread over 16
// segments, from the page cache.
func BenchmarkRead(b *testing.B) {
	cfg := benchConfig()
	cfg.SegmentBytes = 4 << 20
	_, l := openTestLog(b, cfg)
	batch := batchOfSize(benchBatchSize, 1)
	const n = 64 << 10
	for i := 0; i < n; i++ {
		if _, err := l.Append(batch, AppendOptions{Sync: i == n-1}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("seq-1MiB", func(b *testing.B) {
		off := int64(0)
		b.SetBytes(1 << 20)
		b.ReportAllocs()
		for b.Loop() {
			rr, err := l.Read(off, 1<<20, true)
			if err != nil {
				b.Fatal(err)
			}
			off += int64(len(rr.Records) / benchBatchSize)
			if off >= n {
				off = 0
			}
		}
	})
	b.Run("random-1batch", func(b *testing.B) {
		// A consumer fetching one batch at a random offset: index seek plus
		// header scan plus one pread.
		rng := rand.New(rand.NewPCG(1, 1))
		b.SetBytes(benchBatchSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Read(rng.Int64N(n), benchBatchSize, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel-64KiB", func(b *testing.B) {
		b.SetBytes(64 << 10)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
			for pb.Next() {
				if _, err := l.Read(rng.Int64N(n), 64<<10, true); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
