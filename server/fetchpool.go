package server

import "sync/atomic"

// fetchPool bounds the memory of fetch responses across the broker: the
// bytes of records read for responses that are being built or are waiting
// to be written (fetch.memory.pool.bytes, a Skiff-specific config; Kafka's
// request memory pool, queued.max.request.bytes, is the model).
//
// Only bytes actually copied into memory count. A fetch normally holds
// file ranges, not records (the writer sends them with sendfile, or copies
// them through its fixed-size write buffer), so today only the encoder's
// fallback of appendFetchFrame takes from the pool; the rules below are
// for any path that reads records into memory.
//
// A fetch takes what it may read before reading, returns the part it did
// not use, and returns the rest once its response has been written. A
// fetch that finds the pool short does not wait: it reads less, and with
// nothing left it still reads the first batch it finds (Kafka's rule that
// the first batch is returned even if it exceeds the limits), so every
// consumer progresses and the pool is overdrawn by at most one batch per
// fetch in flight. Waiting instead would let a client that does not read
// its responses stall every other consumer.
type fetchPool struct {
	free atomic.Int64 // may go negative by first batches read on credit
}

func newFetchPool(size int64) *fetchPool {
	p := &fetchPool{}
	p.free.Store(size)
	return p
}

// take reserves up to want bytes and returns how many it reserved.
func (p *fetchPool) take(want int64) int64 {
	for {
		free := p.free.Load()
		n := min(want, max(free, 0))
		if n == 0 || p.free.CompareAndSwap(free, free-n) {
			return n
		}
	}
}

// give returns n bytes to the pool; a negative n takes them unconditionally
// (a first batch read beyond what was reserved).
func (p *fetchPool) give(n int64) { p.free.Add(n) }

// available reports the bytes not reserved (negative when overdrawn).
func (p *fetchPool) available() int64 { return p.free.Load() }
