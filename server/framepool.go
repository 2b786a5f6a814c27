package server

import (
	"math/bits"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// framePool recycles request frame buffers in power-of-two size classes.
// Decoded requests alias their frame (a produce request's records are
// slices of it), so only frames whose requests nothing keeps after their
// handler returns come back: Produce, whose records are in the log's file
// (copied to the page cache) by then. Other frames are taken from the
// pool too and left to the garbage collector, as before.
//
// Each class keeps at most framePoolClassBytes (and at most
// framePoolMaxBuffers buffers), so the pool holds about 12 MiB at worst:
// a sync.Pool, which keeps whatever was put until the next GCs, raised
// the broker's peak RSS by 40-100 MB under a 10 KB-record load. The free
// lists are buffered channels: no lock of ours (LOCKS.md).
type framePool struct {
	classes [framePoolClasses]chan []byte
}

const (
	framePoolMinShift   = 10 // 1 KiB
	framePoolMaxShift   = 22 // 4 MiB; larger frames are allocated and dropped
	framePoolClasses    = framePoolMaxShift - framePoolMinShift + 1
	framePoolClassBytes = 1 << 20
	framePoolMaxBuffers = 16
)

func newFramePool() *framePool {
	p := &framePool{}
	for c := range p.classes {
		n := min(framePoolMaxBuffers, max(1, framePoolClassBytes>>(c+framePoolMinShift)))
		p.classes[c] = make(chan []byte, n)
	}
	return p
}

// recycledFrame reports whether a request's frame may go back to the pool
// once its handler has returned.
func recycledFrame(apiKey int16) bool { return apiKey == int16(kmsg.Produce) }

func frameClass(n int) (int, bool) {
	if n <= 0 {
		return 0, false
	}
	shift := max(bits.Len(uint(n-1)), framePoolMinShift)
	if shift > framePoolMaxShift {
		return 0, false
	}
	return shift - framePoolMinShift, true
}

// Get returns a buffer of length n.
func (p *framePool) Get(n int) []byte {
	c, ok := frameClass(n)
	if !ok {
		return make([]byte, n)
	}
	select {
	case b := <-p.classes[c]:
		return b[:n]
	default:
		return make([]byte, n, 1<<(c+framePoolMinShift))
	}
}

// Put takes back a buffer from Get; nothing may refer to it afterwards.
// A full class drops it for the garbage collector.
func (p *framePool) Put(b []byte) {
	c, ok := frameClass(cap(b))
	if !ok || cap(b) != 1<<(c+framePoolMinShift) {
		return // not one of ours
	}
	select {
	case p.classes[c] <- b[:0]:
	default:
	}
}
