// Package protocoltest builds record batches for tests: batches with any
// header over any payload, and the malformed batches a broker must refuse
// at produce time although their CRC is right. The protocol fuzzers seed
// from them and the integration tests send them over the wire.
package protocoltest

import (
	"encoding/binary"
	"math"

	"github.com/klauspost/compress/zstd"
	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kerr"
)

// RawBatch returns a magic-2 batch with the given codec, record count and
// last offset delta around payload, taken as the batch's (possibly
// compressed) records whatever it holds. Length and CRC are right, so only
// what lies inside can be wrong. The producer fields say "no producer" and
// the timestamps are ts.
func RawBatch(codec protocol.Codec, numRecords, lastOffsetDelta int32, ts int64, payload []byte) []byte {
	b := make([]byte, protocol.BatchHeaderSize, protocol.BatchHeaderSize+len(payload))
	binary.BigEndian.PutUint32(b[8:], uint32(protocol.BatchHeaderSize-12+len(payload)))
	binary.BigEndian.PutUint32(b[12:], math.MaxUint32) // partition leader epoch -1
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], uint16(codec))
	binary.BigEndian.PutUint32(b[23:], uint32(lastOffsetDelta))
	binary.BigEndian.PutUint64(b[27:], uint64(ts))
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	binary.BigEndian.PutUint64(b[43:], math.MaxUint64) // producer id -1
	binary.BigEndian.PutUint16(b[51:], math.MaxUint16) // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], math.MaxUint32) // base sequence -1
	binary.BigEndian.PutUint32(b[57:], uint32(numRecords))
	b = append(b, payload...)
	protocol.UpdateCRC(b)
	return b
}

// LyingBatch is a batch whose CRC is right but whose records contradict
// their header or their own framing, with the error Kafka's produce path
// answers for it.
type LyingBatch struct {
	Name  string
	Batch []byte
	Want  *kerr.Error
}

// record encodes one record of offset delta off with value v, its length
// prefix computed.
func record(off int32, v string) []byte {
	return protocol.AppendRecord(nil, protocol.Record{OffsetDelta: off, Value: []byte(v)})
}

// recordBody frames body (a record's fields after its length) with a
// length prefix that counts exactly its bytes.
func recordBody(body ...[]byte) []byte {
	var b []byte
	for _, p := range body {
		b = append(b, p...)
	}
	return append(binary.AppendVarint(nil, int64(len(b))), b...)
}

// LyingBatches returns the batches of Skiff issue 9 finding 5, each of
// which Skiff once stored, and a negative last offset delta, which it
// refused with the wrong code; and what Kafka answers for each. Kafka's
// verdicts (LogValidator.validateBatch, DefaultRecordBatch's iterators,
// DefaultRecord.readFrom): a count that disagrees with the offset range,
// and any record that cannot be read as framed, throw
// InvalidRecordException: INVALID_RECORD, with no error message. Compressed
// bytes that do not decompress are CORRUPT_MESSAGE in Skiff; Kafka answers
// UNKNOWN_SERVER_ERROR there, the decompressor's KafkaException having no
// code of its own.
func LyingBatches(ts int64) []LyingBatch {
	zero := []byte{0}                    // attributes, or a zero delta
	null := binary.AppendVarint(nil, -1) // a null key or value
	noHeaders := []byte{0}
	return []LyingBatch{
		{"garbage payload", RawBatch(protocol.CodecNone, 1, 0, ts,
			[]byte("this is not a record, whatever the header says")), kerr.InvalidRecord},
		{"record count 3 holding 1 record", RawBatch(protocol.CodecNone, 3, 2, ts,
			record(0, "only one")), kerr.InvalidRecord},
		{"varint overflow in the offset delta", RawBatch(protocol.CodecNone, 1, 0, ts,
			recordBody(zero, zero, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, null, null, noHeaders)), kerr.InvalidRecord},
		{"key length -5", RawBatch(protocol.CodecNone, 1, 0, ts,
			recordBody(zero, zero, zero, binary.AppendVarint(nil, -5), []byte("hello"), null, noHeaders)), kerr.InvalidRecord},
		{"value length 2^40", RawBatch(protocol.CodecNone, 1, 0, ts,
			recordBody(zero, zero, zero, null, binary.AppendVarint(nil, 1<<40), []byte("short"), noHeaders)), kerr.InvalidRecord},
		{"empty payload", RawBatch(protocol.CodecNone, 1, 0, ts, nil), kerr.InvalidRecord},
		{"gzip garbage", RawBatch(protocol.CodecGzip, 1, 0, ts,
			[]byte("this was never gzip compressed")), kerr.CorruptMessage},
		{"last offset delta 2^31-1 for 1 record", RawBatch(protocol.CodecNone, 1, math.MaxInt32, ts,
			record(0, "one")), kerr.InvalidRecord},
		{"last offset delta -1", RawBatch(protocol.CodecNone, 1, -1, ts,
			record(0, "one")), kerr.InvalidRecord},
	}
}

// CompressibleBatch returns an honest zstd batch of n records with null
// keys and values, offset deltas 0..n-1 and timestamp deltas i/perMs.
// Records take about 11 bytes and compress to under one: 5 million of them
// are 55 MB decompressed and 4 MB of zstd. It is written with a streaming
// encoder, so neither the records nor their bytes are ever held whole.
func CompressibleBatch(n int32, ts int64, perMs int32) ([]byte, error) {
	payload, err := zstdRecords(n, func(i int32) protocol.Record {
		return protocol.Record{TimestampDelta: int64(i / perMs), OffsetDelta: i}
	})
	if err != nil {
		return nil, err
	}
	b := RawBatch(protocol.CodecZstd, n, n-1, ts, payload)
	binary.BigEndian.PutUint64(b[35:], uint64(ts+int64((n-1)/perMs)))
	protocol.UpdateCRC(b)
	return b, nil
}

// ZeroDeltaBomb returns the decompression bomb of Skiff issue 9 finding 4:
// n identical 7-byte records (all deltas 0, null key and value) in a zstd
// batch whose header claims n records; 9 million of them are a few
// kilobytes that decompress to 63 MB. Every record after the first lies
// about its offset.
func ZeroDeltaBomb(n int32, ts int64) ([]byte, error) {
	payload, err := zstdRecords(n, func(int32) protocol.Record { return protocol.Record{} })
	if err != nil {
		return nil, err
	}
	return RawBatch(protocol.CodecZstd, n, n-1, ts, payload), nil
}

// zstdRecords compresses the records rec(0..n-1) with a streaming encoder,
// 64 KiB at a time.
func zstdRecords(n int32, rec func(i int32) protocol.Record) ([]byte, error) {
	var out sliceWriter
	zw, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	var chunk []byte
	for i := range n {
		chunk = protocol.AppendRecord(chunk, rec(i))
		if len(chunk) >= 64<<10 || i == n-1 {
			if _, err := zw.Write(chunk); err != nil {
				return nil, err
			}
			chunk = chunk[:0]
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.b, nil
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
