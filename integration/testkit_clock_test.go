package integration

import (
	"testing"
	"time"

	"github.com/skiffmq/skiff/skifftest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClockExpiresTransaction (issue 17, acceptance 3): a transaction left
// open is aborted once the test advances the broker's clock past its
// transaction.timeout.ms, with no waiting in real time: the last stable
// offset moves past it and read_committed consumers never see its records.
func TestClockExpiresTransaction(t *testing.T) {
	b := skifftest.New(t, skifftest.Topic("txexp", 1, nil))
	ctx := testContext(t)
	const timeout = 10 * time.Minute // far beyond the test's run time
	tx := newClient(t, b.Addr(), kgo.TransactionalID("expiring"), kgo.TransactionTimeout(timeout), kgo.DefaultProduceTopic("txexp"))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	recs := []*kgo.Record{{Value: []byte("t0")}, {Value: []byte("t1")}, {Value: []byte("t2")}}
	if err := tx.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, b.Addr())
	lso := func() (stable, end int64) {
		t.Helper()
		c, err := adm.ListCommittedOffsets(ctx, "txexp")
		if err != nil {
			t.Fatal(err)
		}
		e, err := adm.ListEndOffsets(ctx, "txexp")
		if err != nil {
			t.Fatal(err)
		}
		co, _ := c.Lookup("txexp", 0)
		eo, _ := e.Lookup("txexp", 0)
		return co.Offset, eo.Offset
	}
	if stable, end := lso(); stable != 0 || end != 3 {
		t.Fatalf("open transaction: last stable offset %d, end %d; want 0 and 3", stable, end)
	}

	b.Advance(timeout + time.Second)
	eventually(t, 30*time.Second, "the timed-out transaction to be aborted", func() bool {
		stable, end := lso()
		return end == 4 && stable == 4 // three records and the ABORT marker
	})

	// A record written after the abort is the only one read_committed sees.
	produceValuesTo(t, b.Addr(), "txexp", []string{"after"})
	committed := consumeValues(t, b.Addr(), "txexp", 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if len(committed) != 1 || committed[0] != "after" {
		t.Errorf("read_committed consumed %v, want only [after]", committed)
	}
	uncommitted := consumeValues(t, b.Addr(), "txexp", 4, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if len(uncommitted) != 4 || uncommitted[0] != "t0" || uncommitted[3] != "after" {
		t.Errorf("read_uncommitted consumed %v, want t0 t1 t2 after", uncommitted)
	}
	// The producer was fenced by the abort: its commit fails.
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("committing the aborted transaction succeeded")
	}
}

// TestClockAppliesRetention: records older than retention.ms by the
// broker's clock are deleted once the test advances it; nothing waits for
// log.retention.check.interval.ms in real time.
func TestClockAppliesRetention(t *testing.T) {
	b := skifftest.New(t, skifftest.Topic("ret", 1, map[string]string{"retention.ms": "3600000"}))
	produceValuesTo(t, b.Addr(), "ret", wantValues(5, "x"))
	adm := newAdmin(t, b.Addr())
	start := func() int64 {
		t.Helper()
		s, err := adm.ListStartOffsets(testContext(t), "ret")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := s.Lookup("ret", 0)
		return o.Offset
	}
	b.Advance(30 * time.Minute)
	if s := start(); s != 0 {
		t.Fatalf("log start %d after 30 minutes of a 1 hour retention, want 0", s)
	}
	b.Advance(time.Hour)
	if s := start(); s != 5 {
		t.Errorf("log start %d after 90 minutes of a 1 hour retention, want 5", s)
	}
}

// TestClockExpiresProducerIDs: an idle idempotent producer is forgotten
// after producer.id.expiration.ms by the broker's clock.
func TestClockExpiresProducerIDs(t *testing.T) {
	b := skifftest.New(t, skifftest.Topic("pids", 1, nil), skifftest.Setting("producer.id.expiration.ms", "3600000"))
	produceValuesTo(t, b.Addr(), "pids", wantValues(3, "p"))
	adm := newAdmin(t, b.Addr())
	producers := func() int {
		t.Helper()
		ds, err := adm.DescribeProducers(testContext(t), kadm.TopicsSet{"pids": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		ds.EachProducer(func(kadm.DescribedProducer) { n++ })
		return n
	}
	if n := producers(); n != 1 {
		t.Fatalf("%d producers after an idempotent produce, want 1", n)
	}
	b.Advance(2 * time.Hour)
	if n := producers(); n != 0 {
		t.Errorf("%d producers 2 hours after their last write with a 1 hour expiration, want 0", n)
	}
}
