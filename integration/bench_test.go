package integration

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The produce benchmark: one franz-go producer, acks=all, a fixed number of
// records spread round-robin over benchPartitions partitions, against
// Skiff, Apache Kafka and kfake in the same run so that the ratios are
// measured on the same machine at the same moment. `make bench` runs it with -benchtime 1x.
const (
	benchTopic      = "bench"
	benchPartitions = 6

	// The producer buffers at most kgo's default number of records and at
	// most the Java producer's default buffer.memory, so the in-flight
	// amount is what an application with default settings has.
	benchMaxBufferedRecords = 50_000
	benchMaxBufferedBytes   = 32 << 20
)

// produceLoad is one workload: records records of size value bytes.
type produceLoad struct {
	name    string
	size    int
	records int
}

// Sized for a few seconds per broker on a 2-core machine, so the whole
// `make bench` stays within a few minutes.
var produceLoads = []produceLoad{
	{name: "100B", size: 100, records: 8_000_000},
	{name: "10KB", size: 10 << 10, records: 200_000},
}

// produceTarget is a broker the load runs against; start returns its
// bootstrap address with the topic in place, and stops it at test end.
type produceTarget struct {
	name  string
	about string
	start func(b *testing.B) string
}

// Skiff's default is durable: acks=all waits for the group-committed
// fdatasync. kfake keeps everything in memory and acks at once, so
// skiff-pagecache (Kafka's own default: no fsync, rely on the page cache)
// is there to tell the price of durability from the broker's own cost.
// Apache Kafka itself (integration/kafkaref_test.go) runs the same load
// as the anchor the others are read against.
var produceTargets = []produceTarget{
	{name: "skiff", about: "durable, fdatasync group commit", start: func(b *testing.B) string {
		return startBenchSkiff(b, nil)
	}},
	{name: "skiff-pagecache", about: "log.flush.interval.messages=MAX, no fsync", start: func(b *testing.B) string {
		return startBenchSkiff(b, map[string]string{"log.flush.interval.messages": strconv.FormatInt(math.MaxInt64, 10)})
	}},
	{name: "kafka", about: "Apache Kafka 4.1.2, default settings and JVM flags", start: func(b *testing.B) string {
		// The reference: what Kafka's own start script runs, one node,
		// nothing tuned.
		k := startKafka(b, kafkaOptions{jvmArgs: kafkaScriptJVM})
		createTopic(b, newAdmin(b, k.addr), benchTopic, benchPartitions, nil)
		return k.addr
	}},
	{name: "kfake", about: "franz-go kfake, in memory", start: func(b *testing.B) string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchPartitions, benchTopic))
		if err != nil {
			b.Fatalf("kfake.NewCluster: %v", err)
		}
		b.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	}},
}

func startBenchSkiff(b *testing.B, settings map[string]string) string {
	br := startBroker(b, settings)
	createTopic(b, newAdmin(b, br.Addr()), benchTopic, benchPartitions, nil)
	return br.Addr()
}

// produceResult is what one broker achieved on one load, computed from the
// measured workloads only (never scaled by b.N).
type produceResult struct {
	target     produceTarget
	idempotent bool
	records    int
	mbPerSec   float64 // value bytes, 1 MB = 1e6 bytes as in go test's MB/s
	recsPerSec float64
	p50, p99   time.Duration
}

// BenchmarkProduce measures produce throughput and ack latency of Skiff and
// of kfake (franz-go's in-memory fake) for each load, then prints a table
// with the skiff/kfake ratios.
func BenchmarkProduce(b *testing.B) {
	for _, load := range produceLoads {
		b.Run(load.name, func(b *testing.B) {
			// The latest result per target (-count reruns a target).
			results := make([]*produceResult, len(produceTargets))
			for i, target := range produceTargets {
				b.Run(target.name, func(b *testing.B) {
					addr := target.start(b)
					idem := supportsIdempotence(b, addr)
					if first := firstResult(results); first != nil {
						// Every broker sees the client the first one got,
						// so that the ratios compare like with like.
						idem = first.idempotent
					} else if !idem {
						b.Logf("InitProducerID not advertised: falling back to a non-idempotent producer")
					}
					r := runProduce(b, addr, load, idem)
					r.target = target
					results[i] = r
				})
			}
			printProduceSummary(load, results)
		})
	}
}

func firstResult(results []*produceResult) *produceResult {
	for _, r := range results {
		if r != nil {
			return r
		}
	}
	return nil
}

// supportsIdempotence reports whether every broker at addr answers
// InitProducerID, which an idempotent franz-go producer needs.
func supportsIdempotence(b *testing.B, addr string) bool {
	b.Helper()
	vs, err := newAdmin(b, addr).ApiVersions(testContext(b))
	if err != nil {
		b.Fatalf("ApiVersions: %v", err)
	}
	ok := len(vs) > 0
	vs.Each(func(v kadm.BrokerApiVersions) {
		if v.Err != nil {
			b.Fatalf("ApiVersions from node %d: %v", v.NodeID, v.Err)
		}
		if _, has := v.KeyMaxVersion(int16(kmsg.InitProducerID)); !has {
			ok = false
		}
	})
	return ok
}

