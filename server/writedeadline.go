package server

import (
	"errors"
	"time"
)

// Write deadlines. A client that sends requests and never reads the
// responses fills its socket's send buffer; the writer then blocks, the
// pipeline behind it fills, and the connection would hold its goroutines,
// descriptor and response buffers for ever. Kafka has no write timeout as
// such, but its idle expiry (connections.max.idle.ms) closes a connection
// on which nothing moves, and a send that does not progress is not
// movement. Skiff does the same: every write to the socket must make
// progress within connections.max.idle.ms, or the connection is closed.
// Progress, not completion: a slow reader that drains its socket keeps
// the connection, only a stalled one loses it.

// writeChunk is the most one write is given with one deadline: a large
// copied fetch response is written in pieces, each with a fresh deadline,
// so that a slow but reading client is not cut off in the middle.
const writeChunk = 64 << 10

// deadlineWriter writes to the connection's socket with the write
// deadline armed. It sits under the writer's bufio.Writer.
type deadlineWriter struct{ c *conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	c := w.c
	if c.idle <= 0 {
		return c.nc.Write(p)
	}
	var written int
	for len(p) > 0 {
		chunk := p[:min(len(p), writeChunk)]
		c.nc.SetWriteDeadline(time.Now().Add(c.idle))
		n, err := c.nc.Write(chunk)
		written += n
		p = p[n:]
		if n > 0 {
			c.touch()
		}
		if err != nil {
			if isTimeout(err) {
				err = errWriteStalled
			}
			return written, err
		}
	}
	return written, nil
}

// errWriteStalled is a response write that made no progress for
// connections.max.idle.ms.
var errWriteStalled = errors.New("server: client stopped reading its responses (no write progress within connections.max.idle.ms)")

// writeDeadline arms the write deadline for a write that starts now; it is
// what the zero-copy sender re-arms whenever the kernel takes bytes.
func (c *conn) writeDeadline() {
	if c.idle > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.idle))
	}
}
