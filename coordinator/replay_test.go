package coordinator

import (
	"testing"

	"github.com/skiffmq/skiff/protocol"
)

// garbageBatch is a batch whose header and CRC are valid but whose records
// cannot be decoded: what a client could once produce into an internal
// topic, since the CRC covers whatever bytes it sends.
func garbageBatch(t *testing.T) []byte {
	t.Helper()
	b := mustBatch(t, 1, []kv{{[]byte("key"), []byte("value-value-value")}})
	for i := protocol.BatchHeaderSize; i < len(b); i++ {
		b[i] = 0xff
	}
	protocol.UpdateCRC(b)
	return b
}

// TestReplayReadsCompressedAndSkipsUndecodableOffsetsBatches: a gzip batch
// in __consumer_offsets stopped the broker from starting ("compressed
// __consumer_offsets batches are not supported"), and so did any batch
// whose records could not be decoded. Kafka's loader reads every codec; an
// unreadable batch is now logged and skipped, and everything around it is
// kept.
func TestReplayReadsCompressedAndSkipsUndecodableOffsetsBatches(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	if code := h.commit(commitReq("g", "", -1, "t1", 0, 10)); code != 0 {
		t.Fatalf("commit: code %d", code)
	}

	// Written straight into the log, as a disk from an older broker (or
	// one a client wrote to) would hold them.
	rec := kv{offsetCommitKey("g", "t1", 1), offsetCommitValue(&offsetEntry{offset: 21, leaderEpoch: -1, expireTime: -1})}
	hdr := protocol.BatchHeader{PartitionLeaderEpoch: -1, BaseTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	gz, err := protocol.BuildBatch(nil, hdr, protocol.CodecGzip, []protocol.Record{{Key: rec.key, Value: rec.value}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{gz, garbageBatch(t)} {
		if _, err := h.logs[0].AppendRecords(b, true); err != nil {
			t.Fatal(err)
		}
	}
	if code := h.commit(commitReq("g", "", -1, "t2", 0, 30)); code != 0 {
		t.Fatalf("commit: code %d", code)
	}

	h.restart()
	for _, want := range []struct {
		topic     string
		partition int32
		offset    int64
	}{{"t1", 0, 10}, {"t1", 1, 21}, {"t2", 0, 30}} {
		if off, code := h.fetchOne("g", want.topic, want.partition); code != 0 || off != want.offset {
			t.Errorf("%s-%d after restart: offset %d code %d, want %d", want.topic, want.partition, off, code, want.offset)
		}
	}
	// The coordinator still writes after replaying past the bad batch.
	if code := h.commit(commitReq("g", "", -1, "t1", 2, 40)); code != 0 {
		t.Fatalf("commit: code %d", code)
	}
	h.restart()
	if off, code := h.fetchOne("g", "t1", 2); code != 0 || off != 40 {
		t.Fatalf("commit after replay: offset %d code %d", off, code)
	}
}
