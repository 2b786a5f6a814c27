package server

import (
	"time"
)

// Idle connections (connections.max.idle.ms). Kafka's selector closes a
// connection on which nothing has been read or written for that long; a
// client that stalls in the middle of a frame is idle too. Skiff keeps a
// read deadline on the socket and, when it passes, looks at the
// connection's last activity before closing: bytes read, bytes written,
// and requests still in flight (a long-poll fetch, a parked JoinGroup, a
// response not yet written) all count as activity, so only a connection
// that is truly quiet is closed.

// touch records activity on the connection.
func (c *conn) touch() {
	if c.idle > 0 {
		c.lastActivity.Store(time.Now().UnixNano())
	}
}

// idleAt is when the connection becomes idle if nothing more happens. A
// request in flight keeps it busy: idleAt is then a full period away.
//
// A frame being read is bounded by its own clock: the bytes of a frame
// that trickle in (a slow-loris client sends one byte at a time) are
// activity, but the frame must be complete within the idle period of its
// first byte, so no client holds a connection, its goroutines and its
// request memory longer than that by sending slowly.
func (c *conn) idleAt() time.Time {
	at := time.Unix(0, c.lastActivity.Load()).Add(c.idle)
	if c.pending.Load() > 0 {
		at = time.Now().Add(c.idle)
	}
	if fs := c.frameStart.Load(); fs != 0 {
		if end := time.Unix(0, fs).Add(c.idle); end.Before(at) {
			at = end
		}
	}
	return at
}

// idleReader reads from the connection's socket, turning read deadlines
// into the idle check: the deadline is moved on while the connection is
// active, and the read fails with errIdleConn once it has been idle for
// the whole period. It sits under the bufio.Reader, so a frame read across
// many socket reads is not disturbed by a deadline that is moved on.
type idleReader struct{ c *conn }

func (r idleReader) Read(p []byte) (int, error) {
	c := r.c
	for {
		n, err := c.nc.Read(p)
		if n > 0 {
			c.touch()
			return n, err
		}
		// A deadline set by Close (the server stopping) is not an idle
		// check: let the read fail.
		if err == nil || c.idle <= 0 || !isTimeout(err) || c.s.closing.Load() {
			return n, err
		}
		at := c.idleAt()
		if !time.Now().Before(at) {
			return 0, errIdleConn
		}
		c.nc.SetReadDeadline(at)
	}
}

// startIdleClock arms the first idle check of a new connection.
func (c *conn) startIdleClock() {
	if c.idle <= 0 {
		return
	}
	c.touch()
	c.nc.SetReadDeadline(time.Now().Add(c.idle))
}
