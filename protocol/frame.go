package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}
