package protocol

import (
	"encoding/binary"
	"fmt"
	"math"
)

// IterMode chooses how much of each record a RecordIterator decodes.
type IterMode uint8

const (
	// IterFull decodes keys, values and headers.
	IterFull IterMode = iota
	// IterSkipKeyValue reads only the record's framing, attributes and
	// deltas, stepping over keys, values and headers by their lengths, as
	// Kafka's skipKeyValueIterator does. Record gives no Key, Value or
	// Headers in this mode; KeyLen and ValueLen say what they were.
	IterSkipKeyValue
)

// RecordIterator walks the records of one batch one at a time, in memory
// that does not grow with the batch: an uncompressed batch is parsed in
// place, and a compressed one is decompressed through a fixed 64 KiB window
// (plus, for zstd, the window the frame declares, and for a raw snappy
// block the block), so that a small batch which decompresses to gigabytes
// costs time, bounded by the size limit, but not memory.
//
// It checks what Kafka's record readers check: each record's length prefix
// matches the bytes its fields take; varints fit their type; header counts
// and header key lengths are not negative; the batch holds exactly as many
// records as its header says, with nothing after the last. It does not
// check the CRC (ValidateBatch does) nor offset deltas (ValidateRecords
// does).
//
//	var it protocol.RecordIterator
//	defer it.Close()
//	it.Reset(batch, protocol.IterSkipKeyValue, 0)
//	for it.Next() {
//		r := it.Record() // valid until the next call to Next
//	}
//	if err := it.Err(); err != nil { ... }
//
// The zero value is ready for Reset. Close returns pooled decoder state; an
// iterator may be Reset again after Close.
type RecordIterator struct {
	h     BatchHeader
	mode  IterMode
	s     recordStream
	read  int32 // records returned so far
	rec   Record
	sizes recordSizes
	// Buffers reused across records in IterFull mode: the bytes of a
	// record read from a compressed stream, and the records' headers.
	recBuf  []byte
	headers []Header
	err     error
}

// recordSizes are what IterSkipKeyValue knows of a record beyond Record's
// fixed fields.
type recordSizes struct {
	size             int   // encoded size, length prefix included
	keyLen, valueLen int32 // negative for null
	headerCount      int32
}

// Reset starts iterating over the batch at the start of batch, whose
// header must parse and whose length must fit in batch. maxSize bounds the
// decompressed size of a compressed batch (<= 0 means
// DefaultMaxDecompressedSize). An error from Reset is also kept for Err,
// so callers may check either.
func (it *RecordIterator) Reset(batch []byte, mode IterMode, maxSize int) error {
	it.s.release()
	it.mode, it.read, it.err = mode, 0, nil
	if maxSize <= 0 {
		maxSize = DefaultMaxDecompressedSize
	}
	maxSize = min(maxSize, math.MaxInt32)
	h, err := ParseBatchHeader(batch)
	if err == nil && int64(h.Length)+batchLengthOverhead > int64(len(batch)) {
		err = ErrBatchTruncated
	}
	if err == nil && h.Codec() > CodecZstd {
		err = fmt.Errorf("%w: %s", ErrBatchCodec, h.Codec())
	}
	if err == nil && h.NumRecords < 0 {
		err = fmt.Errorf("%w: record count %d", ErrRecordsCorrupt, h.NumRecords)
	}
	it.h = h
	if err != nil {
		it.err = err
		return err
	}
	body := batch[BatchHeaderSize:h.Size()]
	switch {
	case h.NumRecords == 0:
		// Like Kafka, an empty batch has no records whatever its bytes
		// hold; compaction leaves such batches behind.
		it.s.resetUncompressed(nil)
	case h.Codec() == CodecNone:
		it.s.resetUncompressed(body)
	default:
		if err := it.s.resetCompressed(h.Codec(), body, maxSize); err != nil {
			it.err = err
			return err
		}
	}
	return nil
}

// Header is the header of the batch being iterated.
func (it *RecordIterator) Header() *BatchHeader { return &it.h }

// Next advances to the next record and reports whether there is one. When
// it returns false, Err says whether the batch ended cleanly.
func (it *RecordIterator) Next() bool {
	if it.err != nil {
		return false
	}
	if it.read == it.h.NumRecords {
		if !it.s.atEnd() {
			it.err = it.streamError("bytes remain after the last of %d records", it.read)
		}
		it.s.release()
		return false
	}
	var field string
	if it.mode == IterSkipKeyValue {
		field = it.skipRecord()
	} else {
		field = it.fullRecord()
	}
	if field != "" {
		it.err = it.streamError("record %d: bad %s", it.read, field)
		it.s.release()
		return false
	}
	it.read++
	return true
}

// streamError builds the error for a malformed record, preferring the
// stream's own failure (corrupt compressed bytes, or too large) when that
// is why the record could not be read.
func (it *RecordIterator) streamError(format string, args ...any) error {
	if it.s.err != nil {
		return it.s.err
	}
	return fmt.Errorf("%w: "+format, append([]any{ErrRecordsCorrupt}, args...)...)
}

