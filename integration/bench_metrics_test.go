package integration

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkMetricsOverhead measures what collecting metrics costs produce
// throughput (issue 14 asks for less than 3%): two Skiff brokers run side
// by side, one with metrics and one with skiff.metrics.enable=false, and
// the same producer load goes to each in alternating rounds (on, off, off,
// on, ...), so that the load of a shared machine falls on both alike.
func BenchmarkMetricsOverhead(b *testing.B) {
	const rounds = 6
	load := produceLoad{name: "100B", size: 100, records: 1_000_000}
	value := benchValue(load.size)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	type side struct {
		name    string
		cl      *kgo.Client
		elapsed time.Duration
		lats    []time.Duration
	}
	var sides [2]*side
	for i, on := range []bool{true, false} {
		addr := startBenchSkiff(b, map[string]string{"skiff.metrics.enable": fmt.Sprint(on)})
		cl := newClient(b, addr, kgo.DefaultProduceTopic(benchTopic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.MaxBufferedRecords(benchMaxBufferedRecords), kgo.MaxBufferedBytes(benchMaxBufferedBytes))
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			b.Fatalf("warm-up produce: %v", err)
		}
		sides[i] = &side{name: map[bool]string{true: "metrics on", false: "metrics off"}[on], cl: cl}
	}
	for b.Loop() {
		for r := range rounds {
			for _, i := range [2][2]int{{0, 1}, {1, 0}}[r%2] {
				runtime.GC()
				d, l, err := produceOnce(ctx, sides[i].cl, load, value)
				if err != nil {
					b.Fatalf("produce: %v", err)
				}
				sides[i].elapsed += d
				sides[i].lats = append(sides[i].lats, l...)
			}
		}
	}
	fmt.Printf("\n== metrics overhead: %d alternating rounds of %d x %d B records, acks=all, durable\n", rounds, load.records, load.size)
	var recsPerSec [2]float64
	for i, s := range sides {
		slices.Sort(s.lats)
		recsPerSec[i] = float64(len(s.lats)) / s.elapsed.Seconds()
		fmt.Printf("%-12s %12.0f records/s %8.2f MB/s  p50 %.2f ms  p99 %.2f ms\n", s.name, recsPerSec[i],
			recsPerSec[i]*float64(load.size)/1e6, ms(percentile(s.lats, 0.5)), ms(percentile(s.lats, 0.99)))
	}
	ratio := recsPerSec[0] / recsPerSec[1]
	fmt.Printf("on/off throughput %.3f (overhead %.1f%%)\n\n", ratio, (1-ratio)*100)
	b.ReportMetric(ratio, "on/off")
}
