package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// wireRequests records the key and version of every request a client
// writes, read from the bytes on the wire (size, key, version), so a test
// sees what was negotiated rather than what a client says it did.
type wireRequests struct {
	mu   sync.Mutex
	seen map[int16]map[int16]int // key -> version -> count
}

// dialer is a kgo.Dialer whose connections report to w.
func (w *wireRequests) dialer(ctx context.Context, network, host string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, w: w}, nil
}

func (w *wireRequests) versions(key kmsg.Key) map[int16]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[int16]int{}
	for v, n := range w.seen[int16(key)] {
		out[v] = n
	}
	return out
}

// sniffConn splits what is written into request frames.
type sniffConn struct {
	net.Conn
	w   *wireRequests
	buf []byte
}

func (c *sniffConn) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	for len(c.buf) >= 8 {
		size := int(binary.BigEndian.Uint32(c.buf))
		if len(c.buf) < 4+size {
			break
		}
		key, version := int16(binary.BigEndian.Uint16(c.buf[4:])), int16(binary.BigEndian.Uint16(c.buf[6:]))
		c.w.mu.Lock()
		if c.w.seen == nil {
			c.w.seen = map[int16]map[int16]int{}
		}
		if c.w.seen[key] == nil {
			c.w.seen[key] = map[int16]int{}
		}
		c.w.seen[key][version]++
		c.w.mu.Unlock()
		c.buf = c.buf[4+size:]
	}
	return c.Conn.Write(p)
}

// TestTxnV2FranzGoNegotiates: with transaction.version 2 finalized, a
// franz-go transactional producer uses KIP-890 part 2 (acceptance 3 of
// issue 15): EndTxn v5 on the wire, Produce v12+, no AddPartitionsToTxn
// (the produce adds the partition), and an epoch bump at every
// transaction end, each returned by EndTxn. Read-committed consumers see
// the committed transactions only.
func TestTxnV2FranzGoNegotiates(t *testing.T) {
	b := startBroker(t, nil)
	const topic = "txn-v2"
	createTopic(t, newAdmin(t, b.Addr()), topic, 2, nil)
	if _, f, _ := apiVersionFeatures(t, b.Addr()); f["transaction.version"] != 2 {
		t.Fatalf("transaction.version finalized at %d, want 2", f["transaction.version"])
	}
	var wire wireRequests
	cl := txnClient(t, b.Addr(), "v2", kgo.Dialer(wire.dialer))
	warmUp(t, cl)
	var epochs []int16
	for i, commit := range []bool{true, false, true} {
		produceTxn(t, cl, topic, commit, "v"+string(rune('a'+i)))
		epochs = append(epochs, describeTxn(t, b.Addr(), "v2").ProducerEpoch)
	}
	for i := 1; i < len(epochs); i++ {
		if epochs[i] != epochs[i-1]+1 {
			t.Fatalf("producer epochs after each transaction %v: want one bump per transaction", epochs)
		}
	}
	if v := wire.versions(kmsg.EndTxn); len(v) != 1 || v[5] != 3 {
		t.Errorf("EndTxn versions on the wire %v, want v5 three times", v)
	}
	for v := range wire.versions(kmsg.Produce) {
		if v < 12 {
			t.Errorf("Produce v%d on the wire; a transaction v2 producer sends v12+", v)
		}
	}
	if v := wire.versions(kmsg.AddPartitionsToTxn); len(v) != 0 {
		t.Errorf("AddPartitionsToTxn sent %v; under transaction v2 the produce adds the partition", v)
	}
	end := partitionEndOffset(t, b.Addr(), topic, false)
	if got := strings.Join(valuesUpTo(t, b.Addr(), topic, end, true), ","); got != "va,vc" {
		t.Errorf("read_committed saw %q, want va,vc", got)
	}
}

// warmUp makes cl learn the broker's ApiVersions, finalized features
// included, before its first transaction: franz-go decides on transaction
// v2 when it initializes its producer id, from the versions it has seen by
// then (without them its first transaction is a v1 one, and it switches
// at the end of it).
func warmUp(t *testing.T, cl *kgo.Client) {
	t.Helper()
	if err := cl.Ping(testContext(t)); err != nil {
		t.Fatal(err)
	}
}