// runProduce produces load once per benchmark iteration to addr and
// reports MB/s, records/s and the p50/p99 ack latency over all iterations.
func runProduce(b *testing.B, addr string, load produceLoad, idempotent bool) *produceResult {
	b.Helper()
	opts := benchProducerOpts(benchTopic, idempotent)
	mode := "idempotent"
	if !idempotent {
		mode = "non-idempotent"
	}
	b.Logf("%s producer, %d x %d B records, %d partitions, acks=all, at most %d records / %d MiB buffered",
		mode, load.records, load.size, benchPartitions, benchMaxBufferedRecords, benchMaxBufferedBytes>>20)

	cl := newClient(b, addr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	value := benchValue(load.size)

	// One record per partition first, so that metadata, the connection
	// and the producer ID exist before the clock starts.
	warm := make([]*kgo.Record, benchPartitions)
	for p := range warm {
		warm[p] = &kgo.Record{Partition: int32(p), Value: value}
	}
	if err := cl.ProduceSync(ctx, warm...).FirstErr(); err != nil {
		b.Fatalf("warm-up produce: %v", err)
	}
	runtime.GC()

	var (
		elapsed time.Duration
		lats    []time.Duration
		runs    int
	)
	for b.Loop() {
		d, l, err := produceOnce(ctx, cl, load, value)
		if err != nil {
			b.Fatalf("produce: %v", err)
		}
		elapsed += d
		lats = append(lats, l...)
		runs++
	}

	res := &produceResult{idempotent: idempotent, records: runs * load.records}
	secs := elapsed.Seconds()
	res.mbPerSec = float64(res.records) * float64(load.size) / 1e6 / secs
	res.recsPerSec = float64(res.records) / secs
	slices.Sort(lats)
	res.p50, res.p99 = percentile(lats, 0.50), percentile(lats, 0.99)
	b.ReportMetric(res.mbPerSec, "MB/s")
	b.ReportMetric(res.recsPerSec, "records/s")
	b.ReportMetric(ms(res.p50), "p50-ms")
	b.ReportMetric(ms(res.p99), "p99-ms")
	return res
}

// benchProducerOpts are the options of every benchmark producer: acks=all,
// records placed by partition number, no compression, kgo's default
// buffering, to topic.
func benchProducerOpts(topic string, idempotent bool) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// The broker's work is what is measured, not the codec's.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(benchMaxBufferedRecords),
		kgo.MaxBufferedBytes(benchMaxBufferedBytes),
	}
	if !idempotent {
		// An idempotent producer keeps up to 5 requests in flight per
		// broker; match that, so the fallback measures the same pipeline.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	}
	return opts
}

// produceOnce produces load.records records asynchronously and waits for
// every ack. A record's latency runs from just before its Produce call to
// its promise, so it includes any wait for buffer space, as Kafka's
// producer-perf-test counts it.
func produceOnce(ctx context.Context, cl *kgo.Client, load produceLoad, value []byte) (time.Duration, []time.Duration, error) {
	lats := make([]time.Duration, load.records)
	var (
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	for i := range load.records {
		r := &kgo.Record{Partition: int32(i % benchPartitions), Value: value}
		sent := time.Now()
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			lats[i] = time.Since(sent)
			if err != nil {
				errOnce.Do(func() { firstErr = err })
			}
		})
	}
	// Flush returns once every promise has run, which publishes lats
	// and firstErr to this goroutine.
	if err := cl.Flush(ctx); err != nil {
		return 0, nil, err
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, nil, firstErr
	}
	return elapsed, lats, nil
}

// benchValue is an incompressible record value of n bytes, the same in
// every run.
func benchValue(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(rng.Uint32())
	}
	return v
}

// percentile is the nearest-rank q-quantile of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printProduceSummary prints one table per load to stdout, so that it
// shows between the benchmark lines of `make bench`: a row per broker, then
// each Skiff row divided by Apache Kafka's and by kfake's.
func printProduceSummary(load produceLoad, results []*produceResult) {
	first := firstResult(results)
	if first == nil {
		return
	}
	mode := "idempotent"
	if !first.idempotent {
		mode = "non-idempotent"
	}
	fmt.Printf("\n== produce %s values: %d records/run, %d partitions, acks=all, %s producer, at most %d records / %d MiB buffered\n",
		load.name, first.records, benchPartitions, mode, benchMaxBufferedRecords, benchMaxBufferedBytes>>20)
	row := func(cols ...any) {
		fmt.Println(strings.TrimRight(fmt.Sprintf("%-24s %10s %12s %10s %10s  %s", cols...), " "))
	}
	row("broker", "MB/s", "records/s", "p50 ms", "p99 ms", "")
	results = slices.DeleteFunc(slices.Clone(results), func(r *produceResult) bool { return r == nil })
	byName := map[string]*produceResult{}
	for _, r := range results {
		row(r.target.name, fmt.Sprintf("%.2f", r.mbPerSec), fmt.Sprintf("%.0f", r.recsPerSec),
			fmt.Sprintf("%.2f", ms(r.p50)), fmt.Sprintf("%.2f", ms(r.p99)), r.target.about)
		byName[r.target.name] = r
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	// Each Skiff row divided by the references: Apache Kafka, then kfake.
	for _, ref := range []string{"kafka", "kfake"} {
		base := byName[ref]
		if base == nil {
			continue
		}
		for _, r := range results {
			if !strings.HasPrefix(r.target.name, "skiff") {
				continue
			}
			row(r.target.name+"/"+ref, ratio(r.mbPerSec, base.mbPerSec), ratio(r.recsPerSec, base.recsPerSec),
				ratio(ms(r.p50), ms(base.p50)), ratio(ms(r.p99), ms(base.p99)), "")
		}
	}
	fmt.Println()
}
