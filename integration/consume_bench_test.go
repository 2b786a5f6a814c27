package integration

import (
	"context"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The consume benchmark: one franz-go consumer reads a pre-filled topic
// from the start, every partition, until it has every record; each
// iteration is a fresh client. The topic holds SKIFF_BENCH_CONSUME_MB
// megabytes (default 64, small enough for CI; issue 13 measures 2048) of
// 10 KB records over benchPartitions partitions, produced before the clock
// starts. The broker runs in page-cache mode so that filling is quick;
// reading does not depend on it.
const consumeRecordSize = 10 << 10

func consumeBenchBytes(b *testing.B) int64 {
	mb := int64(64)
	if v := os.Getenv("SKIFF_BENCH_CONSUME_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("SKIFF_BENCH_CONSUME_MB=%q: want a positive number of megabytes", v)
		}
		mb = n
	}
	return mb << 20
}

func BenchmarkConsume(b *testing.B) {
	total := consumeBenchBytes(b)
	records := int(total / consumeRecordSize)
	addr := startBenchSkiff(b, map[string]string{"log.flush.interval.messages": strconv.FormatInt(math.MaxInt64, 10)})
	fillBenchTopic(b, addr, records)
	b.SetBytes(int64(records) * consumeRecordSize)
	b.ResetTimer()
	for range b.N {
		consumeAll(b, addr, benchTopic, records)
	}
}

// fillBenchTopic produces records 10 KB records round-robin over the bench
// topic's partitions.
func fillBenchTopic(b testing.TB, addr string, records int) {
	b.Helper()
	cl := newClient(b, addr, kgo.DefaultProduceTopic(benchTopic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedBytes(benchMaxBufferedBytes),
		kgo.ProducerLinger(5*time.Millisecond))
	value := benchValue(consumeRecordSize)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range records {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				once.Do(func() { firstErr = err })
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("filling %s: %v", benchTopic, firstErr)
	}
}

// consumeAll reads topic from the start with a new client until it has
// seen records records.
func consumeAll(b testing.TB, addr, topic string, records int) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	seen := 0
	for seen < records {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatalf("consumed %d of %d records: %v", seen, records, err)
		}
		fs.EachError(func(t string, p int32, err error) { b.Fatalf("fetch %s/%d: %v", t, p, err) })
		seen += fs.NumRecords()
	}
}
