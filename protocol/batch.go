package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Record batch v2 (magic 2) layout, from the Kafka protocol guide. The broker
// reads and rewrites only this fixed header; the records after it stay
// exactly as the producer encoded (and possibly compressed) them.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// BatchHeaderSize is the size of the v2 batch header, up to and including
	// the record count.
	BatchHeaderSize = 61

	// batchLengthOverhead is the part of the header the batchLength field
	// does not count: baseOffset and batchLength themselves.
	batchLengthOverhead = 12

	// maxBatchLength is the largest batchLength accepted: it keeps Size()
	// (Length + 12) within an int32, so that it cannot wrap negative on
	// 32-bit platforms and defeat the bounds checks.
	maxBatchLength = math.MaxInt32 - batchLengthOverhead
)

// Batch attribute bits.
const (
	AttrCompressionMask = 0x07
	AttrLogAppendTime   = 0x08
	AttrTransactional   = 0x10
	AttrControl         = 0x20
	AttrDeleteHorizon   = 0x40
)

// Codec is a record batch compression codec, as numbered on the wire.
type Codec int8

// The compression codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Errors returned when a batch cannot be accepted. The server maps them to
// Kafka error codes (CORRUPT_MESSAGE, UNSUPPORTED_FOR_MESSAGE_FORMAT, ...).
var (
	ErrBatchTruncated   = errors.New("protocol: record batch truncated")
	ErrBatchLength      = errors.New("protocol: record batch length out of range")
	ErrBatchMagic       = errors.New("protocol: record batch magic is not 2")
	ErrBatchCRC         = errors.New("protocol: record batch CRC mismatch")
	ErrBatchCodec       = errors.New("protocol: unknown record batch compression codec")
	ErrBatchOffsetDelta = errors.New("protocol: record batch last offset delta is negative")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded fixed header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the total size of the batch in bytes, header included.
func (h *BatchHeader) Size() int { return int(h.Length) + batchLengthOverhead }

// LastOffset is the offset of the last record in the batch.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the batch's compression codec.
func (h *BatchHeader) Codec() Codec { return Codec(h.Attributes & AttrCompressionMask) }

// IsTransactional reports whether the batch belongs to a transaction.
func (h *BatchHeader) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// IsControl reports whether the batch is a control batch (a transaction marker).
func (h *BatchHeader) IsControl() bool { return h.Attributes&AttrControl != 0 }

// IsLogAppendTime reports whether the batch's timestamps are broker-assigned.
func (h *BatchHeader) IsLogAppendTime() bool { return h.Attributes&AttrLogAppendTime != 0 }

// HasProducerID reports whether the batch was written by an idempotent or
// transactional producer.
func (h *BatchHeader) HasProducerID() bool { return h.ProducerID >= 0 }

// PeekBatchSize returns the total size of the batch that starts at b, reading
// only the first 12 bytes. It does not check that b holds that many bytes.
func PeekBatchSize(b []byte) (int, error) {
	if len(b) < batchLengthOverhead {
		return 0, ErrBatchTruncated
	}
	n := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if n < BatchHeaderSize-batchLengthOverhead || n > maxBatchLength {
		return 0, ErrBatchLength
	}
	return int(n) + batchLengthOverhead, nil
}

// ParseBatchHeader decodes the header of the batch that starts at b. It checks
// that the header is complete and the magic is 2, but neither the CRC nor that
// b holds the whole batch; use ValidateBatch for that.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < BatchHeaderSize {
		return h, ErrBatchTruncated
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	h.Length = int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	h.CRC = binary.BigEndian.Uint32(b[offCRC:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[offBaseSequence:]))
	h.NumRecords = int32(binary.BigEndian.Uint32(b[offNumRecords:]))
	if h.Magic != 2 {
		return h, ErrBatchMagic
	}
	if h.Length < BatchHeaderSize-batchLengthOverhead || h.Length > maxBatchLength {
		return h, ErrBatchLength
	}
	return h, nil
}

// ValidateBatch parses the batch at the start of b and checks everything the
// broker must check before accepting it: the length fits in b, magic 2, a
// known codec, a non-negative offset delta and the CRC32C. It returns the
// header; the batch occupies b[:h.Size()].
func ValidateBatch(b []byte) (BatchHeader, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() > len(b) {
		return h, ErrBatchTruncated
	}
	if h.Codec() > CodecZstd {
		return h, ErrBatchCodec
	}
	if h.LastOffsetDelta < 0 {
		return h, ErrBatchOffsetDelta
	}
	if crc32.Checksum(b[offAttributes:h.Size()], castagnoli) != h.CRC {
		return h, ErrBatchCRC
	}
	return h, nil
}

// SetBaseOffset rewrites the batch's base offset. The CRC does not cover the
// base offset, so it stays valid.
func SetBaseOffset(batch []byte, offset int64) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch rewrites the batch's partition leader epoch, which
// the CRC does not cover either.
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch as LogAppendTime, sets its max timestamp
// to ts and recomputes the CRC, as Kafka does for topics with
// message.timestamp.type=LogAppendTime. batch must be exactly one batch.
func SetLogAppendTime(batch []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(batch[offAttributes:]) | AttrLogAppendTime
	binary.BigEndian.PutUint16(batch[offAttributes:], attrs)
	binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
}

// SetMaxTimestamp sets the max timestamp of a CreateTime batch to ts and
// recomputes the CRC, for when the records disagree with the header.
// batch must be exactly one batch.
func SetMaxTimestamp(batch []byte, ts int64) {
	binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(ts))
	UpdateCRC(batch)
}

// UpdateCRC recomputes the CRC of a batch after its covered bytes changed.
// batch must be exactly one batch.
func UpdateCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
}
