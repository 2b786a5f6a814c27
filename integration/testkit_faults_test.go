package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/skiffmq/skiff/skifftest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The test kit's fault injection (issue 17, acceptance 2): each test makes
// the broker misbehave in one way and checks that a real client recovers
// with every record exactly once.

// faultHits counts the requests a fault applied to.
func faultHits(b *skifftest.Broker, id int64) int {
	n := 0
	for _, r := range b.Requests() {
		if r.FaultID == id {
			n++
		}
	}
	return n
}

// consumeValues reads n records of topic from the start and returns their
// values in partition order, failing the test on a timeout.
func consumeValues(t *testing.T, addr, topic string, n int, opts ...kgo.Opt) []string {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx := testContext(t)
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records of %s: %v", len(got), n, topic, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func wantValues(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// TestFaultIdempotentProducerNotLeaderThrice: three produce requests are
// answered NOT_LEADER_OR_FOLLOWER; the idempotent producer retries and each
// record is stored once.
func TestFaultIdempotentProducerNotLeaderThrice(t *testing.T) {
	b := skifftest.New(t, skifftest.Topic("idem", 1, nil))
	id := b.InjectFault(skifftest.Fault{
		APIKey: int16(kmsg.Produce), Topic: "idem", Partition: ptr(int32(0)),
		Action: skifftest.FaultError, ErrorCode: kerr.NotLeaderForPartition.Code, Times: 3,
	})
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("idem"), kgo.MetadataMinAge(10*time.Millisecond))
	want := wantValues(50, "r")
	recs := make([]*kgo.Record, len(want))
	for i, v := range want {
		recs[i] = &kgo.Record{Value: []byte(v)}
	}
	if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce after NOT_LEADER_OR_FOLLOWER: %v", err)
	}
	if n := faultHits(b, id); n != 3 {
		t.Errorf("fault applied to %d produce requests, want 3", n)
	}
	if pid := recs[0].ProducerID; pid < 0 {
		t.Errorf("producer id %d: the producer was not idempotent", pid)
	}
	ends, err := newAdmin(t, b.Addr()).ListEndOffsets(testContext(t), "idem")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("idem", 0); o.Offset != int64(len(want)) {
		t.Errorf("end offset %d, want %d: records lost or duplicated", o.Offset, len(want))
	}
	if got := consumeValues(t, b.Addr(), "idem", len(want)); !slices.Equal(got, want) {
		t.Errorf("consumed %v, want %v", got, want)
	}
}

// TestFaultDroppedProduceRetried: a produce request is never answered; the
// idempotent producer times it out, reconnects and retries, and nothing is
// written twice (the dropped request was never handled).
func TestFaultDroppedProduceRetried(t *testing.T) {
	b := skifftest.New(t, skifftest.Topic("drop", 1, nil))
	id := b.InjectFault(skifftest.Fault{APIKey: int16(kmsg.Produce), Topic: "drop", Action: skifftest.FaultDrop, Times: 1})
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("drop"),
		kgo.ProduceRequestTimeout(200*time.Millisecond), kgo.RequestTimeoutOverhead(200*time.Millisecond))
	want := wantValues(5, "d")
	for _, v := range want {
		if err := cl.ProduceSync(testContext(t), &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if n := faultHits(b, id); n != 1 {
		t.Errorf("fault applied to %d produce requests, want 1", n)
	}
	if got := consumeValues(t, b.Addr(), "drop", len(want)); !slices.Equal(got, want) {
		t.Errorf("consumed %v, want %v", got, want)
	}
}

// TestFaultFetchConnectionClosedRetried: the broker closes the connection
// on the first fetch of the topic; the consumer reconnects and reads every
// record once, in order.
func TestFaultFetchConnectionClosedRetried(t *testing.T) {
	b := skifftest.New(t, skifftest.Topic("fc", 1, nil))
	want := wantValues(20, "f")
	produceValuesTo(t, b.Addr(), "fc", want)
	id := b.InjectFault(skifftest.Fault{APIKey: int16(kmsg.Fetch), Topic: "fc", Action: skifftest.FaultClose, Times: 2})
	got := consumeValues(t, b.Addr(), "fc", len(want))
	if !slices.Equal(got, want) {
		t.Errorf("consumed %v, want %v", got, want)
	}
	if n := faultHits(b, id); n != 2 {
		t.Errorf("fault closed %d fetch connections, want 2", n)
	}
	fetches := 0
	for _, r := range b.Requests() {
		if r.API == "Fetch" && r.FaultID == 0 {
			fetches++
		}
	}
	if fetches == 0 {
		t.Error("no fetch was answered after the closed connections")
	}
}

func produceValuesTo(t *testing.T, addr, topic string, values []string) {
	t.Helper()
	cl := newClient(t, addr, kgo.DefaultProduceTopic(topic))
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Value: []byte(v)}
	}
	if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// TestFaultGroupRebalanceInProgress: a heartbeat is answered
