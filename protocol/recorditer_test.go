package protocol_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"

	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/protocol/protocoltest"
	"github.com/twmb/franz-go/pkg/kerr"
)

var allCodecs = []protocol.Codec{protocol.CodecNone, protocol.CodecGzip, protocol.CodecSnappy, protocol.CodecLZ4, protocol.CodecZstd}

// testRecords returns n records with keys, values and headers of varied
// shape, null ones included, and timestamps that do not increase.
func testRecords(rng *rand.Rand, n int) []protocol.Record {
	recs := make([]protocol.Record, n)
	for i := range recs {
		r := &recs[i]
		r.OffsetDelta = int32(i)
		r.TimestampDelta = int64(rng.IntN(2000)) - 500
		if rng.IntN(4) > 0 {
			r.Key = fmt.Appendf(nil, "key-%d", rng.IntN(100))
		}
		if rng.IntN(5) > 0 {
			r.Value = make([]byte, rng.IntN(300))
			for j := range r.Value {
				r.Value[j] = byte(rng.IntN(8))
			}
		}
		for h := range rng.IntN(3) {
			r.Headers = append(r.Headers, protocol.Header{Key: fmt.Sprint("h", h), Value: []byte("v")})
		}
	}
	return recs
}

func buildBatch(t testing.TB, codec protocol.Codec, recs []protocol.Record) []byte {
	t.Helper()
	b, err := protocol.BuildBatch(nil, protocol.BatchHeader{BaseOffset: 7, BaseTimestamp: 1e12, ProducerID: -1, BaseSequence: -1}, codec, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// iterate walks batch with a RecordIterator in mode and returns copies of
// the records it yields.
func iterate(batch []byte, mode protocol.IterMode, maxSize int) ([]protocol.Record, error) {
	var it protocol.RecordIterator
	defer it.Close()
	it.Reset(batch, mode, maxSize)
	var out []protocol.Record
	for it.Next() {
		r := *it.Record()
		if mode == protocol.IterFull {
			r.Key, r.Value = clone(r.Key), clone(r.Value)
			r.Headers = append([]protocol.Header(nil), r.Headers...)
			for i := range r.Headers {
				r.Headers[i].Value = clone(r.Headers[i].Value)
			}
		}
		out = append(out, r)
	}
	return out, it.Err()
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func TestRecordIteratorMatchesDecodeRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, codec := range allCodecs {
		for _, n := range []int{1, 7, 2000} {
			t.Run(fmt.Sprint(codec, "/", n), func(t *testing.T) {
				batch := buildBatch(t, codec, testRecords(rng, n))
				want, err := protocol.DecodeRecords(batch, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := iterate(batch, protocol.IterFull, 0)
				if err != nil {
					t.Fatalf("full iteration: %v", err)
				}
				if !reflect.DeepEqual(normalize(got), normalize(want)) {
					t.Fatalf("full iteration differs from DecodeRecords")
				}
				skipped, err := iterate(batch, protocol.IterSkipKeyValue, 0)
				if err != nil || len(skipped) != n {
					t.Fatalf("skip iteration: %d records, %v", len(skipped), err)
				}
				for i, r := range skipped {
					if r.OffsetDelta != want[i].OffsetDelta || r.TimestampDelta != want[i].TimestampDelta || r.Key != nil || r.Value != nil {
						t.Fatalf("skip record %d: %+v, want deltas of %+v and no key or value", i, r, want[i])
					}
				}
				info, err := protocol.ValidateRecords(batch, 0)
				if err != nil {
					t.Fatalf("ValidateRecords: %v", err)
				}
				h, _ := protocol.ParseBatchHeader(batch)
				if info.MaxTimestamp != h.MaxTimestamp {
					t.Fatalf("max timestamp %d, header says %d", info.MaxTimestamp, h.MaxTimestamp)
				}
			})
		}
	}
}

// normalize makes empty header lists compare equal to nil ones.
func normalize(recs []protocol.Record) []protocol.Record {
	for i := range recs {
		if len(recs[i].Headers) == 0 {
			recs[i].Headers = nil
		}
	}
	return recs
}

// TestValidateRecordsRefusesLyingBatches: each batch whose CRC is right
// but whose records lie was once stored; ValidateRecords refuses it with
// the error the server turns into Kafka's code.
func TestValidateRecordsRefusesLyingBatches(t *testing.T) {
	for _, lb := range protocoltest.LyingBatches(1e12) {
		t.Run(lb.Name, func(t *testing.T) {
			if _, err := protocol.ValidateBatch(lb.Batch); err != nil && !errors.Is(err, protocol.ErrBatchOffsetDelta) {
				t.Fatalf("ValidateBatch: %v; the batch should only lie inside", err)
			}
			_, err := protocol.ValidateRecords(lb.Batch, 0)
			want := protocol.ErrRecordsCorrupt
			if lb.Want == kerr.CorruptMessage {
				want = protocol.ErrCompressedCorrupt
			}
			if !errors.Is(err, want) {
				t.Fatalf("ValidateRecords: %v, want %v", err, want)
			}
		})
	}
}

// TestValidateRecordsRefusesWrongOffsetDeltas: Kafka rewrites a compressed
// batch whose inner offsets are off; Skiff never recompresses, so it
// refuses any batch whose offset deltas are not 0..n-1.
func TestValidateRecordsRefusesWrongOffsetDeltas(t *testing.T) {
	for _, codec := range allCodecs {
		recs := testRecords(rand.New(rand.NewPCG(3, 4)), 3)
		recs[1].OffsetDelta = 0
		recs[2].OffsetDelta = 2
		batch := buildBatch(t, codec, recs)
		if _, err := protocol.ValidateRecords(batch, 0); !errors.Is(err, protocol.ErrRecordsCorrupt) {
			t.Errorf("%s: %v, want ErrRecordsCorrupt", codec, err)
		}
	}
}

func TestValidateRecordsSizeLimit(t *testing.T) {
	batch, err := protocoltest.CompressibleBatch(100_000, 1e12, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.ValidateRecords(batch, 0); err != nil {
		t.Fatalf("within the default limit: %v", err)
	}
	if _, err := protocol.ValidateRecords(batch, 64<<10); !errors.Is(err, protocol.ErrDecompressedTooLarge) {
		t.Fatalf("64 KiB limit: %v, want ErrDecompressedTooLarge", err)
	}
}

// TestRecordIteratorBombInFixedMemory is the regression test for the
// ListOffsets decompression bomb: 4 MB of zstd that hold five million
// records (55 MB) used to be decoded into a slice of every record, 737 MiB
// allocated per walk. The iterator must walk such a batch (two million
// records here, 300 MiB the old way) in memory that does not grow with the
// record count.
func TestRecordIteratorBombInFixedMemory(t *testing.T) {
	const n = 2_000_000
	batch, err := protocoltest.CompressibleBatch(n, 1e12, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	info, err := protocol.ValidateRecords(batch, 0)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := info.MaxTimestamp; got != 1e12+(n-1)/1000 {
		t.Fatalf("max timestamp %d", got)
	}
	// The zstd window (8 MiB at the encoder's default level) and the
	// 64 KiB read window; a per-record slice would be 100 times this.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Fatalf("walking %d compressed records allocated %d MiB", n, alloc>>20)
	}
}

// TestZeroDeltaBombRefusedAndWalkedInFixedMemory: the bomb of issue 9
// (9 million 7-byte records, all offset deltas 0, in a few kilobytes of
// zstd) is refused at its second record, and where one was stored before
// produce validated records, ListOffsets's skip-key-value walk over all of
// it costs fixed memory.
func TestZeroDeltaBombRefusedAndWalkedInFixedMemory(t *testing.T) {
	const n = 9_000_000
	batch, err := protocoltest.ZeroDeltaBomb(n, 1e12)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) > 64<<10 {
		t.Fatalf("bomb of %d bytes; the finding's was a few kilobytes", len(batch))
	}
	if _, err := protocol.ValidateRecords(batch, 0); !errors.Is(err, protocol.ErrRecordsCorrupt) {
		t.Fatalf("ValidateRecords: %v, want ErrRecordsCorrupt", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var it protocol.RecordIterator
	defer it.Close()
	it.Reset(batch, protocol.IterSkipKeyValue, 0)
	count := 0
	for it.Next() {
		count++
	}
	runtime.ReadMemStats(&after)
	if it.Err() != nil || count != n {
		t.Fatalf("walked %d records, %v; want %d", count, it.Err(), n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Fatalf("walking the bomb allocated %d MiB", alloc>>20)
	}
}
