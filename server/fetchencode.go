package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// splitRecordsMin is the smallest records field worth sending from its own
// buffer rather than copying into the encoded frame.
const splitRecordsMin = 64 << 10

// framePiece is one piece of a response frame: bytes in memory, or (when
// file.File is set) a range of a segment file the writer sends from there.
type framePiece struct {
	b    []byte
	file storage.FileRange
}

// fetchResponse is a fetch response whose records, for the partitions in
// files, are still in the segment files: response assembly never reads or
// decodes them, the connection writer sends them (sendfile, or a copy
// through its write buffer on a connection that cannot). The response
// holds the files' segment references until it is released.
type fetchResponse struct {
	*kmsg.FetchResponse
	files []fetchFile // in the order of resp.Topics and their Partitions
	// copied is what encoding had to read into memory (the rare fallback
	// of appendFetchFrame), counted against fetch.memory.pool.bytes until
	// the response is released.
	copied int64
}

// fetchFile names the partition resp.Topics[topic].Partitions[partition]
// whose records are read.
type fetchFile struct {
	topic, partition int
	read             *storage.FileRead
}

// appendFetchFrame encodes a fetch response frame as pieces to write in
// order, without copying records into the frame: records in files stay
// file ranges, and large records in memory are written from their own
// buffers (a second copy per response would double what
// fetch.memory.pool.bytes bounds).
//
// kmsg has no way to encode around a field, so each such records field is
// swapped for a short marker (a per-response random nonce and the field's
// index) while the rest is encoded into buf; the frame is then cut at the
// markers and each marker replaced by the records' length and the records.
// If a marker is not found where expected, the frame is encoded whole,
// reading file records into memory; copied reports how many bytes that
// read.
func appendFetchFrame(buf []byte, pieces []framePiece, correlationID int32, resp *kmsg.FetchResponse, files []fetchFile) (_ []byte, _ []framePiece, copied int64) {
	type swapped struct {
		rp      *kmsg.FetchResponseTopicPartition
		records []byte
		file    *storage.FileRead // nil: records are in memory
	}
	var swaps []swapped
	nonce := rand.Uint64()
	next := 0 // index into files
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			rp := &resp.Topics[ti].Partitions[pi]
			var file *storage.FileRead
			if next < len(files) && files[next].topic == ti && files[next].partition == pi {
				file = files[next].read
				next++
			}
			if (file == nil || file.Size == 0) && len(rp.RecordBatches) < splitRecordsMin {
				continue
			}
			swaps = append(swaps, swapped{rp: rp, records: rp.RecordBatches, file: file})
			rp.RecordBatches = fetchMarker(nonce, len(swaps)-1)
		}
	}
	defer func() {
		for _, s := range swaps {
			s.rp.RecordBatches = s.records
		}
	}()
	start := len(buf)
	buf = protocol.AppendResponse(buf, correlationID, resp)
	if len(swaps) == 0 {
		return buf, append(pieces, framePiece{b: buf[start:]}), 0
	}

	// The records field is bytes (int32 length) before v12 and compact
	// bytes (uvarint length+1) from v12.
	flexible := resp.IsFlexible()
	markerLen := len(fetchMarker(0, 0))
	prefixLen := 4
	if flexible {
		prefixLen = 1 // uvarint(markerLen+1) is one byte
	}
	lengths := make([]byte, 0, len(swaps)*binary.MaxVarintLen32)
	frame := buf[start:]
	size := len(frame) - 4
	first := len(pieces)
	last := 0
	for i, s := range swaps {
		m := fetchMarker(nonce, i)
		j := bytes.Index(frame[last:], m)
		at := last + j
		if j < 0 || at-prefixLen < last || !markerPrefixed(frame[at-prefixLen:at], flexible, markerLen) {
			// Not where it must be: give up splitting (never seen; kept
			// so a kmsg change cannot corrupt responses).
			for _, s := range swaps {
				s.rp.RecordBatches = s.records
			}
			swaps = nil
			return encodeFetchWhole(buf[:start], pieces[:first], correlationID, resp, files)
		}
		pieces = append(pieces, framePiece{b: frame[last : at-prefixLen]})
		n := len(lengths)
		recLen := int64(len(s.records))
		if s.file != nil {
			recLen = s.file.Size
		}
		if flexible {
			lengths = binary.AppendUvarint(lengths, uint64(recLen)+1)
		} else {
			lengths = binary.BigEndian.AppendUint32(lengths, uint32(recLen))
		}
		pieces = append(pieces, framePiece{b: lengths[n:]})
		if s.file != nil {
			for _, r := range s.file.Ranges {
				pieces = append(pieces, framePiece{file: r})
			}
		} else {
			pieces = append(pieces, framePiece{b: s.records})
		}
		size += len(lengths) - n + int(recLen) - prefixLen - markerLen
		last = at + markerLen
	}
	pieces = append(pieces, framePiece{b: frame[last:]})
	binary.BigEndian.PutUint32(frame, uint32(size))
	return buf, pieces, 0
}

// encodeFetchWhole encodes resp as one piece, reading the records of files
// into memory for it.
func encodeFetchWhole(buf []byte, pieces []framePiece, correlationID int32, resp *kmsg.FetchResponse, files []fetchFile) ([]byte, []framePiece, int64) {
	var copied int64
	for _, f := range files {
		rp := &resp.Topics[f.topic].Partitions[f.partition]
		orig := rp.RecordBatches
		defer func() { rp.RecordBatches = orig }()
		b := make([]byte, 0, f.read.Size)
		for _, r := range f.read.Ranges {
			n := len(b)
			b = b[:n+int(r.Len)]
			if _, err := r.File.ReadAt(b[n:], r.Offset); err != nil {
				// The segment is held open and its bytes below the high
				// watermark never change: a read error is a disk error.
				panic(fmt.Sprintf("server: reading fetched records: %v", err))
			}
		}
		rp.RecordBatches = b
		copied += int64(len(b))
	}
	start := len(buf)
	buf = protocol.AppendResponse(buf, correlationID, resp)
	return buf, append(pieces, framePiece{b: buf[start:]}), copied
}

// fetchMarker is what stands in for the i-th large records field while a
// response is encoded: unguessable, so a topic name cannot imitate it.
func fetchMarker(nonce uint64, i int) []byte {
	m := binary.BigEndian.AppendUint64(make([]byte, 0, 12), nonce)
	return binary.BigEndian.AppendUint32(m, uint32(i))
}

func markerPrefixed(prefix []byte, flexible bool, markerLen int) bool {
	if flexible {
		return prefix[0] == byte(markerLen+1)
	}
	return binary.BigEndian.Uint32(prefix) == uint32(markerLen)
}