// REBALANCE_IN_PROGRESS; the member rejoins, keeps its partitions, and with
// its commits reads every record exactly once across the rebalance.
func TestFaultGroupRebalanceInProgress(t *testing.T) {
	b := skifftest.New(t, skifftest.Topic("rb", 2, nil))
	first := wantValues(10, "a")
	produceValuesTo(t, b.Addr(), "rb", first)
	opts := []kgo.Opt{
		kgo.ConsumeTopics("rb"), kgo.ConsumerGroup("rb-group"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(50 * time.Millisecond), kgo.SessionTimeout(5 * time.Second),
	}
	cl := newClient(t, b.Addr(), opts...)
	ctx := testContext(t)
	seen := map[string]int{}
	var id int64
	joinsBefore := 0
	poll := func(until func() bool) {
		t.Helper()
		for !until() {
			// Short polls: the condition may come true with no new record.
			pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			fs := cl.PollRecords(pctx, 100)
			cancel()
			if ctx.Err() != nil {
				t.Fatalf("timed out; seen %v; fault hits %d, joins %d (before %d), heartbeats %d, consumer heartbeats %d", seen, faultHits(b, id), countAPI(b, "JoinGroup"), joinsBefore, countAPI(b, "Heartbeat"), countAPI(b, "ConsumerGroupHeartbeat"))
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		}
	}
	poll(func() bool { return len(seen) >= len(first) })
	joinsBefore = countAPI(b, "JoinGroup")
	id = b.InjectFault(skifftest.Fault{
		APIKey: int16(kmsg.Heartbeat), Group: "rb-group",
		Action: skifftest.FaultError, ErrorCode: kerr.RebalanceInProgress.Code, Times: 1,
	})
	second := wantValues(10, "b")
	produceValuesTo(t, b.Addr(), "rb", second)
	poll(func() bool {
		return len(seen) >= len(first)+len(second) && faultHits(b, id) == 1 && countAPI(b, "JoinGroup") > joinsBefore
	})
	for _, v := range append(first, second...) {
		if seen[v] != 1 {
			t.Errorf("record %s consumed %d times, want once", v, seen[v])
		}
	}
	if len(seen) != len(first)+len(second) {
		t.Errorf("consumed %d distinct records, want %d", len(seen), len(first)+len(second))
	}
}

// countAPI counts the requests of one API the broker has seen.
func countAPI(b *skifftest.Broker, api string) int {
	n := 0
	for _, r := range b.Requests() {
		if r.API == api {
			n++
		}
	}
	return n
}

func ptr[T any](v T) *T { return &v }

// TestFaultErrorOnAcksZeroProduceClosesConnection: an acks=0 produce gets
// no answer to carry an error code, so an injected error closes the
// connection, as Kafka does when such a produce fails; nothing is written.
func TestFaultErrorOnAcksZeroProduceClosesConnection(t *testing.T) {
	b := skifftest.New(t, skifftest.Topic("acks0", 1, nil))
	b.InjectFault(skifftest.Fault{APIKey: int16(kmsg.Produce), Action: skifftest.FaultError, ErrorCode: kerr.NotLeaderForPartition.Code})
	c := dialRaw(t, b.Addr())
	req := produceV9("acks0", 0, recordBatch("a", "b"))
	req.Acks = 0
	sendRaw(t, c, encodeRequest(req, 1))
	expectClosed(t, c)
	if end := endOffset(t, newAdmin(t, b.Addr()), "acks0", 0); end != 0 {
		t.Errorf("end offset %d after a faulted acks=0 produce, want 0", end)
	}
}
