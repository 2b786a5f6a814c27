package protocol

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchRecords returns records of realistic shape (short keys, ~100-byte
// JSON-ish values, an occasional header) totalling about size bytes.
func benchRecords(size int) []Record {
	rng := rand.New(rand.NewPCG(13, 14))
	var recs []Record
	for n, i := 0, 0; n < size; i++ {
		r := Record{
			TimestampDelta: int64(i),
			OffsetDelta:    int32(i),
			Key:            fmt.Appendf(nil, "user-%d", rng.IntN(10000)),
			Value:          fmt.Appendf(nil, `{"id":%d,"event":"page_view","path":"/items/%d","ms":%d}`, i, rng.IntN(1e6), rng.IntN(5000)),
		}
		if i%10 == 0 {
			r.Headers = []Header{{Key: "traceparent", Value: fmt.Appendf(nil, "00-%032x-01", rng.Uint64())}}
		}
		recs = append(recs, r)
		n += len(r.Key) + len(r.Value) + 8
	}
	return recs
}

func benchBatch(b *testing.B, codec Codec, size int) []byte {
	batch, err := BuildBatch(nil, BatchHeader{BaseTimestamp: 1e12, ProducerID: -1, BaseSequence: -1}, codec, benchRecords(size))
	if err != nil {
		b.Fatal(err)
	}
	return batch
}

// BenchmarkValidateBatch measures the produce-path check, dominated by the
// CRC32C of a 16 KiB batch (the Java producer's default batch.size).
func BenchmarkValidateBatch(b *testing.B) {
	batch := benchBatch(b, CodecNone, 16<<10)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ValidateBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRecords measures decompress + decode of a 16 KiB (before
// compression) batch, reusing the scratch buffer as compaction would. Bytes
// are the uncompressed record bytes, so MB/s compare across codecs.
func BenchmarkDecodeRecords(b *testing.B) {
	for _, codec := range []Codec{CodecNone, CodecLZ4, CodecZstd, CodecSnappy, CodecGzip} {
		b.Run(codec.String(), func(b *testing.B) {
			batch := benchBatch(b, codec, 16<<10)
			raw := benchBatch(b, CodecNone, 16<<10)
			scratch := make([]byte, 0, 64<<10)
			b.SetBytes(int64(len(raw) - BatchHeaderSize))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeRecords(batch, scratch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecompress isolates the codecs on the same 16 KiB of records.
func BenchmarkDecompress(b *testing.B) {
	var raw []byte
	for _, r := range benchRecords(16 << 10) {
		raw = AppendRecord(raw, r)
	}
	for _, codec := range compressedCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			comp, err := Compress(codec, raw, nil)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, 64<<10)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := Decompress(codec, comp, dst, 0)
				if err != nil || !bytes.Equal(out[:8], raw[:8]) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadFrame measures reading request frames of typical sizes as
// the broker does: each into fresh memory, larger ones in pieces.
func BenchmarkReadFrame(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20, 16 << 20} {
		in := make([]byte, 4+size)
		in[0], in[1], in[2], in[3] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			r := bytes.NewReader(in)
			for b.Loop() {
				r.Reset(in)
				if _, err := ReadFrame(r, DefaultMaxRequestSize, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProduceCheck measures what Produce checks per batch: the header
// and CRC (ValidateBatch), then the records (ValidateRecords, which
// decompresses a compressed batch). Batches hold about 64 KiB of records of
// 100 B or 10 KiB values; bytes are the uncompressed record bytes.
func BenchmarkProduceCheck(b *testing.B) {
	for _, size := range []int{100, 10 << 10} {
		for _, codec := range []Codec{CodecNone, CodecLZ4} {
			rng := rand.New(rand.NewPCG(15, 16))
			var recs []Record
			for n := 0; n < 64<<10; n += size {
				v := make([]byte, size)
				for i := range v {
					v[i] = "abcdefgh"[rng.IntN(8)]
				}
				recs = append(recs, Record{OffsetDelta: int32(len(recs)), Key: []byte("key"), Value: v})
			}
			batch, err := BuildBatch(nil, BatchHeader{BaseTimestamp: 1e12, ProducerID: -1, BaseSequence: -1}, codec, recs)
			if err != nil {
				b.Fatal(err)
			}
			raw, _ := BuildBatch(nil, BatchHeader{}, CodecNone, recs)
			for _, check := range []string{"crc", "crc+records"} {
				b.Run(fmt.Sprintf("%dB/%s/%s", size, codec, check), func(b *testing.B) {
					b.SetBytes(int64(len(raw) - BatchHeaderSize))
					b.ReportAllocs()
					for b.Loop() {
						if _, err := ValidateBatch(batch); err != nil {
							b.Fatal(err)
						}
						if check == "crc" {
							continue
						}
						if _, err := ValidateRecords(batch, 0); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
