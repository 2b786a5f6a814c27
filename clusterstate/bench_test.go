package clusterstate

import (
	"fmt"
	"testing"
)

// BenchmarkPartitionLookupParallel is the produce/fetch path's lookup:
// an atomic load and two map/slice reads, no lock, from every core.
func BenchmarkPartitionLookupParallel(b *testing.B) {
	f := open(b, b.TempDir())
	for i := range 100 {
		r := f.state.CreateTopics([]NewTopic{{Name: fmt.Sprintf("t%d", i), Partitions: 4}})
		if r[0].Err != nil {
			b.Fatal(r[0].Err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if f.state.Partition("t42", int32(i&3)) == nil {
				b.Fatal("missing partition")
			}
			i++
		}
	})
}
