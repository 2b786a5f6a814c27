package protocol_test

import (
	"fmt"

	"github.com/skiffmq/skiff/protocol"
)

// A batch built for an internal topic is validated and read back the way
// the broker reads a producer's batch.
func ExampleBuildBatch() {
	batch, err := protocol.BuildBatch(nil, protocol.BatchHeader{
		BaseTimestamp: 1700000000000, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
	}, protocol.CodecZstd, []protocol.Record{
		{OffsetDelta: 0, Key: []byte("group-a"), Value: []byte("offset 42")},
		{OffsetDelta: 1, TimestampDelta: 5, Key: []byte("group-b"), Value: nil}, // a tombstone
	})
	if err != nil {
		panic(err)
	}
	h, err := protocol.ValidateBatch(batch)
	if err != nil {
		panic(err)
	}
	recs, err := protocol.DecodeRecords(batch, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(h.Codec(), h.NumRecords, h.LastOffsetDelta, h.MaxTimestamp)
	for _, r := range recs {
		fmt.Printf("%s=%q null=%v\n", r.Key, r.Value, r.Value == nil)
	}
	// Output:
	// zstd 2 1 1700000000005
	// group-a="offset 42" null=false
	// group-b="" null=true
}
