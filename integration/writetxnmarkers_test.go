package integration

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestWriteTxnMarkersAbortsHangingTransaction: kafka-transactions abort
// (the Admin client's abortTransaction, KIP-664) failed with
// UNSUPPORTED_VERSION because Skiff had no WriteTxnMarkers. The abort
// marker written through it closes an open transaction on the partition:
// the last stable offset moves past it and read_committed skips its
// records. A marker for an unknown partition is refused per partition.
func TestWriteTxnMarkersAbortEndsTransactionForReaders(t *testing.T) {
	b := startBroker(t, nil)
	const topic = "markers-hanging"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	cl := txnClient(t, b.Addr(), "markers-hanging-txn")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceValues(t, cl, topic, 0, "hanging")
	if lso := partitionEndOffset(t, b.Addr(), topic, true); lso != 0 {
		t.Fatalf("last stable offset %d with the transaction open, want 0", lso)
	}

	// What the Admin client reads before aborting: the partition's open
	// transaction, its producer and coordinator epoch.
	dp := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic, dt.Partitions = topic, []int32{0}
	dp.Topics = append(dp.Topics, dt)
	plain := newClient(t, b.Addr())
	dresp, err := dp.RequestWith(testContext(t), plain)
	if err != nil {
		t.Fatal(err)
	}
	if ps := dresp.Topics[0].Partitions[0].ActiveProducers; len(ps) != 1 || ps[0].CurrentTxnStartOffset != 0 {
		t.Fatalf("DescribeProducers: %+v, want one producer with a transaction from offset 0", ps)
	}
	producer := dresp.Topics[0].Partitions[0].ActiveProducers[0]

	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1 // the only version since Kafka 4.0
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch = producer.ProducerID, int16(producer.ProducerEpoch), producer.CoordinatorEpoch
	for _, name := range []string{topic, "no-such-topic"} {
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = name, []int32{0}
		m.Topics = append(m.Topics, mt)
	}
	req.Markers = append(req.Markers, m)
	resp := roundTrip(t, dialRaw(t, b.Addr()), req, 1).(*kmsg.WriteTxnMarkersResponse)
	if len(resp.Markers) != 1 || resp.Markers[0].ProducerID != producer.ProducerID || len(resp.Markers[0].Topics) != 2 {
		t.Fatalf("WriteTxnMarkers: %+v", resp)
	}
	codes := map[string]int16{}
	for _, rt := range resp.Markers[0].Topics {
		codes[rt.Topic] = rt.Partitions[0].ErrorCode
	}
	if codes[topic] != 0 || codes["no-such-topic"] != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("WriteTxnMarkers codes %v, want none for %s and UNKNOWN_TOPIC_OR_PARTITION for no-such-topic", codes, topic)
	}

	if lso := partitionEndOffset(t, b.Addr(), topic, true); lso != 2 {
		t.Errorf("last stable offset %d after the abort marker, want 2", lso)
	}
	produceValues(t, plain, topic, 0, "after")
	if got := valuesUpTo(t, b.Addr(), topic, 3, true); len(got) != 1 || got[0] != "after" {
		t.Errorf("read_committed reads %q, want [after]", got)
	}

	// A new producer with the same transactional id bumps the epoch, and
	// the coordinator's own abort writes it to the partition; a marker at
	// the old epoch is then refused, as Kafka's ProducerAppendInfo does.
	eventually(t, 30*time.Second, "the producer epoch to be bumped on the partition", func() bool {
		init := kmsg.NewPtrInitProducerIDRequest()
		init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("markers-hanging-txn"), 60000
		if _, err := init.RequestWith(testContext(t), plain); err != nil {
			return false
		}
		dresp, err := dp.RequestWith(testContext(t), plain)
		if err != nil {
			return false
		}
		for _, ps := range dresp.Topics[0].Partitions[0].ActiveProducers {
			if ps.ProducerID == producer.ProducerID && ps.ProducerEpoch > producer.ProducerEpoch {
				return true
			}
		}
		return false
	})
	req.Markers[0].Topics = req.Markers[0].Topics[:1]
	resp = roundTrip(t, dialRaw(t, b.Addr()), req, 2).(*kmsg.WriteTxnMarkersResponse)
	if code := resp.Markers[0].Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("marker at a stale epoch: error %d, want INVALID_PRODUCER_EPOCH", code)
	}
}
