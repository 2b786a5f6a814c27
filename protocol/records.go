package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// ErrRecordsCorrupt is returned when the records inside a batch cannot be
// decoded or contradict the batch header. At produce time the server
// answers INVALID_RECORD, as Kafka does for its InvalidRecordException;
// when reading a stored batch, CORRUPT_MESSAGE.
var ErrRecordsCorrupt = errors.New("protocol: records corrupt")

const (
	// minRecordSize is the smallest possible encoded record: one byte each
	// for the length, attributes, timestamp delta, offset delta, key length,
	// value length and header count. It bounds how many records a batch's
	// bytes can hold, so a hostile record count cannot size an allocation.
	minRecordSize = 7
	// minHeaderSize is the smallest encoded record header: key length and
	// value length.
	minHeaderSize = 2
)

// Header is a record header. Value is nil for a null value.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record of a v2 batch, as encoded inside it. Key and Value
// are nil when their length on the wire is negative (null; producers write
// -1) and non-nil, possibly empty, otherwise.
type Record struct {
	Attributes     int8 // unused by Kafka so far; kept as sent
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte
	Value          []byte
	Headers        []Header
}

// DecodeRecords decodes every record of the batch at the start of batch,
// decompressing it first if needed. scratch is used as the decompression
// buffer when its capacity suffices. The records' Key, Value and header
// values alias batch (uncompressed) or the decompression buffer
// (compressed), so neither may be reused while the records are in use.
//
// DecodeRecords does not check the CRC (ValidateBatch does) but is safe on
// any input: malformed bytes give an error, never a panic, and it allocates
// no more than the batch's bytes can justify, with decompressed output bound
// by DefaultMaxDecompressedSize. Records must fill the batch exactly.
func DecodeRecords(batch []byte, scratch []byte) ([]Record, error) {
	return decodeRecords(batch, scratch, DefaultMaxDecompressedSize)
}

func decodeRecords(batch, scratch []byte, maxSize int) ([]Record, error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return nil, err
	}
	// Compare in int64 so that a length near MaxInt32 cannot wrap on 32-bit.
	if int64(h.Length)+batchLengthOverhead > int64(len(batch)) {
		return nil, ErrBatchTruncated
	}
	if h.Codec() > CodecZstd {
		return nil, fmt.Errorf("%w: %s", ErrBatchCodec, h.Codec())
	}
	if h.NumRecords < 0 {
		return nil, fmt.Errorf("%w: record count %d", ErrRecordsCorrupt, h.NumRecords)
	}
	if h.NumRecords == 0 {
		// Kafka's batch iterator returns nothing for an empty batch without
		// looking at its bytes; compaction leaves such batches behind to
		// keep producer state.
		return nil, nil
	}
	body := batch[BatchHeaderSize:h.Size()]
	if codec := h.Codec(); codec != CodecNone {
		if body, err = Decompress(codec, body, scratch, maxSize); err != nil {
			return nil, err
		}
	}
	if int64(h.NumRecords) > int64(len(body)/minRecordSize) {
		return nil, fmt.Errorf("%w: record count %d impossible in %d bytes", ErrRecordsCorrupt, h.NumRecords, len(body))
	}
	recs := make([]Record, h.NumRecords)
	d := recordDecoder{b: body}
	for i := range recs {
		if field := d.record(&recs[i]); field != "" {
			return nil, fmt.Errorf("%w: record %d: bad %s", ErrRecordsCorrupt, i, field)
		}
	}
	if len(d.b) != 0 {
		// Kafka rejects this too ("records still remaining"): the count and
		// the bytes disagree, so one of them is wrong.
		return nil, fmt.Errorf("%w: %d bytes after the last of %d records", ErrRecordsCorrupt, len(d.b), len(recs))
	}
	return recs, nil
}

// recordDecoder reads varint-encoded record fields from b, consuming it.
type recordDecoder struct {
	b       []byte
	headers []Header // backing array for the records' headers
}

// record decodes one record into r. It returns the name of the field that
// was malformed, or "" on success; the caller builds the error, so the
// happy path formats nothing.
func (d *recordDecoder) record(r *Record) string {
	n, ok := d.varint()
	if !ok || n < 0 || int(n) > len(d.b) {
		return "length"
	}
	// Decode within the record's own bytes, so that a field cannot run into
	// the next record and the length is checked to be exact.
	rd := recordDecoder{b: d.b[:n:n], headers: d.headers}
	d.b = d.b[n:]
	field := rd.body(r)
	d.headers = rd.headers
	return field
}

