package server

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// splitRecordsMin is the smallest records field worth sending from its own
// buffer rather than copying into the encoded frame.
const splitRecordsMin = 64 << 10

// appendFetchFrame encodes a fetch response frame as pieces to write in
// order, without copying large records into the frame: the records read
// from the log are already one copy of up to fetch.max.bytes, and a second
// one per response would double what fetch.memory.pool.bytes bounds.
//
// kmsg has no way to encode around a field, so each large records field is
// swapped for a short marker (a per-response random nonce and the field's
// index) while the rest is encoded into buf; the frame is then cut at the
// markers and each marker replaced by the records' length and the records.
// If a marker is not found where expected, the frame is encoded whole.
func appendFetchFrame(buf []byte, pieces [][]byte, correlationID int32, resp *kmsg.FetchResponse) ([]byte, [][]byte) {
	type swapped struct {
		rp      *kmsg.FetchResponseTopicPartition
		records []byte
	}
	var swaps []swapped
	nonce := rand.Uint64()
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			rp := &resp.Topics[ti].Partitions[pi]
			if len(rp.RecordBatches) < splitRecordsMin {
				continue
			}
			swaps = append(swaps, swapped{rp: rp, records: rp.RecordBatches})
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
		return buf, append(pieces, buf[start:])
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
			buf = protocol.AppendResponse(buf[:start], correlationID, resp)
			return buf, append(pieces[:first], buf[start:])
		}
		pieces = append(pieces, frame[last:at-prefixLen])
		n := len(lengths)
		if flexible {
			lengths = binary.AppendUvarint(lengths, uint64(len(s.records))+1)
		} else {
			lengths = binary.BigEndian.AppendUint32(lengths, uint32(len(s.records)))
		}
		pieces = append(pieces, lengths[n:], s.records)
		size += len(lengths) - n + len(s.records) - prefixLen - markerLen
		last = at + markerLen
	}
	pieces = append(pieces, frame[last:])
	binary.BigEndian.PutUint32(frame, uint32(size))
	return buf, pieces
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
