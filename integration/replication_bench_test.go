package integration

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkReplicatedProduce compares acks=all produce through franz-go
// on one broker of a 3-broker cluster, with the partition on that broker
// alone (rf1) and on all three (rf3), with 16 records in flight.
func BenchmarkReplicatedProduce(b *testing.B) {
	for _, rf := range []int{1, 3} {
		b.Run("rf"+strconv.Itoa(rf), func(b *testing.B) {
			c := startMemCluster(b, 3, nil)
			createTopic(b, newAdmin(b, c.brokers[1].Addr()), "bench", 1, nil)
			if rf == 3 {
				c.assign(b, "bench", rf3(1, 1, 1))
			} else {
				a := rf3(1, 1, 1, 1)
				a.Replicas = []int32{1}
				c.assign(b, "bench", a)
			}
			cl := newClient(b, c.brokers[1].Addr(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(16))
			value := make([]byte, 1024)
			// Warm up: the first produce waits for the assignment to arrive.
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "bench", Value: value}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			var wg sync.WaitGroup
			var failed error
			var mu sync.Mutex
			for range b.N {
				wg.Add(1)
				cl.Produce(context.Background(), &kgo.Record{Topic: "bench", Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
					wg.Done()
				})
			}
			wg.Wait()
			if failed != nil {
				b.Fatal(failed)
			}
		})
	}
}
