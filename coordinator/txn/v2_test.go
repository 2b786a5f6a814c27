package txn

import (
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestEndTxnV2Transitions walks EndTxn v5 through the cases of Kafka's
// TransactionCoordinator.endTransaction for transaction version 2: a bump
// at every end, a retry one epoch back answered with the current epoch, an
// abort with nothing open that only bumps, and what stays refused.
func TestEndTxnV2Transitions(t *testing.T) {
	c := newTestCoordinator(t, &memLog{}, filepath.Join(t.TempDir(), "ids.json"))
	const id = "tv2"
	pid, e0, code := c.InitProducerID(id, 60000, -1, -1)
	if code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	tp := TopicPartition{Topic: "t", Partition: 0}
	end := func(epoch int16, commit bool) (int16, int16) {
		t.Helper()
		_, e, code := c.EndTxn(id, pid, epoch, commit, true)
		return e, code
	}
	if _, code := end(e0, true); code != kerr.InvalidTxnState.Code {
		t.Fatalf("commit with nothing open: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if code := c.AddImplicit("", pid, e0, tp, false); code != 0 {
		t.Fatalf("implicit add: %v", kerr.ErrorForCode(code))
	}
	e1, code := end(e0, true)
	if code != 0 || e1 != e0+1 {
		t.Fatalf("commit: epoch %d %v, want %d", e1, kerr.ErrorForCode(code), e0+1)
	}
	if e, code := end(e0, true); code != 0 || e != e1 {
		t.Fatalf("retried commit: epoch %d %v, want success at %d", e, kerr.ErrorForCode(code), e1)
	}
	if _, code := end(e0, false); code != kerr.InvalidTxnState.Code {
		t.Fatalf("abort retried after a commit: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if _, code := end(e1, true); code != kerr.InvalidTxnState.Code {
		t.Fatalf("second commit with nothing open: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	e2, code := end(e1, false)
	if code != 0 || e2 != e1+1 {
		t.Fatalf("empty abort: epoch %d %v, want a bump to %d", e2, kerr.ErrorForCode(code), e1+1)
	}
	if e, code := end(e1, false); code != 0 || e != e2 {
		t.Fatalf("retried empty abort: epoch %d %v, want success at %d", e, kerr.ErrorForCode(code), e2)
	}
	if _, code := end(e0, false); code != kerr.ProducerFenced.Code {
		t.Fatalf("two epochs back: %v, want PRODUCER_FENCED", kerr.ErrorForCode(code))
	}
	if code := c.AddImplicit("", pid, e1, tp, false); code != kerr.ProducerFenced.Code {
		t.Fatalf("implicit add at the old epoch: %v, want PRODUCER_FENCED", kerr.ErrorForCode(code))
	}
	if _, _, code := c.EndTxn(id, pid+1, e2, true, true); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("wrong producer id: %v, want INVALID_PRODUCER_ID_MAPPING", kerr.ErrorForCode(code))
	}
}
