package storage

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffmq/skiff/protocol"
)

// idempotentBatch is a one-record batch from producer pid at epoch 0 with
// the given base sequence, stamped now (an old timestamp would make the
// producer expire at once).
func idempotentBatch(pid int64, seq int32) []byte {
	return producerBatchAt(pid, 0, seq, time.Now().UnixMilli())
}

// producerBatchAt is a one-record batch from producer pid at epoch with
// the given base sequence and timestamp.
func producerBatchAt(pid int64, epoch int16, seq int32, ts int64) []byte {
	b := makeBatch(1, 200, ts, 'p')
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	protocol.UpdateCRC(b)
	return b
}

// TestProducerStateSnapshotAtRollSurvivesCrash: a crash after several rolls
// still detects a retried batch, starting from the snapshot written at the
// last roll rather than a scan of every segment.
func TestProducerStateSnapshotAtRollSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig() // 4 KiB segments: a roll every ~15 batches
	st := openTestStore(t, dir)
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	var lastRes AppendResult
	for seq := int32(0); seq < 60; seq++ {
		last = idempotentBatch(7, seq)
		lastRes = mustAppend(t, l, append([]byte(nil), last...), AppendOptions{Sync: true})
	}
	if len(segmentFiles(t, l.Dir(), ".log")) < 3 {
		t.Fatal("expected several rolled segments")
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), producerSnapshotFile)); err != nil {
		t.Fatalf("no producer state snapshot after rolls: %v", err)
	}
	crash(t, st)

	st = openTestStore(t, dir)
	t.Cleanup(func() { st.Close() })
	l, err = st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Append(append([]byte(nil), last...), AppendOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Duplicate || res.BaseOffset != lastRes.BaseOffset {
		t.Fatalf("retry after a crash: duplicate=%v at %d, want the original at %d", res.Duplicate, res.BaseOffset, lastRes.BaseOffset)
	}
	if _, err := l.Append(idempotentBatch(7, 62), AppendOptions{Sync: true}); err == nil {
		t.Fatal("a sequence gap after a crash was accepted")
	}
	if res := mustAppend(t, l, idempotentBatch(7, 60), AppendOptions{Sync: true}); res.Duplicate || res.BaseOffset != lastRes.BaseOffset+1 {
		t.Fatalf("next in sequence: %+v", res)
	}
}
