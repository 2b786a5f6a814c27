package integration

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnClient is a transactional franz-go producer.
func txnClient(t *testing.T, addr, id string, opts ...kgo.Opt) *kgo.Client {
	return newClient(t, addr, append([]kgo.Opt{
		kgo.TransactionalID(id),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, opts...)...)
}

// produceTxn runs one transaction of values to partition 0 and ends it.
func produceTxn(t *testing.T, cl *kgo.Client, topic string, commit bool, values ...string) {
	t.Helper()
	ctx := testContext(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce in transaction: %v", err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit=%v): %v", commit, err)
	}
}

// partitionEndOffset returns partition 0's end offset for an isolation level: the
// high watermark, or the last stable offset for read_committed.
func partitionEndOffset(t *testing.T, addr, topic string, committed bool) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), newClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

// valuesUpTo reads partition 0 up to (not including) end with the given
// isolation level and returns the record values.
func valuesUpTo(t *testing.T, addr, topic string, end int64, committed bool) []string {
	t.Helper()
	opts := []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
	}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := newClient(t, addr, opts...)
	ctx, cancel := context.WithTimeout(testContext(t), 30*time.Second)
	defer cancel()
	// Everything below end is decided before the call, so the consumer
	// reaches it quickly; the read ends at the first quiet second once it
	// has seen a record at or past end-1 or been quiet twice (the tail
	// below end may be markers and aborted batches, which it never sees).
	var out []string
	last, quiet := int64(-1), 0
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("reading %s to offset %d: timed out with %v", topic, end, out)
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch: %v", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < end {
				out = append(out, string(r.Value))
			}
			last = max(last, r.Offset)
		})
		if fs.NumRecords() > 0 {
			quiet = 0
			continue
		}
		quiet++
		if last >= end-1 || quiet >= 2 {
			return out
		}
	}
}

// TestTxnAbortedInvisibleToReadCommitted runs an aborted and a committed
// transaction: read_committed readers (franz-go and kcat) see only the
// committed records, read_uncommitted ones see both.
func TestTxnAbortedInvisibleToReadCommitted(t *testing.T) {
	b := startBroker(t, nil)
	const topic = "txn-visibility"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	cl := txnClient(t, b.Addr(), "vis")
	produceTxn(t, cl, topic, false, "a1", "a2", "a3")
	produceTxn(t, cl, topic, true, "c1", "c2")
	produceTxn(t, cl, topic, false, "a4")

	hw := partitionEndOffset(t, b.Addr(), topic, false)
	if lso := partitionEndOffset(t, b.Addr(), topic, true); lso != hw || hw != 9 {
		t.Fatalf("high watermark %d, last stable offset %d; want 9 and 9 (6 records, 3 markers)", hw, lso)
	}
	if got := strings.Join(valuesUpTo(t, b.Addr(), topic, hw, true), ","); got != "c1,c2" {
		t.Fatalf("read_committed saw %q, want c1,c2", got)
	}
	if got := strings.Join(valuesUpTo(t, b.Addr(), topic, hw, false), ","); got != "a1,a2,a3,c1,c2,a4" {
		t.Fatalf("read_uncommitted saw %q", got)
	}
	out := runKcat(t, "", "-b", b.Addr(), "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%s\n")
	if got := strings.Fields(out); strings.Join(got, ",") != "c1,c2" {
		t.Fatalf("kcat read_committed saw %q, want c1,c2", out)
	}
	out = runKcat(t, "", "-b", b.Addr(), "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_uncommitted", "-f", "%s\n")
	if got := strings.Fields(out); len(got) != 6 {
		t.Fatalf("kcat read_uncommitted saw %q, want 6 records", out)
	}
}