// txnBatch is recordBatch as producer pid's transactional batch at epoch,
// sequence seq.
func txnBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	raw := recordBatch(values...)
	binary.BigEndian.PutUint16(raw[21:], 0x10) // attributes: transactional
	binary.BigEndian.PutUint64(raw[43:], uint64(pid))
	binary.BigEndian.PutUint16(raw[51:], uint16(epoch))
	binary.BigEndian.PutUint32(raw[53:], uint32(seq))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoliTable))
	return raw
}

// TestTxnV2LateBatchAfterEndTxnRefused: a transactional batch of a
// transaction that has ended (its producer's old epoch, sent after EndTxn
// v5) is refused, whether it comes as Produce v12 (adds its partition) or
// v11 (verification only), and nothing lands after the marker. See also
// server's TestLateTxnBatchRefusedAfterMarker, which drives the batch into
// the window between verification and append.
func TestTxnV2LateBatchAfterEndTxnRefused(t *testing.T) {
	b := startBroker(t, nil)
	const topic = "txn-v2-late"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	cl := txnClient(t, b.Addr(), "late")
	warmUp(t, cl)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSync(t, cl, &kgo.Record{Topic: topic, Value: []byte("in")})
	before := describeTxn(t, b.Addr(), "late")
	if err := cl.EndTransaction(testContext(t), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	end := partitionEndOffset(t, b.Addr(), topic, false)

	c := dialRaw(t, b.Addr())
	for i, v := range []int16{12, 11} {
		req := produceV9(topic, 0, txnBatch(before.ProducerID, before.ProducerEpoch, 1, "late"))
		req.Version, req.TransactionID = v, kmsg.StringPtr("late")
		resp := roundTrip(t, c, req, int32(i+1)).(*kmsg.ProduceResponse)
		code := resp.Topics[0].Partitions[0].ErrorCode
		if err := kerr.ErrorForCode(code); !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.InvalidTxnState) {
			t.Errorf("Produce v%d of the ended transaction's epoch: %v, want INVALID_PRODUCER_EPOCH or INVALID_TXN_STATE", v, err)
		}
	}
	if got := partitionEndOffset(t, b.Addr(), topic, false); got != end {
		t.Fatalf("high watermark %d after the late batches, was %d", got, end)
	}
	if lso := partitionEndOffset(t, b.Addr(), topic, true); lso != end {
		t.Fatalf("last stable offset %d, high watermark %d: a late batch opened a transaction", lso, end)
	}
}

// TestTxnV2ProducerAfterIDExpiration: a transaction v2 producer whose
// partition state expired (producer.id.expiration.ms) goes on: its next
// transaction starts at the epoch its last EndTxn returned, sequence 0,
// and the partition, which no longer knows it, accepts it as Kafka does
// (an unknown producer's first batch is taken at any sequence).
func TestTxnV2ProducerAfterIDExpiration(t *testing.T) {
	b := startBroker(t, map[string]string{
		"producer.id.expiration.ms":                "200",
		"producer.id.expiration.check.interval.ms": "50",
	})
	const topic = "txn-v2-expiry"
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, topic, 1, nil)
	cl := txnClient(t, b.Addr(), "expiry")
	warmUp(t, cl)
	produceTxn(t, cl, topic, true, "before")
	eventually(t, 30*time.Second, "the partition to forget the producer", func() bool {
		ps, err := adm.DescribeProducers(testContext(t), kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		ps.EachProducer(func(kadm.DescribedProducer) { n++ })
		return n == 0
	})
	produceTxn(t, cl, topic, true, "after")
	end := partitionEndOffset(t, b.Addr(), topic, false)
	if got := strings.Join(valuesUpTo(t, b.Addr(), topic, end, true), ","); got != "before,after" {
		t.Fatalf("read_committed saw %q, want before,after", got)
	}
}
