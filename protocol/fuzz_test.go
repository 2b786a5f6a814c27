package protocol

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

// fuzzLimit keeps decompression bombs cheap under the fuzzer while leaving
// room for every seed.
const fuzzLimit = 128 << 10

// seedBatches returns valid batches of every codec, plus a control batch
// and an empty one, for the fuzzers to mutate.
func seedBatches(tb testing.TB) [][]byte {
	rng := rand.New(rand.NewPCG(9, 10))
	var out [][]byte
	for _, codec := range append([]Codec{CodecNone}, compressedCodecs...) {
		for _, n := range []int{1, 5} {
			b, err := BuildBatch(nil, BatchHeader{BaseOffset: 3, BaseTimestamp: 1e12, ProducerID: -1, BaseSequence: -1},
				codec, genRecords(rng, n))
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, b)
		}
	}
	ctl, err := BuildControlBatch(nil, BatchHeader{ProducerID: 4}, true, 2)
	if err != nil {
		tb.Fatal(err)
	}
	empty, err := BuildBatch(nil, BatchHeader{LastOffsetDelta: 3}, CodecNone, nil)
	if err != nil {
		tb.Fatal(err)
	}
	// kmsg-encoded, kgo-compressed batches: the bytes real clients send.
	for _, codec := range compressedCodecs {
		recs := genRecords(rng, 3)
		out = append(out, kmsgBatch(codec, len(recs), kgoCompress(tb, codec, kmsgRecords(recs))))
	}
	return append(out, ctl, empty)
}

// FuzzValidateBatch: the header codec must never panic on arbitrary bytes,
// and a batch ValidateBatch accepts must lie within the input and stay
// valid through the rewrites the broker applies.
func FuzzValidateBatch(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), b...)) // two batches back to back
	}
	f.Add([]byte{})
	f.Add(make([]byte, BatchHeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		size, peekErr := PeekBatchSize(b)
		if peekErr == nil && size < BatchHeaderSize {
			t.Fatalf("PeekBatchSize %d, below the header size", size)
		}
		_, parseErr := ParseBatchHeader(b)
		h, err := ValidateBatch(b)
		if err != nil {
			return
		}
		if parseErr != nil || peekErr != nil {
			t.Fatalf("ValidateBatch accepted what Parse (%v) or Peek (%v) refused", parseErr, peekErr)
		}
		if h.Size() > len(b) || h.Size() < BatchHeaderSize || size != h.Size() {
			t.Fatalf("Size %d, Peek %d, input %d bytes", h.Size(), size, len(b))
		}
		batch := bytes.Clone(b[:h.Size()])
		SetBaseOffset(batch, 1<<40)
		SetPartitionLeaderEpoch(batch, 9)
		if h2, err := ValidateBatch(batch); err != nil || h2.BaseOffset != 1<<40 || h2.PartitionLeaderEpoch != 9 {
			t.Fatalf("after offset/epoch rewrite: %+v, %v", h2, err)
		}
		SetLogAppendTime(batch, 12345)
		if h2, err := ValidateBatch(batch); err != nil || h2.MaxTimestamp != 12345 || !h2.IsLogAppendTime() {
			t.Fatalf("after SetLogAppendTime: %+v, %v", h2, err)
		}
	})
}

// FuzzDecodeRecords: arbitrary bytes as a batch must never panic, and
// whatever decodes must survive a rebuild: BuildBatch of the decoded
// records, decoded again, gives the same records.
func FuzzDecodeRecords(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := decodeRecords(b, nil, fuzzLimit)
		if err != nil {
			return
		}
		if len(recs) > fuzzLimit/minRecordSize {
			t.Fatalf("%d records from at most %d bytes", len(recs), fuzzLimit)
		}
		h, err := ParseBatchHeader(b)
		if err != nil {
			t.Fatalf("decoded a batch whose header does not parse: %v", err)
		}
		if h.IsControl() {
			for _, r := range recs {
				ParseControlRecordKey(r.Key)
				ParseControlRecordValue(r.Value)
			}
		}
		rebuilt, err := BuildBatch(nil, h, h.Codec(), recs)
		if err != nil {
			t.Fatalf("BuildBatch of decoded records: %v", err)
		}
		if _, err := ValidateBatch(rebuilt); err != nil {
			t.Fatalf("rebuilt batch invalid: %v", err)
		}
		again, err := decodeRecords(rebuilt, nil, 2*fuzzLimit)
		if err != nil {
			t.Fatalf("decoding the rebuilt batch: %v", err)
		}
		if len(recs) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(recs, again) {
			t.Fatalf("records changed through a rebuild:\n%+v\n%+v", recs, again)
		}
	})
}

// fuzzDecompress fuzzes Decompress for one codec, seeded with our own and
// franz-go's compressed output.
func fuzzDecompress(f *testing.F, codec Codec) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, p := range [][]byte{{}, []byte("a"), bytes.Repeat([]byte("skiff "), 1000), kmsgRecords(genRecords(rng, 20))} {
		c, err := Compress(codec, p, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c)
		f.Add(kgoCompress(f, codec, p))
	}
	if codec == CodecSnappy {
		f.Add(xerialFrame([]byte("one"), []byte("two")))
		f.Add(xerialFrame())
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecompress(t, codec, b) })
}

// checkDecompress checks one input: no panic on any input; output within
// the limit; a limit one byte short of the output fails as too large;
// decompressing into a reused buffer gives the same bytes; and small
// outputs survive our own compress/decompress round trip.
func checkDecompress(t *testing.T, codec Codec, b []byte) {
	out, err := Decompress(codec, b, nil, fuzzLimit)
	if err != nil {
		if !errors.Is(err, ErrCompressedCorrupt) && !errors.Is(err, ErrDecompressedTooLarge) {
			t.Fatalf("error outside the documented ones: %v", err)
		}
		return
	}
	if len(out) > fuzzLimit {
		t.Fatalf("%d bytes out, limit %d", len(out), fuzzLimit)
	}
	if len(out) > 1 { // a limit of 0 means the default
		if _, err := Decompress(codec, b, nil, len(out)-1); !errors.Is(err, ErrDecompressedTooLarge) {
			t.Fatalf("limit %d for %d bytes: %v", len(out)-1, len(out), err)
		}
	}
	reused, err := Decompress(codec, b, make([]byte, 3, 64), fuzzLimit)
	if err != nil || !bytes.Equal(reused, out) {
		t.Fatalf("into a reused buffer: %v (equal %v)", err, bytes.Equal(reused, out))
	}
	if len(out) > 16<<10 {
		// Compressing is the slow half; the small outputs are enough
		// to check the round trip, and keep minimizing quick.
		return
	}
	comp, err := Compress(codec, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decompress(codec, comp, nil, fuzzLimit)
	if err != nil || !bytes.Equal(back, out) {
		t.Fatalf("round trip: %v (equal %v)", err, bytes.Equal(back, out))
	}
}

func FuzzDecompressGzip(f *testing.F)   { fuzzDecompress(f, CodecGzip) }
func FuzzDecompressSnappy(f *testing.F) { fuzzDecompress(f, CodecSnappy) }
func FuzzDecompressLZ4(f *testing.F)    { fuzzDecompress(f, CodecLZ4) }
func FuzzDecompressZstd(f *testing.F)   { fuzzDecompress(f, CodecZstd) }
