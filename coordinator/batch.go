package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/skiffmq/skiff/protocol"
)

// A minimal codec for the uncompressed magic-2 record batches the
// coordinator writes to __consumer_offsets. It exists only until
// protocol.BuildBatch / protocol.DecodeRecords land; the header layout and
// CRC come from the protocol package already.

// kv is one record: a __consumer_offsets key and value. A nil value is a
// tombstone.
type kv struct {
	key, value []byte
}

var errCompressedBatch = errors.New("coordinator: compressed __consumer_offsets batches are not supported")

// appendBatch appends one uncompressed batch holding recs, all stamped with
// timestamp ts (ms). The base offset is left 0 for the log to assign.
func appendBatch(dst []byte, ts int64, recs []kv) []byte {
	start := len(dst)
	var hdr [protocol.BatchHeaderSize]byte
	dst = append(dst, hdr[:]...)
	h := dst[start:]
	binary.BigEndian.PutUint32(h[12:], 0xFFFFFFFF)          // partition leader epoch: -1, the log sets it
	h[16] = 2                                               // magic
	binary.BigEndian.PutUint16(h[21:], 0)                   // attributes: no compression, CreateTime
	binary.BigEndian.PutUint32(h[23:], uint32(len(recs)-1)) // last offset delta
	binary.BigEndian.PutUint64(h[27:], uint64(ts))          // base timestamp
	binary.BigEndian.PutUint64(h[35:], uint64(ts))          // max timestamp
	binary.BigEndian.PutUint64(h[43:], 0xFFFFFFFFFFFFFFFF)  // producer id -1
	binary.BigEndian.PutUint16(h[51:], 0xFFFF)              // producer epoch -1
	binary.BigEndian.PutUint32(h[53:], 0xFFFFFFFF)          // base sequence -1
	binary.BigEndian.PutUint32(h[57:], uint32(len(recs)))   // record count

	var body []byte
	for i, r := range recs {
		body = body[:0]
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, int64(len(r.key)))
		body = append(body, r.key...)
		if r.value == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(r.value)))
			body = append(body, r.value...)
		}
		body = binary.AppendVarint(body, 0) // no headers
		dst = binary.AppendVarint(dst, int64(len(body)))
		dst = append(dst, body...)
	}
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-12))
	protocol.UpdateCRC(dst[start:])
	return dst
}

// decodedRecord is one record of a batch read back from the log.
type decodedRecord struct {
	offset     int64
	key, value []byte // value nil for a tombstone
}

// decodeBatch validates one whole batch and returns its header and records.
// Keys and values alias b.
func decodeBatch(b []byte) (protocol.BatchHeader, []decodedRecord, error) {
	h, err := protocol.ValidateBatch(b)
	if err != nil {
		return h, nil, err
	}
	if h.Codec() != protocol.CodecNone {
		return h, nil, errCompressedBatch
	}
	rest := b[protocol.BatchHeaderSize:h.Size()]
	if h.NumRecords < 0 || int(h.NumRecords) > len(rest) {
		return h, nil, fmt.Errorf("coordinator: batch at offset %d: bad record count %d", h.BaseOffset, h.NumRecords)
	}
	recs := make([]decodedRecord, 0, h.NumRecords)
	for i := int32(0); i < h.NumRecords; i++ {
		n, w := binary.Varint(rest)
		if w <= 0 || n < 0 || int64(len(rest)-w) < n {
			return h, nil, fmt.Errorf("coordinator: batch at offset %d: truncated record %d", h.BaseOffset, i)
		}
		rec, err := decodeRecord(rest[w : w+int(n)])
		if err != nil {
			return h, nil, fmt.Errorf("coordinator: batch at offset %d record %d: %w", h.BaseOffset, i, err)
		}
		rec.offset += h.BaseOffset
		recs = append(recs, rec)
		rest = rest[w+int(n):]
	}
	return h, recs, nil
}

var errBadRecord = errors.New("malformed record")

func decodeRecord(b []byte) (decodedRecord, error) {
	var r decodedRecord
	if len(b) < 1 {
		return r, errBadRecord
	}
	b = b[1:] // attributes
	if _, w := binary.Varint(b); w <= 0 {
		return r, errBadRecord
	} else {
		b = b[w:] // timestamp delta
	}
	od, w := binary.Varint(b)
	if w <= 0 {
		return r, errBadRecord
	}
	r.offset = od
	b = b[w:]
	readBytes := func() ([]byte, bool) {
		n, w := binary.Varint(b)
		if w <= 0 || n < -1 || int64(len(b)-w) < n {
			return nil, false
		}
		b = b[w:]
		if n < 0 {
			return nil, true
		}
		v := b[:n:n]
		b = b[n:]
		return v, true
	}
	var ok bool
	if r.key, ok = readBytes(); !ok {
		return r, errBadRecord
	}
	if r.value, ok = readBytes(); !ok {
		return r, errBadRecord
	}
	if r.value == nil {
		return r, nil
	}
	if len(r.value) == 0 {
		r.value = []byte{} // an empty value is not a tombstone
	}
	return r, nil // headers are ignored
}
