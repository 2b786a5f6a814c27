package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkScale is issue 13's scale check: the skiff binary takes the
// same number of bytes from 500 producer connections spread over 1,000
// partitions as from one producer over 6 partitions, in alternating
// rounds, durable and in page-cache mode; the target is the wide figure
// within 30% of the narrow one. Sizes: SKIFF_BENCH_MB (default 256) per
// round, SKIFF_BENCH_ROUNDS (default 3); 1 KB records.
func BenchmarkScale(b *testing.B) {
	cfg := suiteConfigFromEnv(b)
	const (
		wideParts   = 1000
		wideClients = 500
		size        = 1 << 10
	)
	records := int(cfg.mb * 1e6 / size)
	bin := buildSkiff(b)
	type mode struct {
		br                 *suiteBroker
		narrow, wide       []float64 // MB/s
		narrowCPU, wideCPU []float64 // broker CPU s per GB
	}
	modes := []*mode{
		{br: startSuiteSkiffMode(b, bin, "skiff")},
		{br: startSuiteSkiffMode(b, bin, "skiff-pagecache")},
	}
	value := benchValue(size)
	for b.Loop() {
		for r := range cfg.rounds {
			for i := range modes {
				m := modes[(r+i)%len(modes)]
				adm := kadm.NewClient(newClient(b, m.br.addr))
				narrow := fmt.Sprintf("scale-narrow-%d", r)
				wide := fmt.Sprintf("scale-wide-%d", r)
				createTopic(b, adm, narrow, benchPartitions, nil)
				createTopic(b, adm, wide, wideParts, nil)
				// Alternate which shape goes first as well.
				gb := float64(records) * size / 1e9
				shapes := []func(){
					func() {
						cpu0 := procCPU(b, m.br.pid)
						m.narrow = append(m.narrow, scaleProduce(b, m.br, narrow, benchPartitions, 1, records, value))
						m.narrowCPU = append(m.narrowCPU, (procCPU(b, m.br.pid)-cpu0).Seconds()/gb)
					},
					func() {
						cpu0 := procCPU(b, m.br.pid)
						m.wide = append(m.wide, scaleProduce(b, m.br, wide, wideParts, wideClients, records, value))
						m.wideCPU = append(m.wideCPU, (procCPU(b, m.br.pid)-cpu0).Seconds()/gb)
					},
				}
				if r%2 == 1 {
					slices.Reverse(shapes)
				}
				for _, f := range shapes {
					f()
				}
				if _, err := adm.DeleteTopics(testContext(b), narrow, wide); err != nil {
					b.Fatalf("deleting %s, %s: %v", narrow, wide, err)
				}
				fmt.Fprintf(os.Stderr, "bench: scale round %d %s done\n", r, m.br.name)
			}
		}
	}
	fmt.Printf("\n== scale: %d MB of %d B records per run, acks=all, median of %d alternating rounds\n", cfg.mb, size, cfg.rounds)
	fmt.Printf("(the 500 clients run in the benchmark's process, on the same 2 cores as the broker; the broker's CPU per GB is its own)\n")
	fmt.Printf("%-18s %22s %28s %8s %16s %16s\n", "broker", "1 client x 6 parts", "500 clients x 1000 parts", "ratio", "CPU s/GB narrow", "CPU s/GB wide")
	for _, m := range modes {
		n, w := medianOf(m.narrow), medianOf(m.wide)
		fmt.Printf("%-18s %17.1f MB/s %23.1f MB/s %7.2fx %16.2f %16.2f\n", m.br.name, n, w, w/n, medianOf(m.narrowCPU), medianOf(m.wideCPU))
	}
	fmt.Println()
}

// scaleProduce has clients producers (each its own connection) send
// records records in all, producer k writing round-robin to partitions
// k, k+clients, ..., and returns MB/s of values from the first record to
// the last acknowledgement.
func scaleProduce(b *testing.B, br *suiteBroker, topic string, partitions, clients, records int, value []byte) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cls := make([]*kgo.Client, clients)
	for k := range cls {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(br.addr)}, benchProducerOpts(topic, true)...)...)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		// Connection, metadata and producer id before the clock starts.
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: int32(k % partitions), Value: value}).FirstErr(); err != nil {
			b.Fatalf("%s: warm-up produce to %s: %v", br.name, topic, err)
		}
		cls[k] = cl
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	begin := time.Now()
	for k, cl := range cls {
		n := records / clients
		if k < records%clients {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := (partitions + clients - 1 - k) / clients // partitions k, k+clients, ...
			for i := range n {
				p := k + (i%mine)*clients
				cl.Produce(ctx, &kgo.Record{Partition: int32(p), Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	d := time.Since(begin)
	select {
	case err := <-errs:
		b.Fatalf("%s: produce to %s: %v", br.name, topic, err)
	default:
	}
	return float64(records) * float64(len(value)) / 1e6 / d.Seconds()
}

func medianOf(vs []float64) float64 {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if len(vs) == 0 {
		return 0
	}
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}