// Record is the current record. Its Key, Value and Headers (IterFull only)
// alias the batch or the iterator's buffers and are valid until the next
// call to Next or Reset.
func (it *RecordIterator) Record() *Record { return &it.rec }

// Size is the encoded size of the current record, its length prefix
// included.
func (it *RecordIterator) Size() int { return it.sizes.size }

// KeyLen and ValueLen are the current record's key and value lengths as
// encoded, negative for null; they serve IterSkipKeyValue callers.
func (it *RecordIterator) KeyLen() int32   { return it.sizes.keyLen }
func (it *RecordIterator) ValueLen() int32 { return it.sizes.valueLen }

// Index is the position of the current record in the batch, from 0.
func (it *RecordIterator) Index() int32 { return it.read - 1 }

// Err is the first error met, or nil if the records read so far (all of
// them, once Next returned false) are well formed.
func (it *RecordIterator) Err() error { return it.err }

// Close releases the decompressor. The iterator must not be used again
// until Reset.
func (it *RecordIterator) Close() {
	it.s.release()
	it.rec = Record{}
}

// skipRecord reads the current record's framing and fixed fields and steps
// over its key, value and headers. It returns the malformed field's name,
// or "".
func (it *RecordIterator) skipRecord() string {
	s := &it.s
	if n, used := quickVarint(s.b); used > 0 && n >= 0 && int(n) <= len(s.b)-used {
		// The whole record is at hand (always, uncompressed): parse it in
		// place, the hot path of produce validation.
		field := skipRecordBytes(s.b[used:used+int(n)], &it.rec, &it.sizes)
		it.sizes.size = used + int(n)
		s.b = s.b[used+int(n):]
		return field
	}
	n, ok := s.varint()
	if !ok || n < 0 {
		return "length"
	}
	start := s.consumed()
	r := &it.rec
	*r = Record{}
	c, ok := s.readByte()
	if !ok {
		return "attributes"
	}
	r.Attributes = int8(c)
	if r.TimestampDelta, ok = s.varlong(); !ok {
		return "timestamp delta"
	}
	if r.OffsetDelta, ok = s.varint(); !ok {
		return "offset delta"
	}
	z := &it.sizes
	if z.keyLen, ok = s.varint(); !ok || !s.skip(max(int(z.keyLen), 0)) {
		return "key"
	}
	if z.valueLen, ok = s.varint(); !ok || !s.skip(max(int(z.valueLen), 0)) {
		return "value"
	}
	if z.headerCount, ok = s.varint(); !ok || z.headerCount < 0 || int(z.headerCount) > int(n) {
		return "header count"
	}
	for range z.headerCount {
		kn, ok := s.varint()
		if !ok || kn < 0 || !s.skip(int(kn)) {
			return "header key"
		}
		vn, ok := s.varint()
		if !ok || !s.skip(max(int(vn), 0)) {
			return "header value"
		}
		if s.consumed()-start > int(n) {
			// Past the record's end already: stop before a hostile header
			// count walks the rest of the stream.
			return "length (headers run past it)"
		}
	}
	if s.consumed()-start != int(n) {
		return "length (does not match the fields)"
	}
	z.size = varintLen(int64(n)) + int(n)
	return ""
}

// fullRecord reads the current record's bytes whole and decodes them.
func (it *RecordIterator) fullRecord() string {
	s := &it.s
	n, ok := s.varint()
	if !ok || n < 0 {
		return "length"
	}
	var body []byte
	if s.r == nil {
		if int(n) > len(s.b) {
			return "length"
		}
		body, s.b = s.b[:n:n], s.b[n:]
	} else {
		// Copy out of the window as the bytes arrive, so that the buffer
		// grows with bytes actually present, not with the length claimed.
		it.recBuf = it.recBuf[:0]
		for left := int(n); left > 0; {
			if len(s.b) == 0 && !s.fill(1) {
				return "length"
			}
			k := min(left, len(s.b))
			it.recBuf = append(it.recBuf, s.b[:k]...)
			s.b, left = s.b[k:], left-k
		}
		body = it.recBuf
	}
	d := recordDecoder{b: body, headers: it.headers[:0]}
	r := &it.rec
	*r = Record{}
	if field := d.body(r); field != "" {
		return field
	}
	it.headers = d.headers
	it.sizes = recordSizes{
		size:        varintLen(int64(n)) + int(n),
		keyLen:      int32(len(r.Key)),
		valueLen:    int32(len(r.Value)),
		headerCount: int32(len(r.Headers)),
	}
	if r.Key == nil {
		it.sizes.keyLen = -1
	}
	if r.Value == nil {
		it.sizes.valueLen = -1
	}
	return ""
}

