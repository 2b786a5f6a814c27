// Package protocol holds the Kafka wire formats Skiff reads and writes
// itself: request framing, request and response headers, the v2 (magic 2)
// record batch, the records inside a batch and their compression codecs.
// Request and response bodies are not here; they are franz-go's kmsg types.
//
// Everything in the package is a pure function of its arguments: no
// goroutines, no I/O besides the io.Reader and io.Writer a caller passes,
// no global state but pools of reusable codec state. Every decoder here
// reads bytes from the network or from disk, so each one treats its input
// as hostile: it returns an error rather than panicking, and checks every
// length and count against the bytes actually present before allocating.
// Each has a fuzz target.
//
// # Framing and headers
//
// A Kafka request is a 4-byte big-endian size followed by that many bytes.
// ReadFrame reads one, refusing sizes outside the configured maximum before
// allocating. ParseRequestHeader decodes the request header (api key and
// version, correlation id, client id) and DecodeRequest the body into a kmsg
// request; AppendResponse frames a kmsg response with the response header
// version the request's API and version call for.
//
// # Record batches
//
// Producers send, and the log stores, record batches exactly as encoded.
// The broker reads only the 61-byte batch header (ParseBatchHeader), checks
// it and the CRC32C with ValidateBatch before accepting a batch, and
// rewrites only what Kafka rewrites: the base offset and partition leader
// epoch, which the CRC does not cover, and for LogAppendTime topics the max
// timestamp, recomputing the CRC (SetLogAppendTime).
//
// Where the broker must look inside a batch it walks the records with a
// RecordIterator, one at a time, in place or through a fixed window over a
// streaming decompressor, optionally skipping keys and values: produce-time
// validation (ValidateRecords, Kafka's LogValidator checks) and ListOffsets
// by timestamp cost fixed memory however many records a small compressed
// batch holds. Where it needs every record at once (compaction, internal
// topics) DecodeRecords decompresses the batch and decodes its records,
// with their keys and values aliasing the batch or the decompression
// buffer rather than copied. BuildBatch and AppendRecord
// write batches, for the internal topics the coordinators keep and for
// tests; BuildControlBatch writes transaction markers.
//
//	batch, err := protocol.BuildBatch(nil, protocol.BatchHeader{
//		BaseTimestamp: now, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
//	}, protocol.CodecZstd, []protocol.Record{{Key: k, Value: v}})
//	...
//	h, err := protocol.ValidateBatch(batch)         // header, length, CRC
//	info, err := protocol.ValidateRecords(batch, 0) // record framing, streamed
//	recs, err := protocol.DecodeRecords(batch, buf) // decompress and decode
//
// # Compression
//
// Decompress and Compress handle the codecs Kafka defines: gzip, snappy
// (raw blocks and the xerial framing Java and librdkafka producers send),
// LZ4 frames and zstd. Decompression is bounded by a caller-supplied limit
// (DefaultMaxDecompressedSize for DecodeRecords), so a decompression bomb
// fails with ErrDecompressedTooLarge instead of exhausting memory. Decoder
// and encoder state is pooled, and each pooled decoder runs single-threaded
// so that concurrent partitions decompress in parallel without the package
// starting goroutines.
package protocol
