package txn

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/protocol"
)

// memLog is an in-memory __transaction_state partition.
type memLog struct {
	mu      sync.Mutex
	batches [][]byte
	next    int64
}

func (l *memLog) AppendRecords(records []byte, _ bool) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, err := protocol.ValidateBatch(records)
	if err != nil {
		return 0, err
	}
	b := append([]byte(nil), records[:h.Size()]...)
	base := l.next
	protocol.SetBaseOffset(b, base)
	l.next += int64(h.LastOffsetDelta) + 1
	l.batches = append(l.batches, b)
	return base, nil
}

func (l *memLog) ReadRecords(offset int64, maxBytes int) ([]byte, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []byte
	for _, b := range l.batches {
		h, _ := protocol.ParseBatchHeader(b)
		if h.LastOffset() < offset {
			continue
		}
		if len(out) > 0 && len(out)+len(b) > maxBytes {
			break
		}
		out = append(out, b...)
	}
	return out, l.next, nil
}

func newTestCoordinator(t *testing.T, l *memLog, idFile string) *Coordinator {
	t.Helper()
	c, err := New(Config{MaxTimeout: time.Minute, IDExpiration: time.Hour, AbortInterval: time.Minute}, Deps{
		Logger:          zerolog.Nop(),
		Logs:            []Log{l},
		WriteMarkers:    func(int64, int16, bool, []TopicPartition) error { return nil },
		PartitionExists: func(string, int32) bool { return true },
		IDFile:          idFile,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestReplayReadsCompressedAndSkipsUndecodableTxnBatches: a garbage batch
// in __transaction_state stopped the broker from starting ("records
// corrupt"). Replay now reads a compressed batch, skips (and logs) one it
// cannot decode, and keeps every transaction around them.
func TestReplayReadsCompressedAndSkipsUndecodableTxnBatches(t *testing.T) {
	l := &memLog{}
	idFile := filepath.Join(t.TempDir(), "producer_ids")
	c := newTestCoordinator(t, l, idFile)
	tp := []TopicPartition{{"t", 0}}
	for _, tc := range []struct {
		id     string
		commit bool
	}{{"committed", true}, {"aborted", false}} {
		pid, epoch, code := c.InitProducerID(tc.id, 10_000, -1, -1)
		if code != 0 {
			t.Fatalf("InitProducerID %s: %d", tc.id, code)
		}
		if codes := c.AddPartitions(tc.id, pid, epoch, tp, false, false); codes[0] != 0 {
			t.Fatalf("AddPartitions %s: %v", tc.id, codes)
		}
		if _, _, code := c.EndTxn(tc.id, pid, epoch, tc.commit, false); code != 0 {
			t.Fatalf("EndTxn %s: %d", tc.id, code)
		}
	}

	// A gzip batch holding one more transactional id, and a garbage batch,
	// written straight into the log as an older broker's disk may hold them.
	plain, err := encodeRecord(&txnMeta{id: "from-gzip", pid: 900, prevPID: -1, epoch: 3, lastEpoch: -1, timeoutMs: 5000, state: Empty, start: -1, lastUpdate: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := protocol.DecodeRecords(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := protocol.ParseBatchHeader(plain)
	gz, err := protocol.BuildBatch(nil, h, protocol.CodecGzip, recs)
	if err != nil {
		t.Fatal(err)
	}
	garbage := append([]byte(nil), plain...)
	for i := protocol.BatchHeaderSize; i < len(garbage); i++ {
		garbage[i] = 0xff
	}
	protocol.UpdateCRC(garbage)
	for _, b := range [][]byte{gz, garbage} {
		if _, err := l.AppendRecords(b, true); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	c2 := newTestCoordinator(t, l, idFile)
	for id, want := range map[string]State{"committed": CompleteCommit, "aborted": CompleteAbort, "from-gzip": Empty} {
		d, ok := c2.Describe(id)
		if !ok || d.State != want {
			t.Errorf("%s after replay: %+v (found %v), want %v", id, d, ok, want)
		}
	}
	if d, _ := c2.Describe("from-gzip"); d.ProducerID != 900 || d.ProducerEpoch != 3 {
		t.Errorf("from-gzip: pid %d epoch %d, want 900 and 3", d.ProducerID, d.ProducerEpoch)
	}
}