// RecordsInfo is what ValidateRecords learns walking a batch.
type RecordsInfo struct {
	// MaxTimestamp is the largest record timestamp (base timestamp plus
	// delta), or -1 for a batch without records.
	MaxTimestamp int64
	// MinTimestamp is the smallest record timestamp other than -1 (Kafka's
	// "no timestamp"), or -1 if there is none.
	MinTimestamp int64
	// NullKeys counts records without a key, which compacted topics refuse.
	NullKeys int
	// Bytes is the records' decompressed size.
	Bytes int
}

// ValidateRecords walks the records of a client's batch, as Kafka's
// LogValidator does at produce time, and checks everything the header
// claims about them: the batch has at least one record; its last offset
// delta is the record count less one; every record is well framed (see
// RecordIterator) with offset delta equal to its position; and nothing
// trails the last record. A compressed batch is decompressed as a stream
// bounded by maxSize (<= 0 means DefaultMaxDecompressedSize), so that the
// check costs fixed memory.
//
// Errors wrap ErrRecordsCorrupt for records that lie about themselves
// (Kafka's InvalidRecordException), and ErrCompressedCorrupt or
// ErrDecompressedTooLarge when the compressed bytes cannot be read.
// ValidateRecords does not check the CRC; run ValidateBatch first.
func ValidateRecords(batch []byte, maxSize int) (RecordsInfo, error) {
	info := RecordsInfo{MaxTimestamp: -1, MinTimestamp: -1}
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return info, err
	}
	if h.NumRecords <= 0 {
		return info, fmt.Errorf("%w: record count %d", ErrRecordsCorrupt, h.NumRecords)
	}
	if int64(h.LastOffsetDelta) != int64(h.NumRecords)-1 {
		return info, fmt.Errorf("%w: last offset delta %d for %d records", ErrRecordsCorrupt, h.LastOffsetDelta, h.NumRecords)
	}
	var it RecordIterator
	defer it.Close()
	if err := it.Reset(batch, IterSkipKeyValue, maxSize); err != nil {
		return info, err
	}
	for it.Next() {
		r := it.Record()
		if r.OffsetDelta != it.Index() {
			return info, fmt.Errorf("%w: record %d has offset delta %d", ErrRecordsCorrupt, it.Index(), r.OffsetDelta)
		}
		ts := h.BaseTimestamp + r.TimestampDelta
		info.MaxTimestamp = max(info.MaxTimestamp, ts)
		if ts != -1 && (info.MinTimestamp == -1 || ts < info.MinTimestamp) {
			info.MinTimestamp = ts
		}
		if it.KeyLen() < 0 {
			info.NullKeys++
		}
		info.Bytes += it.Size()
	}
	return info, it.Err()
}

// quickVarint reads a zigzag varint of at most 5 bytes from b, returning
// the bytes used, 0 if b does not hold a valid one.
func quickVarint(b []byte) (int32, int) {
	if len(b) > 0 && b[0] < 0x80 {
		u := uint32(b[0])
		return int32(u>>1) ^ -int32(u&1), 1
	}
	u, n := binary.Uvarint(b)
	if n <= 0 || n > binary.MaxVarintLen32 || u > math.MaxUint32 {
		return 0, 0
	}
	return int32(uint32(u)>>1) ^ -int32(u&1), n
}

// skipRecordBytes is skipRecord for a record whose body (the bytes after
// its length prefix) is all of b; the body must be consumed exactly.
func skipRecordBytes(b []byte, r *Record, z *recordSizes) string {
	*r = Record{}
	if len(b) < 1 {
		return "attributes"
	}
	r.Attributes = int8(b[0])
	b = b[1:]
	ts, n := binary.Varint(b)
	if n <= 0 {
		return "timestamp delta"
	}
	r.TimestampDelta, b = ts, b[n:]
	if r.OffsetDelta, n = quickVarint(b); n == 0 {
		return "offset delta"
	}
	b = b[n:]
	if z.keyLen, n = quickVarint(b); n == 0 || int(z.keyLen) > len(b)-n {
		return "key"
	}
	b = b[n+max(int(z.keyLen), 0):]
	if z.valueLen, n = quickVarint(b); n == 0 || int(z.valueLen) > len(b)-n {
		return "value"
	}
	b = b[n+max(int(z.valueLen), 0):]
	if z.headerCount, n = quickVarint(b); n == 0 || z.headerCount < 0 || int(z.headerCount) > len(b)-n {
		return "header count"
	}
	b = b[n:]
	for range z.headerCount {
		kn, n := quickVarint(b)
		if n == 0 || kn < 0 || int(kn) > len(b)-n {
			return "header key"
		}
		b = b[n+int(kn):]
		vn, n := quickVarint(b)
		if n == 0 || int(vn) > len(b)-n {
			return "header value"
		}
		b = b[n+max(int(vn), 0):]
	}
	if len(b) != 0 {
		return "length (does not match the fields)"
	}
	return ""
}
