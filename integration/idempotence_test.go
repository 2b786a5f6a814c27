package integration

import (
	"context"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/protocol"
)

// faultyConn cuts its connection on some writes: either halfway through a
// request (the broker never sees it) or right after it (the broker
// handles it, the client never sees the answer), so that the idempotent
// producer must retry batches the broker may already have written.
type faultyConn struct {
	net.Conn
	cuts *atomic.Int64
	rng  *rand.Rand
	mu   sync.Mutex
}

func (c *faultyConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	roll := c.rng.IntN(100)
	c.mu.Unlock()
	switch {
	case roll < 8 && len(b) > 1:
		c.cuts.Add(1)
		n, _ := c.Conn.Write(b[:len(b)/2])
		c.Conn.Close()
		return n, net.ErrClosed
	case roll < 16:
		c.cuts.Add(1)
		n, err := c.Conn.Write(b)
		if err == nil {
			// Let the broker read the request before the cut.
			time.AfterFunc(2*time.Millisecond, func() { c.Conn.Close() })
		}
		return n, err
	}
	return c.Conn.Write(b)
}

// TestIdempotentProducerSurvivesConnectionCuts produces through
// connections that are cut at random mid-produce, and checks that every
// record arrived exactly once and in order: no duplicates, no gaps.
func TestIdempotentProducerSurvivesConnectionCuts(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	const topic = "idem-cuts"
	const partitions = 3
	createTopic(t, adm, topic, partitions, nil)

	var cuts atomic.Int64
	var seed atomic.Uint64
	dialer := func(ctx context.Context, network, host string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, host)
		if err != nil {
			return nil, err
		}
		return &faultyConn{Conn: nc, cuts: &cuts, rng: rand.New(rand.NewPCG(seed.Add(1), 7))}, nil
	}
	cl := newClient(t, b.Addr(),
		kgo.Dialer(dialer),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.MaxBufferedRecords(200),
		kgo.RetryBackoffFn(func(int) time.Duration { return 5 * time.Millisecond }),
	)
	const perPartition = 1500
	const round = 30 // records per partition per round: many requests, many cuts
	ctx := testContext(t)
	for start := 0; start < perPartition; start += round {
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := start; i < start+round; i++ {
			for p := range int32(partitions) {
				wg.Add(1)
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(strconv.Itoa(i))}
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						failed.Add(1)
						t.Errorf("produce: %v", err)
					}
				})
			}
		}
		wg.Wait()
		if failed.Load() > 0 {
			t.FailNow()
		}
	}
	if cuts.Load() == 0 {
		t.Fatal("no connection was cut; the test proved nothing")
	}
	t.Logf("%d connection cuts", cuts.Load())

	got := consumeN(t, b.Addr(), topic, perPartition*partitions)
	next := map[int32]int{}
	for _, r := range got {
		v, _ := strconv.Atoi(string(r.Value))
		if v != next[r.Partition] {
			t.Fatalf("partition %d offset %d: value %d, want %d (duplicate or gap)", r.Partition, r.Offset, v, next[r.Partition])
		}
		next[r.Partition]++
	}
	for p := range int32(partitions) {
		if next[p] != perPartition {
			t.Fatalf("partition %d: %d records, want %d", p, next[p], perPartition)
		}
	}
}

// rawProducer sends hand-built produce requests for one producer id.
type rawProducer struct {
	t       *testing.T
	topic   string
	topicID [16]byte
	pid     int64
	epoch   int16
}

func (rp *rawProducer) batch(seq int32, n int) []byte {
	rp.t.Helper()
	now := time.Now().UnixMilli()
	recs := make([]protocol.Record, n)
	for i := range recs {
		recs[i] = protocol.Record{OffsetDelta: int32(i), Value: []byte("v" + strconv.Itoa(int(seq)+i))}
	}
	b, err := protocol.BuildBatch(nil, protocol.BatchHeader{
		BaseTimestamp: now, MaxTimestamp: now, ProducerID: rp.pid, ProducerEpoch: rp.epoch, BaseSequence: seq,
	}, protocol.CodecNone, recs)
	if err != nil {
		rp.t.Fatal(err)
	}
	return b
}

