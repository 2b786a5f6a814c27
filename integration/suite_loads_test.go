package integration

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"
)

// The loads of `make bench` (suite_bench_test.go): each is the same
// franz-go client work against whichever broker it is given, plus the
// two measurements of the machine itself.

// suiteThroughput is one produce or consume run.
type suiteThroughput struct {
	mbPerSec  float64 // value bytes, 1 MB = 1e6 bytes
	cpuPerGB  float64 // broker CPU seconds per 1e9 value bytes
	valueByte int64
}

// suiteProduce produces load to a topic that exists and is empty, with
// the producer of BenchmarkProduce (idempotent, acks=all, no compression,
// kgo's default buffering), and reads the broker's CPU time around it.
func suiteProduce(b *testing.B, br *suiteBroker, topic string, load produceLoad) suiteThroughput {
	b.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(br.addr)}, benchProducerOpts(topic, true)...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	value := benchValue(load.size)
	// One record per partition first: metadata, connection and producer
	// ID exist before the clock starts.
	warm := make([]*kgo.Record, benchPartitions)
	for p := range warm {
		warm[p] = &kgo.Record{Partition: int32(p), Value: value}
	}
	if err := cl.ProduceSync(ctx, warm...).FirstErr(); err != nil {
		b.Fatalf("%s: warm-up produce: %v", br.name, err)
	}
	cpu0 := procCPU(b, br.pid)
	d, _, err := produceOnce(ctx, cl, load, value)
	if err != nil {
		b.Fatalf("%s: produce %s: %v", br.name, load.name, err)
	}
	cpu := procCPU(b, br.pid) - cpu0
	bytes := int64(load.records) * int64(load.size)
	return suiteThroughput{
		mbPerSec:  float64(bytes) / 1e6 / d.Seconds(),
		cpuPerGB:  cpu.Seconds() / (float64(bytes) / 1e9),
		valueByte: bytes,
	}
}

// suiteConsume reads records records of size bytes from the start of
// topic with a fresh consumer (no group), timing from the client's
// creation to the last record.
func suiteConsume(b *testing.B, br *suiteBroker, topic string, records, size int) suiteThroughput {
	b.Helper()
	cpu0 := procCPU(b, br.pid)
	begin := time.Now()
	consumeAll(b, br.addr, topic, records)
	d := time.Since(begin)
	cpu := procCPU(b, br.pid) - cpu0
	bytes := int64(records) * int64(size)
	return suiteThroughput{
		mbPerSec:  float64(bytes) / 1e6 / d.Seconds(),
		cpuPerGB:  cpu.Seconds() / (float64(bytes) / 1e9),
		valueByte: bytes,
	}
}

// suiteEndToEnd produces 100-byte records at rate records/s with linger 0
// and acks=all for dur, and a consumer reading the same topic measures
// each record from just before its Produce call to its arrival in
// PollFetches. The first half second is warm-up and not counted.
func suiteEndToEnd(b *testing.B, br *suiteBroker, topic string, rate int, dur time.Duration) []time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	prod, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(br.addr), kgo.ProducerLinger(0)}, benchProducerOpts(topic, true)...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(br.addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()

	total := int(float64(rate) * dur.Seconds())
	warmup := rate / 2
	var (
		mu   sync.Mutex
		lats = make([]time.Duration, 0, total)
		seen atomic.Int64
	)
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		for seen.Load() < int64(total) {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			now := time.Now().UnixNano()
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				i := int64(binary.BigEndian.Uint64(r.Value[8:]))
				if int(i) >= warmup {
					lats = append(lats, time.Duration(now-int64(binary.BigEndian.Uint64(r.Value))))
				}
				seen.Add(1)
			})
			mu.Unlock()
		}
	}()

	interval := time.Second / time.Duration(rate)
	var firstErr atomic.Value
	start := time.Now()
	for i := range total {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		v := make([]byte, 100)
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint64(v[8:], uint64(i))
		prod.Produce(ctx, &kgo.Record{Partition: int32(i % benchPartitions), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		b.Fatalf("%s: end-to-end flush: %v", br.name, err)
	}
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatalf("%s: end-to-end produce: %v", br.name, err)
	}
	<-consDone
	if got := seen.Load(); got < int64(total) {
		b.Fatalf("%s: end-to-end: consumed %d of %d records: %v", br.name, got, total, ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lats)
	return lats
}

// suiteGroupJoin is the time from creating a group consumer of a new
// group to its first assignment: FindCoordinator, JoinGroup (with the
// broker's group.initial.rebalance.delay.ms), SyncGroup.
func suiteGroupJoin(b *testing.B, br *suiteBroker, topic, group string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	assigned := make(chan struct{}, 1)
	begin := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	go func() {
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	select {
	case <-assigned:
		return time.Since(begin)
	case <-ctx.Done():
		b.Fatalf("%s: no assignment for group %s within a minute", br.name, group)
		return 0
	}
}

// fdatasyncBandwidth appends total bytes to a new file in dir in 1 MiB
// writes, each followed by fdatasync: what a durable log can reach here.
func fdatasyncBandwidth(b *testing.B, dir string, total int64) float64 {
	b.Helper()
	f, err := os.Create(filepath.Join(dir, "fdatasync-bandwidth"))
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	begin := time.Now()
	for written := int64(0); written < total; written += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	return float64(total) / 1e6 / time.Since(begin).Seconds()
}

// fdatasyncLatency appends n 200-byte writes to a new file in dir, each
// followed by fdatasync, and returns the sorted latencies: the floor under
// a durable acks=all produce on this machine at this moment.
func fdatasyncLatency(b *testing.B, dir string, n int) []time.Duration {
	b.Helper()
	f, err := os.Create(filepath.Join(dir, "fdatasync-latency"))
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 200)
	lats := make([]time.Duration, n)
	for i := range lats {
		begin := time.Now()
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		lats[i] = time.Since(begin)
	}
	slices.Sort(lats)
	return lats
}

// loopbackBandwidth sends total bytes over one loopback TCP connection in
// 1 MiB writes.
func loopbackBandwidth(b *testing.B, total int64) float64 {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	received := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			received <- 0
			return
		}
		defer c.Close()
		n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
		received <- n
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	begin := time.Now()
	for sent := int64(0); sent < total; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	if n := <-received; n != total {
		b.Fatalf("loopback: received %d of %d bytes", n, total)
	}
	return float64(total) / 1e6 / time.Since(begin).Seconds()
}
