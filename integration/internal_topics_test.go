package integration

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hostileInternalBatches are the batches a client once could append to an
// internal topic, each of which kept the broker from starting again: a
// plain record, a gzip-compressed one and a CRC-valid batch whose records
// are garbage.
func hostileInternalBatches(t *testing.T) map[string][]byte {
	t.Helper()
	hdr := protocol.BatchHeader{PartitionLeaderEpoch: -1, BaseTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	gz, err := protocol.BuildBatch(nil, hdr, protocol.CodecGzip, []protocol.Record{{Key: []byte("k"), Value: []byte("compressed")}})
	if err != nil {
		t.Fatal(err)
	}
	garbage := recordBatch("garbage-garbage-garbage")
	for i := protocol.BatchHeaderSize; i < len(garbage); i++ {
		garbage[i] = 0xff
	}
	binary.BigEndian.PutUint32(garbage[17:], crc32.Checksum(garbage[21:], castagnoliTable))
	return map[string][]byte{"plain": recordBatch("plain"), "gzip": gz, "garbage": garbage}
}

// TestHostileProduceToInternalTopicsRefused: a client's produce to
// __consumer_offsets or __transaction_state was acknowledged, and after a
// compressed or garbage batch the broker refused to start. Kafka answers
// INVALID_TOPIC_EXCEPTION; the restarted broker must keep every committed
// offset and transaction outcome and serve produce and consume.
func TestHostileProduceToInternalTopicsRefused(t *testing.T) {
	bin := buildSkiff(t)
	dir := t.TempDir()
	p := startSkiff(t, bin, dir)
	const topic = "internal-guard"
	adm := newAdmin(t, p.addr)
	createTopic(t, adm, topic, 1, nil)

	// State worth keeping: a committed group offset, one committed and one
	// aborted transaction.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1})
	committed, err := adm.CommitOffsets(testContext(t), "guard-group", offs)
	if err != nil || committed.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, committed.Error())
	}
	produceTxn(t, txnClient(t, p.addr, "guard-commit"), topic, true, "committed-1", "committed-2")
	produceTxn(t, txnClient(t, p.addr, "guard-abort"), topic, false, "aborted-1")

	conn := dialRaw(t, p.addr)
	corr := int32(1)
	for _, internal := range []string{"__consumer_offsets", "__transaction_state"} {
		batches := hostileInternalBatches(t)
		for _, name := range []string{"plain", "gzip", "garbage"} {
			resp := roundTrip(t, conn, produceV9(internal, 0, batches[name]), corr).(*kmsg.ProduceResponse)
			corr++
			code := resp.Topics[0].Partitions[0].ErrorCode
			if code != kerr.InvalidTopicException.Code {
				t.Errorf("%s produce to %s: %v, want INVALID_TOPIC_EXCEPTION", name, internal, kerr.ErrorForCode(code))
			}
		}
	}

	p.kill9(t)
	p2 := startSkiff(t, bin, dir)
	adm2 := newAdmin(t, p2.addr)

	fetched, err := adm2.FetchOffsets(testContext(t), "guard-group")
	if err != nil {
		t.Fatalf("fetch offsets after restart: %v", err)
	}
	if o, ok := fetched.Lookup(topic, 0); !ok || o.Err != nil || o.At != 7 {
		t.Errorf("committed offset after restart: %+v (found %v), want 7", o, ok)
	}
	described, err := adm2.DescribeTransactions(testContext(t), "guard-commit", "guard-abort")
	if err != nil {
		t.Fatalf("describe transactions: %v", err)
	}
	for id, want := range map[string]string{"guard-commit": "CompleteCommit", "guard-abort": "CompleteAbort"} {
		if d, ok := described[id]; !ok || d.Err != nil || d.State != want {
			t.Errorf("transaction %s after restart: %+v, want %s", id, d, want)
		}
	}

	// A plain produce/consume round trip; read_committed sees the
	// committed transaction and the new record, never the aborted one.
	produceSync(t, newClient(t, p2.addr), &kgo.Record{Topic: topic, Value: []byte("after-restart")})
	end := partitionEndOffset(t, p2.addr, topic, true)
	got := valuesUpTo(t, p2.addr, topic, end, true)
	if want := []string{"committed-1", "committed-2", "after-restart"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed after restart: %q, want %q", got, want)
	}
}
