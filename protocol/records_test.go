package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// genRecords makes n records covering the encoding's corners: null and
// empty keys and values, negative and large deltas, headers with null and
// empty values, and values long enough for multi-byte length varints.
func genRecords(rng *rand.Rand, n int) []Record {
	bytesOrNil := func(max int) []byte {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return b
	}
	recs := make([]Record, n)
	for i := range recs {
		r := Record{
			Attributes:     int8(rng.IntN(3)),
			TimestampDelta: int64(rng.IntN(1<<20)) - 1000,
			OffsetDelta:    int32(i),
			Key:            bytesOrNil(20),
			Value:          bytesOrNil(300),
		}
		switch i % 7 {
		case 3:
			r.TimestampDelta = math.MinInt64
		case 4:
			r.TimestampDelta = math.MaxInt64
		}
		for range rng.IntN(4) {
			r.Headers = append(r.Headers, Header{Key: fmt.Sprintf("h%d", rng.IntN(100)), Value: bytesOrNil(10)})
		}
		recs[i] = r
	}
	return recs
}

// kmsgRecords encodes records with franz-go's kmsg.Record, an independent
// encoder, as the oracle for our decoder.
func kmsgRecords(recs []Record) []byte {
	var out []byte
	for _, r := range recs {
		kr := kmsg.Record{
			Attributes:       r.Attributes,
			TimestampDelta:   int32(r.TimestampDelta),
			TimestampDelta64: r.TimestampDelta,
			OffsetDelta:      r.OffsetDelta,
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		// kmsg takes the length from the caller: encode once with a zero
		// (one-byte) length to measure the rest.
		kr.Length = int32(len(kr.AppendTo(nil)) - 1)
		out = kr.AppendTo(out)
	}
	return out
}

var testCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// kmsgBatch wraps encoded (and possibly compressed) records in a batch
// encoded by kmsg.RecordBatch, with the CRC computed here rather than by
// UpdateCRC so that the test does not trust the code under test.
func kmsgBatch(codec Codec, numRecords int, records []byte) []byte {
	kb := kmsg.RecordBatch{
		FirstOffset:          1000,
		PartitionLeaderEpoch: 7,
		Magic:                2,
		Attributes:           int16(codec) | AttrTransactional,
		LastOffsetDelta:      int32(numRecords - 1),
		FirstTimestamp:       1700000000000,
		MaxTimestamp:         1700000001000,
		ProducerID:           42,
		ProducerEpoch:        3,
		FirstSequence:        10,
		NumRecords:           int32(numRecords),
		Records:              records,
	}
	kb.Length = int32(len(kb.AppendTo(nil)) - batchLengthOverhead)
	b := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], testCastagnoli))
	return b
}

// TestDecodeRecordsKmsgEncoded decodes batches whose records kmsg encoded
// and franz-go's producer compressor compressed, as a real client sends
// them, and checks every field.
func TestDecodeRecordsKmsgEncoded(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, codec := range append([]Codec{CodecNone}, compressedCodecs...) {
		for _, n := range []int{1, 2, 50, 1000} {
			t.Run(fmt.Sprintf("%s/%d", codec, n), func(t *testing.T) {
				want := genRecords(rng, n)
				raw := kmsgRecords(want)
				if codec != CodecNone {
					raw = kgoCompress(t, codec, raw)
				}
				batch := kmsgBatch(codec, n, raw)
				h, err := ValidateBatch(batch)
				if err != nil {
					t.Fatalf("ValidateBatch: %v", err)
				}
				if h.Codec() != codec || int(h.NumRecords) != n {
					t.Fatalf("header: codec %s, %d records", h.Codec(), h.NumRecords)
				}
				got, err := DecodeRecords(batch, nil)
				if err != nil {
					t.Fatalf("DecodeRecords: %v", err)
				}
				diffRecords(t, got, want)
			})
		}
	}
}

func diffRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestBuildBatchKmsgDecoded builds batches with BuildBatch and reads them
// back with kmsg.RecordBatch, kgo's decompressor and kmsg.Record.
func TestBuildBatchKmsgDecoded(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dec := kgo.DefaultDecompressor()
	for _, codec := range append([]Codec{CodecNone}, compressedCodecs...) {
		t.Run(codec.String(), func(t *testing.T) {
			want := genRecords(rng, 300)
			in := BatchHeader{
				BaseOffset:           77,
				PartitionLeaderEpoch: 5,
				Attributes:           AttrTransactional | int16(CodecZstd), // codec bits are replaced
				BaseTimestamp:        1700000000000,
				ProducerID:           9,
				ProducerEpoch:        1,
				BaseSequence:         100,
			}
			prefix := []byte("prefix")
			out, err := BuildBatch(bytes.Clone(prefix), in, codec, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatal("BuildBatch overwrote dst")
			}
			batch := out[len(prefix):]

			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(batch); err != nil {
				t.Fatalf("kmsg ReadFrom: %v", err)
			}
			if got := crc32.Checksum(batch[offAttributes:], testCastagnoli); uint32(kb.CRC) != got {
				t.Fatalf("CRC %x, computed %x", uint32(kb.CRC), got)
			}
			if int(kb.Length)+batchLengthOverhead != len(batch) || kb.Magic != 2 {
				t.Fatalf("length %d of %d bytes, magic %d", kb.Length, len(batch), kb.Magic)
			}
			var maxTS int64 = math.MinInt64
			for _, r := range want {
				maxTS = max(maxTS, in.BaseTimestamp+r.TimestampDelta)
			}
			wantHdr := kmsg.RecordBatch{
				FirstOffset: 77, Length: kb.Length, PartitionLeaderEpoch: 5, Magic: 2, CRC: kb.CRC,
				Attributes: int16(codec) | AttrTransactional, LastOffsetDelta: 299,
				FirstTimestamp: in.BaseTimestamp, MaxTimestamp: maxTS, ProducerID: 9, ProducerEpoch: 1,
				FirstSequence: 100, NumRecords: 300, Records: kb.Records,
			}
			if !reflect.DeepEqual(kb, wantHdr) {
				t.Fatalf("header\n got %+v\nwant %+v", kb, wantHdr)
			}

			raw := kb.Records
			if codec != CodecNone {
				if raw, err = dec.Decompress(kb.Records, kgo.CompressionCodecType(codec)); err != nil {
					t.Fatalf("kgo decompress: %v", err)
				}
			}
			got := kmsgDecodeRecords(t, raw)
			diffRecords(t, got, want)

			// And our own decoder agrees.
			got, err = DecodeRecords(batch, nil)
			if err != nil {
				t.Fatal(err)
			}
			diffRecords(t, got, want)
		})
	}
}

// kmsgDecodeRecords splits raw records on their length prefixes and decodes
// each with kmsg.Record.
func kmsgDecodeRecords(t *testing.T, raw []byte) []Record {
	t.Helper()
	var out []Record
	for len(raw) > 0 {
		n, sz := binary.Varint(raw)
		if sz <= 0 || int(n) > len(raw)-sz {
			t.Fatalf("bad record length at %d bytes from the end", len(raw))
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(raw[:sz+int(n)]); err != nil {
			t.Fatalf("kmsg record: %v", err)
		}
		raw = raw[sz+int(n):]
		r := Record{
			Attributes: kr.Attributes, TimestampDelta: kr.TimestampDelta64, OffsetDelta: kr.OffsetDelta,
			Key: kr.Key, Value: kr.Value,
		}
		for _, h := range kr.Headers {
			r.Headers = append(r.Headers, Header{Key: h.Key, Value: h.Value})
		}
		out = append(out, r)
	}
	return out
}

func TestAppendRecordMatchesKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i, r := range genRecords(rng, 200) {
		if got, want := AppendRecord(nil, r), kmsgRecords([]Record{r}); !bytes.Equal(got, want) {
			t.Fatalf("record %d: %x, kmsg %x", i, got, want)
		}
	}
}

