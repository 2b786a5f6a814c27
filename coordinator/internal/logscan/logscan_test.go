package logscan

import (
	"bytes"
	"testing"

	"github.com/skiffmq/skiff/protocol"
)

// memLog serves whole batches from offset, at most maxBytes of them, the
// way a partition log does (without the "at least one batch" rule, so the
// scan must grow its reads for a large batch).
type memLog struct {
	batches [][]byte
	reads   int
}

func (m *memLog) ReadRecords(offset int64, maxBytes int) ([]byte, int64, error) {
	m.reads++
	var out []byte
	for i, b := range m.batches {
		if int64(i) < offset {
			continue
		}
		if len(out)+len(b) > maxBytes {
			// Return a cut batch, as a byte-limited read may.
			out = append(out, b[:maxBytes-len(out)]...)
			break
		}
		out = append(out, b...)
	}
	return out, int64(len(m.batches)), nil
}

func batch(t *testing.T, offset int64, value []byte) []byte {
	t.Helper()
	h := protocol.BatchHeader{BaseOffset: offset, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	b, err := protocol.BuildBatch(nil, h, protocol.CodecNone, []protocol.Record{{Value: value}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBatchesInOrderAcrossCutReadsAndLargeBatches(t *testing.T) {
	l := &memLog{}
	want := [][]byte{[]byte("a"), bytes.Repeat([]byte("b"), 3<<20), []byte("c")}
	for i, v := range want {
		l.batches = append(l.batches, batch(t, int64(i), v))
	}
	var got [][]byte
	err := Batches(l, func(b []byte, h protocol.BatchHeader) error {
		recs, err := protocol.DecodeRecords(b, nil)
		if err != nil {
			return err
		}
		if h.BaseOffset != int64(len(got)) {
			t.Errorf("batch at offset %d, want %d", h.BaseOffset, len(got))
		}
		got = append(got, recs[0].Value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("scanned %d batches, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
}
