package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/skiffmq/skiff/skifftest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkTestKit measures what the test kit promises (issue 17,
// acceptance 4), with kfake's figures from the same run beside Skiff's:
//
//   - start: an embedded broker from nothing to its first answer (an
//     ApiVersions over a fresh connection), median of kitStartRuns;
//   - reset: Reset() after a subtest left 10 topics (3 partitions each,
//     with records) and 3 groups; kfake has no reset, so its figure is what
//     a clean slate costs there: a new cluster with the 10 topics;
//   - group: 4 franz-go members of a new group until every partition of a
//     12-partition topic is owned, 3 each, under the test profile.
//
// `make bench` runs it; each figure is a median of several runs whatever
// -benchtime says.
func BenchmarkTestKit(b *testing.B) {
	const kitStartRuns, kitResetRuns, kitGroupRuns = 200, 20, 7
	type row struct{ what, skiff, kfake, target string }
	var rows []row
	medianOf := func(n int, f func() time.Duration) time.Duration {
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = f()
		}
		slices.Sort(ds)
		return ds[n/2]
	}

	b.Run("start", func(b *testing.B) {
		for b.Loop() {
			skiff := medianOf(kitStartRuns, func() time.Duration {
				start := time.Now()
				br, err := skifftest.Start()
				if err != nil {
					b.Fatal(err)
				}
				if err := firstAnswer(br.Addr()); err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				br.Close()
				return d
			})
			fake := medianOf(kitStartRuns, func() time.Duration {
				start := time.Now()
				c, err := kfake.NewCluster(kfake.NumBrokers(1))
				if err != nil {
					b.Fatal(err)
				}
				if err := firstAnswer(c.ListenAddrs()[0]); err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				c.Close()
				return d
			})
			b.ReportMetric(ms(skiff), "skiff-ms")
			b.ReportMetric(ms(fake), "kfake-ms")
			rows = append(rows, row{"start to first answer", fmtMs(skiff), fmtMs(fake), "0.5 ms"})
		}
	})

	b.Run("reset", func(b *testing.B) {
		for b.Loop() {
			br := skifftest.New(b)
			skiff := medianOf(kitResetRuns, func() time.Duration {
				fillForReset(b, br.Addr())
				start := time.Now()
				if err := br.Reset(); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			})
			topics := make([]string, 10)
			for i := range topics {
				topics[i] = "r" + strconv.Itoa(i)
			}
			fake := medianOf(kitResetRuns, func() time.Duration {
				start := time.Now()
				c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
				if err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				c.Close()
				return d
			})
			b.ReportMetric(ms(skiff), "skiff-ms")
			b.ReportMetric(ms(fake), "kfake-ms")
			rows = append(rows, row{"Reset, 10 topics + 3 groups", fmtMs(skiff), fmtMs(fake) + " (new cluster)", "2 ms"})
		}
	})

	b.Run("group", func(b *testing.B) {
		for b.Loop() {
			br := skifftest.New(b, skifftest.Topic(benchGroupTopic, benchGroupPartitions, nil))
			n := 0
			skiff := medianOf(kitGroupRuns, func() time.Duration {
				n++
				j, _ := rebalanceOnce(b, br.Addr(), "kit-"+strconv.Itoa(n))
				return j
			})
			// For comparison: with no initial delay the first member is
			// assigned alone and each later one costs a rebalance that
			// the others learn of from a heartbeat (the profile's 10 ms
			// window gathers members started together).
			undelayed := skifftest.New(b, skifftest.Topic(benchGroupTopic, benchGroupPartitions, nil),
				skifftest.Setting("group.initial.rebalance.delay.ms", "0"))
			skiffUndelayed := medianOf(kitGroupRuns, func() time.Duration {
				n++
				j, _ := rebalanceOnce(b, undelayed.Addr(), "kit-"+strconv.Itoa(n))
				return j
			})
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchGroupPartitions, benchGroupTopic))
			if err != nil {
				b.Fatal(err)
			}
			fake := medianOf(kitGroupRuns, func() time.Duration {
				n++
				j, _ := rebalanceOnce(b, c.ListenAddrs()[0], "kit-"+strconv.Itoa(n))
				return j
			})
			c.Close()
			b.ReportMetric(ms(skiff), "skiff-ms")
			b.ReportMetric(ms(fake), "kfake-ms")
			rows = append(rows, row{"4-member group balanced", fmtMs(skiff), fmtMs(fake), "50 ms"},
				row{"  same, initial delay 0", fmtMs(skiffUndelayed), "", ""})
		}
	})

	fmt.Printf("\n== test kit (medians; issue 17 targets)\n%-30s %12s %22s %8s\n", "", "skiff", "kfake", "target")
	for _, r := range rows {
		fmt.Printf("%-30s %12s %22s %8s\n", r.what, r.skiff, r.kfake, r.target)
	}
	fmt.Println()
}

func fmtMs(d time.Duration) string { return fmt.Sprintf("%.3f ms", ms(d)) }

// fillForReset leaves what a subtest would: 10 topics with a record in
// each partition and 3 groups with committed offsets.
func fillForReset(b *testing.B, addr string) {
	b.Helper()
	// A client per subtest, as tests have: topic ids change across Reset.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	offsets := kadm.Offsets{}
	for i := range 10 {
		topic := "r" + strconv.Itoa(i)
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			b.Fatal(err)
		}
		for p := range int32(3) {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("v")})
			offsets.Add(kadm.Offset{Topic: topic, Partition: p, At: 1})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	for g := range 3 {
		resp, err := adm.CommitOffsets(ctx, "g"+strconv.Itoa(g), offsets)
		if err != nil || resp.Error() != nil {
			b.Fatalf("commit: %v %v", err, resp.Error())
		}
	}
}

// firstAnswer dials addr and waits for the answer to an ApiVersions.
func firstAnswer(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "bench", "1"
	if _, err := c.Write(encodeRequest(req, 1)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	_, err = io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:])))
	return err
}
