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
	n, err := readFrameSize(r, max)
	if err != nil {
		return nil, err
	}
	if cap(buf) >= n {
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, unexpectedEOF(err)
		}
		return buf, nil
	}
	return readFrameBody(r, n, nil, nil)
}

// ReadFrameReserve reads one size-prefixed frame like ReadFrame, always
// into fresh memory, and calls reserve with the size of each piece of the
// frame buffer before allocating it. reserve may block (the broker's
// request memory pool waits for memory to be freed) or fail, which fails
// the read. The pieces reserved add up to at least the frame's length and
// exceed the bytes received by less than one piece (see nextFrameChunk).
func ReadFrameReserve(r io.Reader, max int32, reserve func(n int) error) ([]byte, error) {
	return ReadFrameReserveFrom(r, max, reserve, nil)
}

// FrameBuffers supplies the memory frames are read into and takes back
// what the reader no longer needs (the pieces of a joined frame, the
// pieces of a frame that failed). Get returns a slice of length n.
type FrameBuffers interface {
	Get(n int) []byte
	Put(b []byte)
}

// ReadFrameReserveFrom is ReadFrameReserve with the frame and its pieces
// taken from bufs (fresh memory if bufs is nil). The frame returned is the
// caller's, to give back to bufs once nothing refers to it.
func ReadFrameReserveFrom(r io.Reader, max int32, reserve func(n int) error, bufs FrameBuffers) ([]byte, error) {
	n, err := readFrameSize(r, max)
	if err != nil {
		return nil, err
	}
	return readFrameBody(r, n, reserve, bufs)
}

func readFrameSize(r io.Reader, max int32) (int, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return 0, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < minRequestSize || n > max {
		return 0, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameSize, n, max)
	}
	return int(n), nil
}

// readFrameBody reads n bytes in pieces allocated as the bytes arrive
// instead of allocating the declared size up front: a client that sends
// only a size prefix, or a fraction of a large frame, must not make the
// broker hold what it claimed. Pieces are never copied while the frame is
// incomplete, so the memory held is the pieces themselves; a frame of more
// than one piece is joined once, when all of it has arrived.
func readFrameBody(r io.Reader, n int, reserve func(int) error, bufs FrameBuffers) ([]byte, error) {
	get := func(n int) []byte { return make([]byte, n) }
	put := func([]byte) {}
	if bufs != nil {
		get, put = bufs.Get, bufs.Put
	}
	var pieces [][]byte
	got := 0
	for got < n {
		size := nextFrameChunk(got, n)
		if reserve != nil {
			if err := reserve(size); err != nil {
				for _, p := range pieces {
					put(p)
				}
				return nil, err
			}
		}
		p := get(size)
		pieces = append(pieces, p)
		k, err := io.ReadFull(r, p)
		got += k
		if err != nil {
			for _, p := range pieces {
				put(p)
			}
			return nil, unexpectedEOF(err)
		}
	}
	if len(pieces) == 1 {
		return pieces[0], nil
	}
	frame := get(n)[:0]
	for _, p := range pieces {
		frame = append(frame, p...)
		put(p)
	}
	return frame, nil
}

// nextFrameChunk is the size of the next piece of a frame of n bytes of
// which got have arrived: frameChunk until 256 KiB have arrived, then a
// quarter of what has arrived, capped at maxFrameChunk. So an incomplete
// frame holds at most 64 KiB, or a quarter, or 1 MiB more than it
// received, whatever size it claims.
func nextFrameChunk(got, n int) int {
	return min(n-got, max(frameChunk, min(got/4, maxFrameChunk)))
}

// frameChunk is the first piece of a frame; frames up to this size are
// read into one buffer with no copy.
const frameChunk = 64 << 10

// maxFrameChunk bounds how far an incomplete frame's memory runs ahead of
// the bytes received.
const maxFrameChunk = 1 << 20

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
