package server

import (
	"encoding/binary"

	"github.com/skiffmq/skiff/protocol"
)

// collapseMetadataTopics rewrites a Metadata request body (what follows
// the request header's fixed part) so that each distinct topic appears
// once, before the request is decoded. Kafka answers a topic list as a set
// (KafkaApis.handleTopicMetadataRequest), and decoding first would cost
// tens of bytes of structs per two-byte entry: 8M empty names in 16 MB
// would take half a gigabyte before the handler could collapse them.
// A body it cannot walk is returned unchanged for the decoder to reject.
func collapseMetadataTopics(version int16, rest []byte) []byte {
	flexible := version >= 9
	body := rest
	if flexible {
		var err error
		if body, err = protocol.SkipTags(rest); err != nil {
			return rest
		}
	}
	prefix := len(rest) - len(body) // the request header's tagged fields

	// The topic array: its length, then per topic a v10+ topic id, the
	// name (nullable from v10) and, when flexible, a tag section.
	var count int64
	pos := 0
	if flexible {
		n, w := binary.Uvarint(body)
		if w <= 0 || n == 0 {
			return rest // null: all topics
		}
		count, pos = int64(n-1), w
	} else {
		if len(body) < 4 {
			return rest
		}
		count, pos = int64(int32(binary.BigEndian.Uint32(body))), 4
	}
	if count < 2 || count > int64(len(body)) {
		return rest // nothing to collapse, or a length the decoder rejects
	}
	seen := make(map[string]struct{})
	var kept []byte // unique entries, once the first duplicate is found
	first := pos
	for i := int64(0); i < count; i++ {
		start := pos
		if version >= 10 {
			pos += 16
		}
		var l int64
		if flexible {
			n, w := binary.Uvarint(body[min(pos, len(body)):])
			if w <= 0 {
				return rest
			}
			pos += w
			l = int64(n) - 1 // -1: null name (a topic id)
		} else {
			if pos+2 > len(body) {
				return rest
			}
			l = int64(int16(binary.BigEndian.Uint16(body[pos:])))
			pos += 2
		}
		if l > 0 {
			pos += int(l)
		}
		if pos > len(body) {
			return rest
		}
		key := body[start:pos]
		if flexible {
			after, err := protocol.SkipTags(body[pos:])
			if err != nil {
				return rest
			}
			pos = len(body) - len(after)
		}
		if _, dup := seen[string(key)]; dup {
			if kept == nil {
				kept = append([]byte{}, body[first:start]...)
			}
			continue
		}
		seen[string(key)] = struct{}{}
		if kept != nil {
			kept = append(kept, body[start:pos]...)
		}
	}
	if kept == nil {
		return rest
	}
	out := make([]byte, 0, prefix+5+len(kept)+len(body)-pos)
	out = append(out, rest[:prefix]...)
	if flexible {
		out = binary.AppendUvarint(out, uint64(len(seen))+1)
	} else {
		out = binary.BigEndian.AppendUint32(out, uint32(len(seen)))
	}
	out = append(out, kept...)
	return append(out, body[pos:]...)
}