// produce sends batch to partition 0 and returns the partition's answer.
func (rp *rawProducer) produce(addr string, batch []byte) kmsg.ProduceResponseTopicPartition {
	rp.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = rp.topic, rp.topicID
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition, p.Records = 0, batch
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	cl := newClient(rp.t, addr)
	resp, err := req.RequestWith(testContext(rp.t), cl)
	if err != nil {
		rp.t.Fatalf("produce: %v", err)
	}
	return resp.Topics[0].Partitions[0]
}

func highWatermark(t *testing.T, addr, topic string) int64 {
	t.Helper()
	offs, err := newAdmin(t, addr).ListEndOffsets(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offs.Lookup(topic, 0)
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	return o.Offset
}

// TestIdempotentDuplicateDetectedAfterRestart replays a batch after a
// broker restart: the broker answers with the original offset and writes
// nothing. It checks both ways the producer state comes back: from the
// snapshot written at shutdown, and by rescanning the log without it.
func TestIdempotentDuplicateDetectedAfterRestart(t *testing.T) {
	for _, rescan := range []bool{false, true} {
		t.Run(map[bool]string{false: "snapshot", true: "rescan"}[rescan], func(t *testing.T) {
			dir := t.TempDir()
			b := startBroker(t, nil, dir)
			adm := newAdmin(t, b.Addr())
			const topic = "idem-restart"
			createTopic(t, adm, topic, 1, nil)
			td, err := adm.ListTopics(testContext(t), topic)
			if err != nil {
				t.Fatal(err)
			}
			init, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(testContext(t), newClient(t, b.Addr()))
			if err != nil || init.ErrorCode != 0 {
				t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(init.ErrorCode))
			}
			rp := &rawProducer{t: t, topic: topic, topicID: td[topic].ID, pid: init.ProducerID, epoch: init.ProducerEpoch}

			first := rp.produce(b.Addr(), rp.batch(0, 3))
			second := rp.produce(b.Addr(), rp.batch(3, 2))
			if first.ErrorCode != 0 || second.ErrorCode != 0 || second.BaseOffset != 3 {
				t.Fatalf("produce: %+v %+v", first, second)
			}
			// A retry before the restart is a duplicate too.
			if dup := rp.produce(b.Addr(), rp.batch(3, 2)); dup.ErrorCode != 0 || dup.BaseOffset != 3 {
				t.Fatalf("retry: error %v base %d", kerr.ErrorForCode(dup.ErrorCode), dup.BaseOffset)
			}

			b.Close()
			if rescan {
				if err := os.Remove(filepath.Join(dir, topic+"-0", "producer-state.snapshot")); err != nil {
					t.Fatal(err)
				}
			}
			b = startBroker(t, nil, dir)
			for _, c := range []struct {
				seq  int32
				n    int
				base int64
			}{{0, 3, 0}, {3, 2, 3}} {
				dup := rp.produce(b.Addr(), rp.batch(c.seq, c.n))
				if dup.ErrorCode != 0 || dup.BaseOffset != c.base {
					t.Fatalf("replayed seq %d after restart: error %v base %d, want base %d", c.seq, kerr.ErrorForCode(dup.ErrorCode), dup.BaseOffset, c.base)
				}
			}
			if hw := highWatermark(t, b.Addr(), topic); hw != 5 {
				t.Fatalf("high watermark %d after replays, want 5 (nothing written)", hw)
			}
			if gap := rp.produce(b.Addr(), rp.batch(9, 1)); gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
				t.Fatalf("sequence gap: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(gap.ErrorCode))
			}
			if next := rp.produce(b.Addr(), rp.batch(5, 1)); next.ErrorCode != 0 || next.BaseOffset != 5 {
				t.Fatalf("next in sequence: %v base %d", kerr.ErrorForCode(next.ErrorCode), next.BaseOffset)
			}
		})
	}
}

// TestInitProducerIDNeverRepeats checks that producer ids are not handed
// out twice, even across a restart.
func TestInitProducerIDNeverRepeats(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, nil, dir)
	seen := map[int64]bool{}
	get := func(addr string) {
		resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(testContext(t), newClient(t, addr))
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
		}
		if seen[resp.ProducerID] {
			t.Fatalf("producer id %d handed out twice", resp.ProducerID)
		}
		seen[resp.ProducerID] = true
	}
	for range 5 {
		get(b.Addr())
	}
	b.Close()
	b = startBroker(t, nil, dir)
	for range 5 {
		get(b.Addr())
	}
}