// body decodes one record's fields, after its length prefix, from all of
// d.b, appending its headers to d.headers.
func (d *recordDecoder) body(r *Record) string {
	rd := d
	var ok bool
	if len(rd.b) < 1 {
		return "attributes"
	}
	r.Attributes = int8(rd.b[0])
	rd.b = rd.b[1:]
	if r.TimestampDelta, ok = rd.varlong(); !ok {
		return "timestamp delta"
	}
	if r.OffsetDelta, ok = rd.varint(); !ok {
		return "offset delta"
	}
	if r.Key, ok = rd.nullableBytes(); !ok {
		return "key"
	}
	if r.Value, ok = rd.nullableBytes(); !ok {
		return "value"
	}
	count, ok := rd.varint()
	if !ok || count < 0 || int(count) > len(rd.b)/minHeaderSize {
		return "header count"
	}
	if count > 0 {
		// All records' headers share one growing backing array: one
		// allocation per doubling instead of one per record. A record keeps
		// pointing into an outgrown array, which is fine as nothing writes
		// to it again; the cap stops an append to one record's headers
		// from overwriting the next record's.
		start := len(rd.headers)
		for range count {
			kn, ok := rd.varint()
			// Unlike keys of records, header keys are not nullable.
			if !ok || kn < 0 || int(kn) > len(rd.b) {
				return "header key"
			}
			h := Header{Key: string(rd.b[:kn])}
			rd.b = rd.b[kn:]
			if h.Value, ok = rd.nullableBytes(); !ok {
				return "header value"
			}
			rd.headers = append(rd.headers, h)
		}
		r.Headers = rd.headers[start:len(rd.headers):len(rd.headers)]
	}
	if len(rd.b) != 0 {
		return "length (bytes left after the headers)"
	}
	return ""
}

// varint reads a zigzag varint that must fit in an int32, as Kafka's
// ByteUtils.readVarint requires (at most 5 bytes).
func (d *recordDecoder) varint() (int32, bool) {
	u, n := binary.Uvarint(d.b)
	if n <= 0 || n > binary.MaxVarintLen32 || u > math.MaxUint32 {
		return 0, false
	}
	d.b = d.b[n:]
	return int32(uint32(u)>>1) ^ -int32(u&1), true
}

// varlong reads a zigzag varint of up to 64 bits.
func (d *recordDecoder) varlong() (int64, bool) {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		return 0, false
	}
	d.b = d.b[n:]
	return v, true
}

// nullableBytes reads a varint length and that many bytes. Kafka reads any
// negative length as null, and so do we. The result is capped at its length
// so that appending to it cannot overwrite the bytes that follow.
func (d *recordDecoder) nullableBytes() ([]byte, bool) {
	n, ok := d.varint()
	if !ok || int(n) > len(d.b) {
		return nil, false
	}
	if n < 0 {
		return nil, true
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v, true
}

// varintLen is the encoded size of v as a zigzag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	return (bits.Len64(u|1) + 6) / 7
}

func nullableBytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendNullableBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// recordBodyLen is the encoded size of r after its length prefix.
func recordBodyLen(r *Record) int {
	n := 1 + varintLen(r.TimestampDelta) + varintLen(int64(r.OffsetDelta)) +
		nullableBytesLen(r.Key) + nullableBytesLen(r.Value) +
		varintLen(int64(len(r.Headers)))
	for i := range r.Headers {
		h := &r.Headers[i]
		n += varintLen(int64(len(h.Key))) + len(h.Key) + nullableBytesLen(h.Value)
	}
	return n
}

// AppendRecord appends r to dst in the v2 record encoding: its length, then
// attributes, timestamp and offset deltas, key, value and headers. A nil Key,
// Value or header value is written as null (length -1). The 64-bit zigzag
// encoding of an int32 equals Kafka's 32-bit one, so binary.AppendVarint
// serves for varints and varlongs alike. Records larger than 2 GiB cannot be
// framed; BuildBatch rejects them.
func AppendRecord(dst []byte, r Record) []byte {
	dst = binary.AppendVarint(dst, int64(recordBodyLen(&r)))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
	dst = appendNullableBytes(dst, r.Key)
	dst = appendNullableBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for i := range r.Headers {
		h := &r.Headers[i]
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullableBytes(dst, h.Value)
	}
	return dst
}

