package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMetricsTransactionsAndRejectedBatches runs one committed and one
// aborted transaction and one idempotent batch out of sequence, and checks
// the transaction gauges and counters and the rejected-batch reason.
func TestMetricsTransactionsAndRejectedBatches(t *testing.T) {
	b := startBroker(t, metricsSettings())
	adm := newAdmin(t, b.Addr())
	const topic = "txmetrics"
	createTopic(t, adm, topic, 1, nil)
	ctx := testContext(t)
	cl := newClient(t, b.Addr(), kgo.TransactionalID("metrics-txn"), kgo.DefaultProduceTopic(topic))
	value := func(name string) float64 { return metricValue(scrape(t, b.HTTPAddr()), name, nil) }

	for _, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		if open := value("skiff_transactions_open"); open != 1 {
			t.Errorf("inside a transaction: skiff_transactions_open = %v, want 1", open)
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}
	mfs := scrape(t, b.HTTPAddr())
	for name, want := range map[string]float64{"skiff_transactions_open": 0,
		"skiff_transactions_committed_total": 1, "skiff_transactions_aborted_total": 1} {
		if got := metricValue(mfs, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	init, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, newClient(t, b.Addr()))
	if err != nil || init.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %v", err, init)
	}
	rp := &rawProducer{t: t, topic: topic, topicID: td[topic].ID, pid: init.ProducerID, epoch: init.ProducerEpoch}
	if first := rp.produce(b.Addr(), rp.batch(0, 1)); first.ErrorCode != 0 {
		t.Fatalf("first batch: %v", kerr.ErrorForCode(first.ErrorCode))
	}
	if gap := rp.produce(b.Addr(), rp.batch(7, 1)); gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: %v", kerr.ErrorForCode(gap.ErrorCode))
	}
	lbl := map[string]string{"reason": "out_of_order_sequence_number"}
	if got := metricValue(scrape(t, b.HTTPAddr()), "skiff_producer_batches_rejected_total", lbl); got != 1 {
		t.Errorf("rejected out-of-order batches = %v, want 1", got)
	}
}

// TestMetricsConnectionsAndGroupMembers checks the per-listener connection
// gauge and counters against raw connections opened and closed, and a
// live consumer group's members and state.
func TestMetricsConnectionsAndGroupMembers(t *testing.T) {
	b := startBroker(t, metricsSettings())
	lbl := map[string]string{"listener": "PLAINTEXT"}
	conns := make([]interface{ Close() error }, 3)
	for i := range conns {
		c := dialRaw(t, b.Addr())
		roundTrip(t, c, kmsg.NewPtrApiVersionsRequest(), 1) // accepted and served
		conns[i] = c
	}
	mfs := scrape(t, b.HTTPAddr())
	if got := metricValue(mfs, "skiff_connections", lbl); got != 3 {
		t.Errorf("skiff_connections = %v, want 3", got)
	}
	if got := metricValue(mfs, "skiff_connections_opened_total", lbl); got != 3 {
		t.Errorf("skiff_connections_opened_total = %v, want 3", got)
	}
	conns[0].Close()
	eventually(t, 10*time.Second, "the closed connection to be counted", func() bool {
		mfs := scrape(t, b.HTTPAddr())
		return metricValue(mfs, "skiff_connections_closed_total", lbl) == 1 && metricValue(mfs, "skiff_connections", lbl) == 2
	})

	const topic, group = "members", "members-group"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, nil)
	cons := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group))
	ctx := testContext(t)
	go cons.PollFetches(ctx) // joins the group
	eventually(t, 30*time.Second, "one member in a stable group", func() bool {
		mfs := scrape(t, b.HTTPAddr())
		return metricValue(mfs, "skiff_group_members", map[string]string{"group": group}) == 1 &&
			metricValue(mfs, "skiff_group_info", map[string]string{"group": group, "state": "Stable"}) == 1
	})
}

// TestMetricsDisabled checks skiff.metrics.enable=false: the broker serves
// clients and health checks, and /metrics says metrics are off.
func TestMetricsDisabled(t *testing.T) {
	s := metricsSettings()
	s["skiff.metrics.enable"] = "false"
	b := startBroker(t, s)
	createTopic(t, newAdmin(t, b.Addr()), "unmetered", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("unmetered"))
	if err := cl.ProduceSync(testContext(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if code, body := httpGet(t, b.HTTPAddr(), "/metrics"); code != 404 || !strings.Contains(body, "disabled") {
		t.Errorf("/metrics with metrics off = %d %q, want 404", code, body)
	}
	if code, _ := httpGet(t, b.HTTPAddr(), "/readyz"); code != 200 {
		t.Errorf("/readyz = %d, want 200", code)
	}
}