func TestBuildBatchFields(t *testing.T) {
	recs := []Record{{OffsetDelta: 0, TimestampDelta: 5}, {OffsetDelta: 1, TimestampDelta: -3}}
	t.Run("lastOffsetDelta kept when larger", func(t *testing.T) {
		// A compacted batch keeps its original last offset.
		b, err := BuildBatch(nil, BatchHeader{LastOffsetDelta: 9}, CodecNone, recs)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ValidateBatch(b)
		if err != nil || h.LastOffsetDelta != 9 || h.MaxTimestamp != 5 {
			t.Fatalf("%+v, %v", h, err)
		}
	})
	t.Run("log append time keeps max timestamp", func(t *testing.T) {
		b, err := BuildBatch(nil, BatchHeader{Attributes: AttrLogAppendTime, MaxTimestamp: 1234}, CodecLZ4, recs)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ValidateBatch(b)
		if err != nil || h.MaxTimestamp != 1234 || h.LastOffsetDelta != 1 || !h.IsLogAppendTime() {
			t.Fatalf("%+v, %v", h, err)
		}
	})
	t.Run("empty batch is uncompressed", func(t *testing.T) {
		b, err := BuildBatch(nil, BatchHeader{LastOffsetDelta: 4, MaxTimestamp: 8, ProducerID: 3}, CodecZstd, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ValidateBatch(b)
		if err != nil || len(b) != BatchHeaderSize || h.Codec() != CodecNone || h.NumRecords != 0 ||
			h.LastOffsetDelta != 4 || h.MaxTimestamp != 8 {
			t.Fatalf("%d bytes, %+v, %v", len(b), h, err)
		}
		if recs, err := DecodeRecords(b, nil); err != nil || len(recs) != 0 {
			t.Fatalf("decode: %v, %v", recs, err)
		}
	})
	t.Run("bad codec", func(t *testing.T) {
		dst := []byte("keep")
		out, err := BuildBatch(dst, BatchHeader{}, Codec(6), recs)
		if !errors.Is(err, ErrBatchCodec) || string(out) != "keep" {
			t.Fatalf("%q, %v", out, err)
		}
	})
}

func TestControlBatch(t *testing.T) {
	for _, commit := range []bool{false, true} {
		h := BatchHeader{BaseOffset: 50, BaseTimestamp: 1700000000123, ProducerID: 11, ProducerEpoch: 2, BaseSequence: 5}
		b, err := BuildControlBatch(nil, h, commit, 17)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ValidateBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		if !got.IsControl() || !got.IsTransactional() || got.BaseSequence != -1 || got.NumRecords != 1 ||
			got.LastOffsetDelta != 0 || got.MaxTimestamp != h.BaseTimestamp || got.ProducerID != 11 {
			t.Fatalf("header %+v", got)
		}
		recs, err := DecodeRecords(b, nil)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%v, %v", recs, err)
		}
		typ, err := ParseControlRecordKey(recs[0].Key)
		wantTyp := ControlAbort
		if commit {
			wantTyp = ControlCommit
		}
		if err != nil || typ != wantTyp {
			t.Fatalf("type %d, %v", typ, err)
		}
		epoch, err := ParseControlRecordValue(recs[0].Value)
		if err != nil || epoch != 17 {
			t.Fatalf("epoch %d, %v", epoch, err)
		}
		// Kafka's wire form: key version 0 + type, value version 0 + epoch.
		wantKey := []byte{0, 0, 0, 0}
		if commit {
			wantKey[3] = 1
		}
		if !bytes.Equal(recs[0].Key, wantKey) || !bytes.Equal(recs[0].Value, []byte{0, 0, 0, 0, 0, 17}) {
			t.Fatalf("key %x value %x", recs[0].Key, recs[0].Value)
		}
	}
	// Newer versions parse as version 0; short or negative-version keys fail.
	if typ, err := ParseControlRecordKey([]byte{0, 1, 0, 1, 9, 9}); err != nil || typ != ControlCommit {
		t.Fatalf("v1 key: %d, %v", typ, err)
	}
	for _, bad := range [][]byte{nil, {0, 0, 1}, {0xff, 0xff, 0, 1}} {
		if _, err := ParseControlRecordKey(bad); !errors.Is(err, ErrRecordsCorrupt) {
			t.Fatalf("key %x: %v", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {0, 0, 0, 0, 1}, {0x80, 0, 0, 0, 0, 1}} {
		if _, err := ParseControlRecordValue(bad); !errors.Is(err, ErrRecordsCorrupt) {
			t.Fatalf("value %x: %v", bad, err)
		}
	}
}

// uncompressedBatch wraps hand-written record bytes in a batch claiming n
// records, with a valid CRC, for the hostile-input cases.
func uncompressedBatch(n int32, records []byte) []byte {
	b := kmsgBatch(CodecNone, 1, records)
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(n))
	UpdateCRC(b)
	return b
}

func TestDecodeRecordsHostile(t *testing.T) {
	// varint appends Kafka's zigzag varint of v.
	varint := func(vs ...int64) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.AppendVarint(b, v)
		}
		return b
	}
	one := AppendRecord(nil, Record{Key: []byte("k"), Value: []byte("v")})
	tests := []struct {
		name string
		n    int32
		recs []byte
		want error
	}{
		{"negative count", -1, one, ErrRecordsCorrupt},
		{"count larger than bytes allow", math.MaxInt32, one, ErrRecordsCorrupt},
		{"count one too many", 2, append(bytes.Clone(one), make([]byte, 7)...), ErrRecordsCorrupt},
		{"trailing bytes", 1, append(bytes.Clone(one), 0), ErrRecordsCorrupt},
		{"negative record length", 1, append(varint(-5), make([]byte, 10)...), ErrRecordsCorrupt},
		{"record length past end", 1, append(varint(100), make([]byte, 10)...), ErrRecordsCorrupt},
		{"record length too short", 1, append(varint(3), 0, 0, 0, 0, 0, 0, 0), ErrRecordsCorrupt},
		{"key past record end", 1, append(varint(6, 0, 0, 0, 50), 0, 0), ErrRecordsCorrupt},
		{"overlong varint", 1, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0}, ErrRecordsCorrupt},
		{"varint over int32", 1, append([]byte{0xfe, 0xff, 0xff, 0xff, 0x1f}, make([]byte, 8)...), ErrRecordsCorrupt},
		{"huge header count", 1, append(varint(7, 0, 0, 0, -1, -1, math.MaxInt32), 0), ErrRecordsCorrupt},
		{"negative header count", 1, varint(6, 0, 0, 0, -1, -1, -1), ErrRecordsCorrupt},
		{"negative header key", 1, append(varint(8, 0, 0, 0, -1, -1, 1, -1), 0), ErrRecordsCorrupt},
		{"header value past end", 1, append(varint(10, 0, 0, 0, -1, -1, 1, 0, 20), 0, 0), ErrRecordsCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := DecodeRecords(uncompressedBatch(tt.n, tt.recs), nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v (records %v)", err, tt.want, recs)
			}
			t.Log(err)
		})
	}

	// Any negative key or value length is null, as in Kafka.
	recs, err := DecodeRecords(uncompressedBatch(1, append(varint(6, 0, 0, 0, -7, -1), 0)), nil)
	if err != nil || recs[0].Key != nil || recs[0].Value != nil {
		t.Fatalf("negative lengths: %+v, %v", recs, err)
	}

	// Header-level problems.
	good := kmsgBatch(CodecNone, 1, one)
	mutated := func(b []byte, f func([]byte)) []byte {
		b = bytes.Clone(b)
		f(b)
		return b
	}
	for name, b := range map[string][]byte{
		"truncated header": good[:BatchHeaderSize-1],
		"truncated body":   good[:len(good)-1],
		"length past end": mutated(good, func(b []byte) {
			binary.BigEndian.PutUint32(b[offBatchLength:], math.MaxInt32-batchLengthOverhead)
		}),
		"bad magic":     mutated(good, func(b []byte) { b[offMagic] = 1 }),
		"codec 7":       mutated(good, func(b []byte) { b[offAttributes+1] |= 7 }),
		"empty codec 7": mutated(uncompressedBatch(0, nil), func(b []byte) { b[offAttributes+1] |= 7 }),
	} {
		if _, err := DecodeRecords(b, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestDecodeRecordsAliasing: keys and values point into the batch (or the
// decompression buffer) but are capped, so appending to one cannot clobber
// the next field.
func TestDecodeRecordsAliasing(t *testing.T) {
	recs := []Record{
		{Key: []byte("ab"), Value: []byte("cd"), Headers: []Header{{Key: "h0"}}},
		{Key: []byte("ef"), Value: []byte("gh"), Headers: []Header{{Key: "h1"}}},
	}
	b, _ := BuildBatch(nil, BatchHeader{}, CodecNone, recs)
	got, err := DecodeRecords(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got[0].Headers, Header{Key: "clobber"})
	if got[1].Headers[0].Key != "h1" {
		t.Fatalf("headers clobbered: %+v", got[1].Headers)
	}
	if cap(got[0].Key) != 2 {
		t.Fatalf("key capacity %d, want 2", cap(got[0].Key))
	}
	_ = append(got[0].Key, 'X', 'Y', 'Z')
	if string(got[0].Value) != "cd" {
		t.Fatalf("value clobbered: %q", got[0].Value)
	}

	// The decompression buffer is used when large enough.
	b, _ = BuildBatch(nil, BatchHeader{}, CodecZstd, recs)
	scratch := make([]byte, 0, 4096)
	got, err = DecodeRecords(b, scratch)
	if err != nil {
		t.Fatal(err)
	}
	inScratch := func(p []byte) bool {
		s := scratch[:cap(scratch)]
		for i := range s {
			if &s[i] == &p[0] {
				return true
			}
		}
		return false
	}
	if !inScratch(got[1].Value) {
		t.Fatal("records do not alias scratch")
	}
}

// TestDecodeRecordsBombBounded: a small batch whose records decompress past
// the limit fails instead of allocating.
func TestDecodeRecordsBombBounded(t *testing.T) {
	raw := AppendRecord(nil, Record{Value: make([]byte, 2<<20)})
	comp, err := Compress(CodecZstd, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := kmsgBatch(CodecZstd, 1, comp)
	if _, err := decodeRecords(b, nil, 1<<20); !errors.Is(err, ErrDecompressedTooLarge) {
		t.Fatalf("err = %v, want ErrDecompressedTooLarge", err)
	}
	if recs, err := decodeRecords(b, nil, 4<<20); err != nil || len(recs[0].Value) != 2<<20 {
		t.Fatalf("under the limit: %v", err)
	}
}
