package protocol_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/skiffmq/skiff/protocol"
)

// TestReadFrameBigClaimHoldsAboutWhatArrived: a frame that claims 100 MiB
// and delivers 2 MiB must not make the reader allocate much more than the
// 2 MiB received: at most a quarter more. The old reader doubled its
// buffer, copying as it went, and allocated about 7.5 MiB for it.
func TestReadFrameBigClaimHoldsAboutWhatArrived(t *testing.T) {
	const received = 2 << 20
	in := sizePrefixed(protocol.DefaultMaxRequestSize, bytes.Repeat([]byte{1}, received))
	// What the reader may hold beyond the bytes received: one piece (a
	// quarter of them) and the bookkeeping of the pieces.
	const slack = received/4 + 64<<10

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := protocol.ReadFrame(bytes.NewReader(in), protocol.DefaultMaxRequestSize, nil)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > received+slack {
		t.Fatalf("reading 2 MiB of a 100 MiB frame allocated %.2f MiB; want at most %.2f MiB", float64(d)/(1<<20), float64(received+slack)/(1<<20))
	}

	var reserved int
	_, err = protocol.ReadFrameReserve(bytes.NewReader(in), protocol.DefaultMaxRequestSize, func(n int) error {
		reserved += n
		return nil
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadFrameReserve: error %v, want io.ErrUnexpectedEOF", err)
	}
	if reserved < received || reserved > received+received/4 {
		t.Fatalf("ReadFrameReserve reserved %d bytes for %d received; want at most a quarter more", reserved, received)
	}
}

// TestReadFrameReserve checks that frames of every size come back intact
// from pieces, that what is reserved covers the frame, and that a failing
// reservation fails the read before anything more is read.
func TestReadFrameReserve(t *testing.T) {
	for _, size := range []int{8, 64 << 10, 64<<10 + 1, 300 << 10, 3<<20 + 7} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		var reserved int
		got, err := protocol.ReadFrameReserve(bytes.NewReader(sizePrefixed(uint32(size), body)), protocol.DefaultMaxRequestSize, func(n int) error {
			reserved += n
			return nil
		})
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("size %d: frame differs (err %v)", size, err)
		}
		if reserved < size || reserved > size+max(64<<10, size/4) {
			t.Fatalf("size %d: reserved %d", size, reserved)
		}
	}
	muted := errors.New("no memory")
	r := bytes.NewReader(sizePrefixed(1<<20, make([]byte, 1<<20)))
	if _, err := protocol.ReadFrameReserve(r, protocol.DefaultMaxRequestSize, func(int) error { return muted }); !errors.Is(err, muted) {
		t.Fatalf("error %v, want the reservation's", err)
	}
	if r.Len() != 1<<20 {
		t.Fatalf("%d bytes read past a refused reservation", 1<<20-r.Len())
	}
}