// TestTxnOpenTransactionHoldsLSO checks that an open transaction holds the
// last stable offset at its first record while the high watermark moves
// on, that read_committed readers stop there, and that a hanging
// transaction is aborted once its timeout passes, fencing its producer.
func TestTxnOpenTransactionHoldsLSO(t *testing.T) {
	b := startBroker(t, map[string]string{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "50"})
	const topic = "txn-hanging"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	plain := newClient(t, b.Addr())
	produceSync(t, plain, &kgo.Record{Topic: topic, Value: []byte("p0")})

	cl := txnClient(t, b.Addr(), "hanging", kgo.TransactionTimeout(time.Second))
	ctx := testContext(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSync(t, cl, &kgo.Record{Topic: topic, Value: []byte("t1")})
	produceSync(t, plain, &kgo.Record{Topic: topic, Value: []byte("p1")})
	if hw, lso := partitionEndOffset(t, b.Addr(), topic, false), partitionEndOffset(t, b.Addr(), topic, true); hw != 3 || lso != 1 {
		t.Fatalf("with an open transaction: high watermark %d, LSO %d; want 3 and 1", hw, lso)
	}
	// Fetch at read_committed returns only what is below the LSO.
	if got := valuesUpTo(t, b.Addr(), topic, 1, true); strings.Join(got, ",") != "p0" {
		t.Fatalf("read_committed with an open transaction saw %v", got)
	}

	eventually(t, 15*time.Second, "the timed-out transaction to be aborted", func() bool {
		return partitionEndOffset(t, b.Addr(), topic, true) == 4
	})
	if got := strings.Join(valuesUpTo(t, b.Addr(), topic, 4, true), ","); got != "p0,p1" {
		t.Fatalf("read_committed after the timeout saw %q, want p0,p1", got)
	}
	err := cl.EndTransaction(ctx, kgo.TryCommit)
	if err == nil {
		t.Fatal("commit of a transaction aborted for its timeout succeeded")
	}
	t.Logf("commit after timeout: %v", err)
}

// TestTxnSecondProducerFencesFirst starts a transaction, then initializes a
// second producer with the same transactional id: the first is fenced and
// its open transaction aborted.
func TestTxnSecondProducerFencesFirst(t *testing.T) {
	b := startBroker(t, nil)
	const topic = "txn-fence"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	ctx := testContext(t)

	first := txnClient(t, b.Addr(), "fence")
	if err := first.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSync(t, first, &kgo.Record{Topic: topic, Value: []byte("zombie")})

	second := txnClient(t, b.Addr(), "fence")
	produceTxn(t, second, topic, true, "fresh") // InitProducerId on first use fences first

	err := first.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("zombie2")}).FirstErr()
	if err == nil {
		err = first.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("fenced producer: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	end := partitionEndOffset(t, b.Addr(), topic, false)
	if lso := partitionEndOffset(t, b.Addr(), topic, true); lso != end {
		t.Fatalf("LSO %d, high watermark %d: the fenced transaction was left open", lso, end)
	}
	if got := strings.Join(valuesUpTo(t, b.Addr(), topic, end, true), ","); got != "fresh" {
		t.Fatalf("read_committed saw %q, want only fresh", got)
	}

	// With transaction.version 2 the second producer's commit (EndTxn v5)
	// bumped the epoch: an EndTxn one epoch back is a retry of that commit,
	// answered with success and the current epoch, as Kafka does; two
	// epochs back it is the fenced first producer, refused with
	// PRODUCER_FENCED.
	desc := describeTxn(t, b.Addr(), "fence")
	endTxn := func(epoch int16) *kmsg.EndTxnResponse {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = "fence", desc.ProducerID, epoch, true
		resp, err := req.RequestWith(ctx, newClient(t, b.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version < 5 {
			t.Fatalf("EndTxn answered at v%d, want v5", resp.Version)
		}
		return resp
	}
	if resp := endTxn(desc.ProducerEpoch - 1); resp.ErrorCode != 0 || resp.ProducerEpoch != desc.ProducerEpoch {
		t.Fatalf("retried EndTxn v5 commit: %v epoch %d, want success with epoch %d", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerEpoch, desc.ProducerEpoch)
	}
	if resp := endTxn(desc.ProducerEpoch - 2); resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("EndTxn with a stale epoch: %v, want PRODUCER_FENCED", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func describeTxn(t *testing.T, addr, id string) kmsg.DescribeTransactionsResponseTransactionState {
	t.Helper()
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{id}
	resp, err := req.RequestWith(testContext(t), newClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	return resp.TransactionStates[0]
}

// TestTxnSurvivesRestartMidTransaction restarts the broker with a
// transaction open: afterwards the transaction is still known, holds the
// LSO, and is aborted by its timeout; committed data and offsets from
// before the restart are intact. A second open transaction is instead
// fenced by a new producer after the restart.
func TestTxnSurvivesRestartMidTransaction(t *testing.T) {
	dir := t.TempDir()
	settings := map[string]string{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "50"}
	b := startBroker(t, settings, dir)
	const topic = "txn-restart"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	committed := txnClient(t, b.Addr(), "restart-committed")
	produceTxn(t, committed, topic, true, "before")

	hanging := txnClient(t, b.Addr(), "restart-timeout", kgo.TransactionTimeout(2*time.Second))
	if err := hanging.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSync(t, hanging, &kgo.Record{Topic: topic, Value: []byte("lost-1")})
	fenced := txnClient(t, b.Addr(), "restart-fenced", kgo.TransactionTimeout(time.Minute))
	if err := fenced.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceSync(t, fenced, &kgo.Record{Topic: topic, Value: []byte("lost-2")})
	hanging.Close()
	fenced.Close()

	b.Close()
	b = startBroker(t, settings, dir)
	if st := describeTxn(t, b.Addr(), "restart-fenced"); st.ErrorCode != 0 || st.State != "Ongoing" {
		t.Fatalf("after restart: %v state %q, want Ongoing", kerr.ErrorForCode(st.ErrorCode), st.State)
	}
	if lso := partitionEndOffset(t, b.Addr(), topic, true); lso != 2 {
		t.Fatalf("LSO after restart %d, want 2 (the first open transaction's first offset)", lso)
	}
	// A new producer of restart-fenced aborts that transaction.
	again := txnClient(t, b.Addr(), "restart-fenced")
	produceTxn(t, again, topic, true, "after")
	// The timeout aborts restart-timeout.
	eventually(t, 15*time.Second, "every transaction to be decided", func() bool {
		return partitionEndOffset(t, b.Addr(), topic, true) == partitionEndOffset(t, b.Addr(), topic, false)
	})
	end := partitionEndOffset(t, b.Addr(), topic, false)
	if got := strings.Join(valuesUpTo(t, b.Addr(), topic, end, true), ","); got != "before,after" {
		t.Fatalf("read_committed after restart saw %q, want before,after", got)
	}
	for _, id := range []string{"restart-timeout", "restart-fenced"} {
		if st := describeTxn(t, b.Addr(), id); st.State != "CompleteAbort" && st.State != "CompleteCommit" && st.State != "Empty" {
			t.Fatalf("%s left in state %s", id, st.State)
		}
	}

	// Introspection: DescribeProducers and ListTransactions see them.
	adm := newAdmin(t, b.Addr())
	lt, err := adm.ListTransactions(testContext(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lt) != 3 {
		t.Fatalf("ListTransactions: %d transactions, want 3: %v", len(lt), lt)
	}
	dp, err := adm.DescribeProducers(testContext(t), kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	dp.EachProducer(func(kadm.DescribedProducer) { n++ })
	if n < 3 {
		t.Fatalf("DescribeProducers: %d producers, want at least 3", n)
	}
}

// TestTxnConsumeTransformProduceExactlyOnce copies an input topic to an
// output topic with franz-go's GroupTransactSession while members join and
// leave: the committed output holds every input record exactly once.
func TestTxnConsumeTransformProduceExactlyOnce(t *testing.T) {
	b := startBroker(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	adm := newAdmin(t, b.Addr())
	const in, out, group = "eos-in", "eos-out", "eos-group"
	const partitions, total = 4, 2000
	createTopic(t, adm, in, partitions, nil)
	createTopic(t, adm, out, 1, nil)
	src := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var recs []*kgo.Record
	for i := range total {
		recs = append(recs, &kgo.Record{Topic: in, Value: []byte(strconv.Itoa(i))})
	}
	produceSync(t, src, recs...)

	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	run := func(name string, stop <-chan struct{}) {
		sess, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(b.Addr()),
			kgo.TransactionalID("eos-"+name),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(in),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.DefaultProduceTopic(out),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.SessionTimeout(6*time.Second),
			kgo.FetchMaxWait(100*time.Millisecond),
		)
		if err != nil {
			t.Errorf("session: %v", err)
			return
		}
		defer sess.Close()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fs := sess.PollRecords(pctx, 50)
			pcancel()
			if fs.NumRecords() == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				t.Errorf("begin: %v", err)
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				sess.Produce(ctx, &kgo.Record{Value: r.Value}, func(_ *kgo.Record, err error) {
					if err != nil && ctx.Err() == nil {
						t.Logf("%s produce: %v", name, err)
					}
				})
			})
			if _, err := sess.End(ctx, kgo.TryCommit); err != nil && ctx.Err() == nil {
				t.Logf("%s end: %v", name, err) // aborted by a rebalance: redone by whoever owns the partitions
			}
		}
	}
	var wg sync.WaitGroup
	stops := map[string]chan struct{}{}
	start := func(name string) {
		stops[name] = make(chan struct{})
		wg.Add(1)
		go func() { defer wg.Done(); run(name, stops[name]) }()
	}
	start("a")
	outputAt := func() int64 { return partitionEndOffset(t, b.Addr(), out, true) }
	eventually(t, 30*time.Second, "some output", func() bool { return outputAt() > 100 })
	start("b")
	eventually(t, 30*time.Second, "more output", func() bool { return outputAt() > 600 })
	close(stops["a"])
	start("c")

	// Wait until the committed output stops growing and covers the input.
	var values []string
	eventually(t, 60*time.Second, "every input record in the output", func() bool {
		values = valuesUpTo(t, b.Addr(), out, outputAt(), true)
		return len(values) >= total
	})
	cancel()
	wg.Wait()
	seen := map[string]bool{}
	for _, v := range values {
		if seen[v] {
			t.Fatalf("value %s appears twice in the committed output", v)
		}
		seen[v] = true
	}
	if len(seen) != total {
		t.Fatalf("%d distinct values in the output, want %d", len(seen), total)
	}
}
