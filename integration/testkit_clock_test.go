package integration

import (
	"testing"
	"time"

	"github.com/skiffmq/skiff/skifftest"
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
	produceValues(t, b.Addr(), "txexp", []string{"after"})
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