// BuildBatch appends a complete magic-2 batch holding records to dst,
// compressed with codec. It takes from h the base offset, partition leader
// epoch, attributes (but for the codec bits, which codec sets), base
// timestamp, producer id and epoch and base sequence, and computes the rest:
// Length, Magic, CRC and NumRecords. LastOffsetDelta is the larger of
// h.LastOffsetDelta and the records' largest OffsetDelta, so a compacted
// batch can keep its original last offset as Kafka's cleaner does.
// MaxTimestamp is the largest record timestamp for CreateTime batches with
// records, and h.MaxTimestamp otherwise (LogAppendTime, or an empty batch).
// An empty batch is written uncompressed whatever codec says, as Kafka does.
//
// On error dst is returned unchanged.
func BuildBatch(dst []byte, h BatchHeader, codec Codec, records []Record) ([]byte, error) {
	if codec < CodecNone || codec > CodecZstd {
		return dst, fmt.Errorf("%w: %s", ErrBatchCodec, codec)
	}
	if len(records) > math.MaxInt32 {
		return dst, fmt.Errorf("%w: %d records", ErrBatchLength, len(records))
	}
	if len(records) == 0 {
		// Kafka writes empty batches uncompressed (writeEmptyHeader).
		codec = CodecNone
	}
	start := len(dst)
	var blank [BatchHeaderSize]byte // filled in once the size is known
	dst = append(dst, blank[:]...)
	if codec == CodecNone {
		for i := range records {
			dst = AppendRecord(dst, records[i])
		}
	} else {
		var raw []byte
		for i := range records {
			raw = AppendRecord(raw, records[i])
		}
		compressed, err := Compress(codec, raw, nil)
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, compressed...)
	}
	if int64(len(dst)-start-batchLengthOverhead) > math.MaxInt32 {
		return dst[:start], fmt.Errorf("%w: %d bytes", ErrBatchLength, len(dst)-start)
	}

	h.Attributes = h.Attributes&^AttrCompressionMask | int16(codec)
	for i := range records {
		h.LastOffsetDelta = max(h.LastOffsetDelta, records[i].OffsetDelta)
	}
	if len(records) > 0 && h.Attributes&AttrLogAppendTime == 0 {
		h.MaxTimestamp = h.BaseTimestamp + records[0].TimestampDelta
		for i := range records {
			h.MaxTimestamp = max(h.MaxTimestamp, h.BaseTimestamp+records[i].TimestampDelta)
		}
	}
	b := dst[start:]
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-batchLengthOverhead))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(h.Attributes))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(h.BaseTimestamp))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(len(records)))
	UpdateCRC(b)
	return dst, nil
}

// ControlType is the type field of a control record's key. Kafka defines
// more types (leader change, KRaft snapshots and voters) for its metadata
// log; a partition log only ever holds transaction markers.
type ControlType int16

// Transaction marker types.
const (
	ControlAbort  ControlType = 0
	ControlCommit ControlType = 1
)

// controlKeySize and controlValueSize are the version-0 sizes of a control
// record key (version, type) and of an end-transaction marker value
// (version, coordinator epoch).
const (
	controlKeySize   = 4
	controlValueSize = 6
)

// ControlRecordKey returns the key of a transaction marker control record:
// version 0 and type commit (1) or abort (0).
func ControlRecordKey(commit bool) []byte {
	t := ControlAbort
	if commit {
		t = ControlCommit
	}
	k := make([]byte, controlKeySize)
	binary.BigEndian.PutUint16(k[2:], uint16(t))
	return k
}

// ControlRecordValue returns the value of a transaction marker control
// record: version 0 and the transaction coordinator's epoch, which lets a
// partition fence markers from a stale coordinator.
func ControlRecordValue(coordinatorEpoch int32) []byte {
	v := make([]byte, controlValueSize)
	binary.BigEndian.PutUint32(v[2:], uint32(coordinatorEpoch))
	return v
}

// ParseControlRecordKey returns the type of a control record from its key.
// Like Kafka, it reads newer key versions as version 0, whose fields they
// start with, and rejects negative versions and short keys.
func ParseControlRecordKey(key []byte) (ControlType, error) {
	if len(key) < controlKeySize {
		return 0, fmt.Errorf("%w: control record key of %d bytes", ErrRecordsCorrupt, len(key))
	}
	if v := int16(binary.BigEndian.Uint16(key)); v < 0 {
		return 0, fmt.Errorf("%w: control record key version %d", ErrRecordsCorrupt, v)
	}
	return ControlType(binary.BigEndian.Uint16(key[2:])), nil
}

// ParseControlRecordValue returns the coordinator epoch of a transaction
// marker from its control record value, with the same version rules as
// ParseControlRecordKey.
func ParseControlRecordValue(value []byte) (coordinatorEpoch int32, err error) {
	if len(value) < controlValueSize {
		return 0, fmt.Errorf("%w: transaction marker value of %d bytes", ErrRecordsCorrupt, len(value))
	}
	if v := int16(binary.BigEndian.Uint16(value)); v < 0 {
		return 0, fmt.Errorf("%w: transaction marker version %d", ErrRecordsCorrupt, v)
	}
	return int32(binary.BigEndian.Uint32(value[2:])), nil
}

// BuildControlBatch appends a transaction marker batch to dst: one control
// record, commit or abort, in an uncompressed batch marked transactional
// and control, as Kafka writes them. h supplies the base offset, partition
// leader epoch, base timestamp (the marker's timestamp) and producer id and
// epoch; the base sequence is -1 as control batches carry no sequence.
func BuildControlBatch(dst []byte, h BatchHeader, commit bool, coordinatorEpoch int32) ([]byte, error) {
	h.Attributes = AttrTransactional | AttrControl
	h.BaseSequence = -1
	h.LastOffsetDelta = 0
	rec := Record{Key: ControlRecordKey(commit), Value: ControlRecordValue(coordinatorEpoch)}
	return BuildBatch(dst, h, CodecNone, []Record{rec})
}
