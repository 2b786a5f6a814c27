package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// DefaultMaxRequestSize is Kafka's socket.request.max.bytes default (100 MiB).
const DefaultMaxRequestSize = 100 << 20

// minRequestSize is the smallest frame that can hold a request header:
// api_key, api_version and correlation_id.
const minRequestSize = 8

// ErrFrameSize is returned for a length prefix that is negative, too small
// to hold a request header, or larger than the configured maximum. Kafka
// closes the connection in that case, and so does Skiff.
var ErrFrameSize = errors.New("protocol: request size out of range")

// ReadFrame reads one size-prefixed frame from r. The size is checked
// against max before anything is allocated, so a hostile prefix cannot make
// the broker allocate more than max bytes. buf is reused when it is large
// enough.
func ReadFrame(r io.Reader, max int32, buf []byte) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < minRequestSize || n > max {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameSize, n, max)
	}
	if cap(buf) >= int(n) {
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, unexpectedEOF(err)
		}
		return buf, nil
	}
	// Grow the buffer as the bytes arrive instead of allocating the
	// declared size up front: a client that sends only a size prefix must
	// not make the broker hold max bytes for it.
	buf = buf[:0]
	for len(buf) < int(n) {
		chunk := min(int(n)-len(buf), frameChunk+len(buf))
		buf = slices.Grow(buf, chunk)
		got, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+got]
		if err != nil {
			return nil, unexpectedEOF(err)
		}
	}
	return buf, nil
}

// frameChunk is how far ReadFrame allocates ahead of the bytes received.
const frameChunk = 64 << 10

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
