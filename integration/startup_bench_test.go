package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkStartupBinary measures the real binary's time to ready ("skiff
// started": every log open, the coordinators loaded) on 1,000 partitions
// holding SKIFF_BENCH_GB gigabytes (10 for the figure; unset, it
// skips) in 1 MiB segments (10,000 segments at 10 GB), after a clean stop
// (SIGTERM) and after kill -9 (following an acks=all append to every
// partition), and the descriptors the process holds with those segments on
// disk. The data is produced through the broker (acks=0,
// large batches) and removed after. Run:
//
//	SKIFF_BENCH_GB=10 go test -run '^$' -bench StartupBinary -benchtime 1x -timeout 30m ./integration/
func BenchmarkStartupBinary(b *testing.B) {
	gb := 0
	if s := os.Getenv("SKIFF_BENCH_GB"); s != "" {
		fmt.Sscan(s, &gb)
	}
	if gb <= 0 {
		b.Skip("set SKIFF_BENCH_GB=10 to run (it writes that many gigabytes to the temp dir)")
	}
	const (
		parts     = 1000
		segBytes  = 1 << 20
		valueSize = 16 << 10
	)
	bin := buildSkiff(b)
	dir := b.TempDir()
	p := startSkiff(b, bin, dir)
	adm := newAdmin(b, p.addr)
	seg := strconv.Itoa(segBytes)
	createTopic(b, adm, "startup", parts, map[string]*string{"segment.bytes": &seg})

	start := time.Now()
	cl := newClient(b, p.addr, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedBytes(256<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // the gigabytes must reach the disk
	value := make([]byte, valueSize)
	rand.Read(value)
	n := int64(gb) * 1e9 / valueSize
	for range n {
		cl.Produce(testContext(b), &kgo.Record{Topic: "startup", Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(testContext(b)); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	records := func(p *skiffProcess) int64 {
		ends, err := newAdmin(b, p.addr).ListEndOffsets(testContext(b), "startup")
		if err != nil {
			b.Fatal(err)
		}
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		return total
	}
	// acks=0 returns before the broker has appended what is in flight.
	eventually(b, 5*time.Minute, "every record appended", func() bool { return records(p) == n })
	b.Logf("produced %.2f GB in %v", float64(n*valueSize)/1e9, time.Since(start).Round(time.Millisecond))

	stop := func(p *skiffProcess) {
		b.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		select {
		case <-p.exited:
		case <-time.After(5 * time.Minute):
			b.Fatal("skiff still running 5 minutes after SIGTERM")
		}
	}
	fds := func(p *skiffProcess) int {
		es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		return len(es)
	}
	stop(p)
	for i := range b.N {
		t0 := time.Now()
		p := startSkiff(b, bin, dir)
		clean := time.Since(t0)
		if !p.cleanStart {
			b.Fatal("start after SIGTERM was not clean")
		}
		held := fds(p)
		if i == 0 {
			if total := records(p); total != n {
				b.Fatalf("%d records in the topic after a clean restart, %d produced", total, n)
			}
			segs, _ := filepath.Glob(filepath.Join(dir, "startup-*", "*.log"))
			var size int64
			for _, s := range segs {
				if fi, err := os.Stat(s); err == nil {
					size += fi.Size()
				}
			}
			b.Logf("%d segments, %.2f GB", len(segs), float64(size)/1e9)
			b.ReportMetric(float64(len(segs)), "segments")
		}
		// Append to every partition (acks=all) before the kill, so its
		// active segment has a tail its index files on disk do not cover.
		cl := newClient(b, p.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		recs := make([]*kgo.Record, parts)
		for k := range recs {
			recs[k] = &kgo.Record{Topic: "startup", Partition: int32(k), Value: value}
		}
		if err := cl.ProduceSync(testContext(b), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		n += parts
		p.kill9(b)
		t0 = time.Now()
		p = startSkiff(b, bin, dir)
		unclean := time.Since(t0)
		if p.cleanStart {
			b.Fatal("start after kill -9 was clean")
		}
		if total := records(p); total != n {
			b.Fatalf("%d records in the topic after kill -9, %d acknowledged", total, n)
		}
		stop(p)
		b.ReportMetric(float64(clean.Milliseconds()), "ms-ready-clean")
		b.ReportMetric(float64(unclean.Milliseconds()), "ms-ready-after-kill")
		b.ReportMetric(float64(held), "fds")
	}
}
