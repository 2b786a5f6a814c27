package integration

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListOffsetsByTimestampNotBelowLogStart: kafka-consumer-groups
// --reset-offsets --to-datetime reset a group to offset 0 of a partition
// whose records below 2 had been deleted, because ListOffsets by
// timestamp answered with the first record of a batch that DeleteRecords
// had cut into. As Kafka (LogSegment.findOffsetByTimestamp) the answer
// is never below the log start offset, for CreateTime and LogAppendTime
// batches alike.
func TestListOffsetsByTimestampNotBelowLogStart(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	c := dialRaw(t, b.Addr())
	for i, tc := range []struct{ topic, tsType string }{
		{"logstart-create-time", "CreateTime"},
		{"logstart-append-time", "LogAppendTime"},
	} {
		createTopic(t, adm, tc.topic, 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr(tc.tsType)})
		// One batch of five records, offsets 0-4.
		resp := roundTrip(t, c, produceV9(tc.topic, 0, recordBatch("a", "b", "c", "d", "e")), int32(i)).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("%s: produce error %d", tc.topic, code)
		}
		var start kadm.Offsets
		start.AddOffset(tc.topic, 0, 2, -1)
		if dr, err := adm.DeleteRecords(testContext(t), start); err != nil || dr.Error() != nil {
			t.Fatalf("%s: delete records: %v %v", tc.topic, err, dr.Error())
		}
		listed, err := adm.ListOffsetsAfterMilli(testContext(t), 0, tc.topic)
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := listed.Lookup(tc.topic, 0); o.Err != nil || o.Offset != 2 {
			t.Errorf("%s: offset for timestamp 0 is %d (%v), want the log start offset 2", tc.topic, o.Offset, o.Err)
		}
	}
}
