package integration

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// writeTxnMarker sends one WriteTxnMarkers v1 request for partition 0 of
// topic and returns the partition's error code.
func writeTxnMarker(t *testing.T, addr, topic string, pid int64, epoch int16, coordinatorEpoch int32) int16 {
	t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, false, coordinatorEpoch
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{0}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	// Straight to the broker: the client would refuse an unknown topic
	// itself instead of asking.
	kresp, err := newClient(t, addr).SeedBrokers()[0].Request(testContext(t), req)
	if err != nil {
		t.Fatalf("WriteTxnMarkers: %v", err)
	}
	resp := kresp.(*kmsg.WriteTxnMarkersResponse)
	if len(resp.Markers) != 1 || len(resp.Markers[0].Topics) != 1 || len(resp.Markers[0].Topics[0].Partitions) != 1 {
		t.Fatalf("WriteTxnMarkers response shape: %+v", resp)
	}
	return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
}

// TestWriteTxnMarkersAbortsHangingTransaction: Admin.abortTransaction (and
// kafka-transactions abort) failed with UnsupportedVersionException because
// Skiff did not implement WriteTxnMarkers. An administrator's ABORT marker
// now ends an open transaction on its partition, moving the last stable
// offset past it so read_committed consumers read on; a marker from an
// older producer epoch or coordinator epoch, or for an unknown partition,
// is refused with Kafka's error code.
func TestWriteTxnMarkersAbortsHangingTransaction(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "hanging", 1, nil)
	produceN(t, b.Addr(), "hanging", 0, 1, time.Now())

	txn := txnClient(t, b.Addr(), "hanging-txid")
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(testContext(t), &kgo.Record{Topic: "hanging", Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if lso := partitionEndOffset(t, b.Addr(), "hanging", true); lso != 1 {
		t.Fatalf("last stable offset with the transaction open: %d, want 1", lso)
	}
	ps, err := adm.DescribeProducers(testContext(t), kadm.TopicsSet{"hanging": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var pid int64 = -1
	var epoch int16
	ps.EachProducer(func(p kadm.DescribedProducer) {
		if p.CurrentTxnStartOffset == 1 {
			pid, epoch = p.ProducerID, p.ProducerEpoch
		}
	})
	if pid < 0 {
		t.Fatalf("no producer with a transaction open at offset 1: %+v", ps)
	}

	if code := writeTxnMarker(t, b.Addr(), "no-such-topic", pid, epoch, 0); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("marker for an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}
	// The administrator's marker may carry a later epoch than the
	// producer's (fencing bumps it); a marker older than that is refused.
	if code := writeTxnMarker(t, b.Addr(), "hanging", pid, epoch+1, 5); code != 0 {
		t.Fatalf("abort marker: %v", kerr.ErrorForCode(code))
	}
	if code := writeTxnMarker(t, b.Addr(), "hanging", pid, epoch, 5); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("marker from an older producer epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	if lso := partitionEndOffset(t, b.Addr(), "hanging", true); lso != 3 {
		t.Errorf("last stable offset after the abort marker: %d, want 3", lso)
	}
	if code := writeTxnMarker(t, b.Addr(), "hanging", pid, epoch+1, 4); code != kerr.TransactionCoordinatorFenced.Code {
		t.Errorf("marker from an older coordinator epoch: %v, want TRANSACTION_COORDINATOR_FENCED", kerr.ErrorForCode(code))
	}
	recs := consumeN(t, b.Addr(), "hanging", 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if string(recs[0].Value) == "open" {
		t.Errorf("read_committed returned the aborted record")
	}
}
