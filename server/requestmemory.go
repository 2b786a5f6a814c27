package server

import (
	"context"
	"errors"
	"sync"
	"time"
)

// requestMemory bounds the bytes held by request frames broker-wide, from
// the first byte read until the request has been handled: Kafka's memory
// pool for requests (queued.max.request.bytes). When it is exhausted,
// readers stop reading (the connection is muted, as Kafka mutes channels
// when its pool is empty) until handled requests give memory back; healthy
// clients are slowed, not closed.
//
// Memory is reserved piece by piece as a frame's bytes arrive
// (protocol.ReadFrameReserve), so a client must send bytes, not just claim
// them, to hold memory. As in Kafka's pool (SimpleMemoryPool, non-strict),
// a piece is granted whole as long as any memory is left. Because frames
// are charged while incomplete, the pool could fill with partly read frames
// that all wait for one another; so one frame at a time, the overdraft
// frame, may go past the limit until it is complete. The bytes held are
// thus at most the limit plus one frame (and a piece), which is also the
// bound of Kafka's pool.
type requestMemory struct {
	limit int64 // <= 0: unbounded, nothing is counted

	// mu is a leaf lock: nothing else is locked while it is held.
	mu struct {
		sync.Mutex
		used    int64
		waiters int // readers waiting in reserve
		// overdraft is the reader whose frame may exceed the limit; nil
		// when no frame does.
		overdraft *conn
		// freed is closed, and replaced, whenever memory is given back, so
		// that waiting readers look again.
		freed chan struct{}
	}
}

func newRequestMemory(limit int64) *requestMemory {
	m := &requestMemory{limit: limit}
	m.mu.freed = make(chan struct{})
	return m
}

// errIdleConn ends a connection that stayed idle past connections.max.idle.ms.
var errIdleConn = errors.New("server: connection idle longer than connections.max.idle.ms")

// reserve takes n bytes, waiting while the pool is exhausted. The wait ends
// with ctx (the connection closed) or, if idleAt is not nil, when the
// connection has been idle too long: a muted connection with nothing in
// flight makes no progress, as in Kafka, whose idle expiry closes muted
// channels too.
func (m *requestMemory) reserve(ctx context.Context, reader *conn, n int64, idleAt func() time.Time) error {
	if m.limit <= 0 {
		return nil
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		m.mu.Lock()
		if m.mu.used >= m.limit && m.mu.overdraft == nil {
			m.mu.overdraft = reader
		}
		if m.mu.used < m.limit || m.mu.overdraft == reader {
			m.mu.used += n
			m.mu.Unlock()
			return nil
		}
		freed := m.mu.freed
		m.mu.waiters++
		m.mu.Unlock()

		var expired <-chan time.Time
		if idleAt != nil {
			d := time.Until(idleAt())
			if d <= 0 {
				m.unwait()
				return errIdleConn
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			expired = timer.C
		}
		var err error
		select {
		case <-freed:
		case <-expired:
		case <-ctx.Done():
			err = ctx.Err()
		}
		m.unwait()
		if err != nil {
			return err
		}
	}
}

// frameDone is called when reader's frame is complete or failed: its
// overdraft, if it had it, passes to the next waiting reader.
func (m *requestMemory) frameDone(reader *conn) {
	if m.limit <= 0 {
		return
	}
	m.mu.Lock()
	if m.mu.overdraft == reader {
		m.mu.overdraft = nil
		m.wakeLocked()
	}
	m.mu.Unlock()
}

func (m *requestMemory) unwait() {
	m.mu.Lock()
	m.mu.waiters--
	m.mu.Unlock()
}

// release gives back n bytes taken by reserve.
func (m *requestMemory) release(n int64) {
	if m.limit <= 0 || n == 0 {
		return
	}
	m.mu.Lock()
	m.mu.used -= n
	m.wakeLocked()
	m.mu.Unlock()
}

// wakeLocked makes waiting readers look again.
func (m *requestMemory) wakeLocked() {
	if m.mu.waiters > 0 {
		close(m.mu.freed)
		m.mu.freed = make(chan struct{})
	}
}

// inUse is the bytes currently reserved.
func (m *requestMemory) inUse() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.used
}
