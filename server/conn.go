package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn serves one client connection with three goroutines: the reader
// decodes frames, the handler runs them one at a time in arrival order (as
// Kafka does, so a producer's pipelined batches are appended in order), and
// the writer sends responses in request order, flushing when it has nothing
// more to send. Requests are decoded while the previous one is handled, and
// a deferred response (a produce waiting for its fsync) is awaited by the
// writer, not the handler.
type conn struct {
	s      *Server
	nc     net.Conn
	log    zerolog.Logger
	ctx    context.Context // the connection's life
	cancel context.CancelFunc
	// reqCtx is what handlers see: it also ends when the server begins to
	// stop, so long polls and parked joins answer at once.
	reqCtx context.Context

	// idle is connections.max.idle.ms; 0 means connections never expire.
	idle time.Duration
	// lastActivity is when bytes were last read or written, in Unix
	// nanoseconds; pending counts requests read whose response is not yet
	// written (or, for acks=0, that are not yet handled). See idle.go.
	lastActivity atomic.Int64
	pending      atomic.Int32
	// frameStart is when the first byte of the frame being read arrived
	// (Unix nanoseconds), 0 between frames: a frame must be read in full
	// within the idle period of it, however its bytes trickle in.
	frameStart atomic.Int64
	// idleCheck is idleAt, or nil when connections never expire: what a
	// reader muted for request memory watches.
	idleCheck func() time.Time
	// auth is who the client is and, on SASL listeners, how far it has
	// got authenticating (see sasl.go).
	auth connAuth
	// mutedUntil is when the reader may read again after a quota
	// throttled the client, in Unix nanoseconds (see quota_conn.go).
	mutedUntil atomic.Int64
}

// inflight is one request on its way from the reader to the writer.
type inflight struct {
	hdr  protocol.RequestHeader
	req  kmsg.Request
	resp kmsg.Response // nil: no response (acks=0)
	// mem is the request memory its frame holds, given back once the
	// request has been handled.
	mem int64
	// frame is the request's frame, back to the frame pool once handled
	// if recycledFrame says nothing keeps it.
	frame []byte
	times reqTimes // for the request metrics; see metrics_requests.go
}

const pipelineDepth = 16

func (s *Server) serveConn(nc net.Conn, l *listenerSpec) {
	auth, nc, ok := s.secureConn(nc, l) // tls_conn.go
	if !ok {
		return
	}
	// The connection's context is not derived from the server's: on a
	// graceful stop the reader stops reading, but requests already read are
	// still answered. Cancelling it (a broken connection, a forced stop)
	// closes the socket, which unblocks the reader.
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c := &conn{
		s:      s,
		nc:     nc,
		log:    s.log.With().Str("remote", nc.RemoteAddr().String()).Logger(),
		ctx:    ctx,
		cancel: cancel,
		idle:   s.cfg.connectionsMaxIdle,
	}
	c.auth.sasl, c.auth.principal = auth.sasl, auth.principal
	if c.auth.sasl == nil {
		c.auth.done.Store(true)
	}
	if c.idle > 0 {
		c.idleCheck = c.idleAt
	}
	// Before trackConn: once tracked, a stopping server sets the read
	// deadline to now, which the idle clock must not overwrite.
	c.startIdleClock()
	s.trackConn(nc, cancel, true)
	defer s.trackConn(nc, cancel, false)
	defer cancel()
	defer nc.Close()
	reqCtx, reqCancel := context.WithCancel(ctx)
	defer reqCancel()
	stopQuit := context.AfterFunc(s.quitCtx, reqCancel)
	defer stopQuit()
	c.reqCtx = reqCtx

	decoded := make(chan inflight, pipelineDepth)
	answered := make(chan inflight, pipelineDepth)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop(answered)
	}()
	go func() {
		defer close(answered)
		c.handleLoop(decoded, answered)
	}()
	c.readLoop(decoded)
	close(decoded)
	<-done
}

// readLoop reads and decodes requests until the connection fails or a
// request cannot be served, which closes the connection as Kafka does.
func (c *conn) readLoop(out chan<- inflight) {
	br := bufio.NewReaderSize(idleReader{c}, 64<<10)
	maxSize := c.s.cfg.socketRequestMaxBytes
	mem := c.s.reqMem
	for {
		if !c.waitUnmuted() {
			return
		}
		// Decoded requests alias their frame (produce records are slices
		// of it), so a frame is reused only once its request is handled,
		// and only for the APIs whose requests nothing keeps
		// (framepool.go). Its memory is counted against queued.max.request.bytes as it is
		// allocated, which mutes this reader while the pool is empty (until
		// memory is freed, the connection goes idle, or the server stops:
		// hence reqCtx).
		var reserved int64
		limit := maxSize
		if !c.auth.done.Load() {
			// Kafka's sasl.server.max.receive.size: a client that has not
			// authenticated cannot make the broker read large frames.
			limit = min(limit, c.auth.sasl.maxReceive)
		}
		// Waiting for a frame to begin is ordinary idleness; once it has,
		// the frame's clock runs (see idleAt).
		var frame []byte
		_, err := br.Peek(1)
		if err == nil {
			c.frameStart.Store(time.Now().UnixNano())
			frame, err = protocol.ReadFrameReserveFrom(br, limit, func(n int) error {
				if err := mem.reserve(c.reqCtx, c, int64(n), c.idleCheck); err != nil {
					return err
				}
				reserved += int64(n)
				return nil
			}, c.s.frames)
		}
		c.frameStart.Store(0)
		mem.frameDone(c)
		if err != nil {
			mem.release(reserved)
			switch {
			case errors.Is(err, errIdleConn):
				c.log.Debug().Dur("idle", c.idle).Msg("closing idle connection")
			case !isClosedConnErr(err):
				c.log.Warn().Err(err).Msg("closing connection: bad frame")
			}
			c.cancel()
			return
		}
		// The pieces may exceed the frame by part of one; keep only what
		// the frame itself holds.
		mem.release(reserved - int64(len(frame)))
		reserved = int64(len(frame))
		hdr, rest, err := protocol.ParseRequestHeader(frame)
		if err != nil {
			mem.release(reserved)
			c.log.Warn().Err(err).Msg("closing connection: malformed request header")
			c.cancel()
			return
		}
		entry, known := apis[hdr.APIKey]
		if !known || hdr.APIVersion < entry.min || hdr.APIVersion > entry.max || refusedVersion(hdr) {
			mem.release(reserved)
			if known && hdr.APIKey == protocol.ApiVersionsKey {
				// Kafka answers an ApiVersions it cannot parse with v0 and
				// the supported ranges, so the client can pick a version.
				c.pending.Add(1)
				select {
				case out <- inflight{hdr: hdr, resp: apiVersionsUnsupported()}:
				case <-c.ctx.Done():
					return
				}
				continue
			}
			c.log.Warn().Int16("api_key", hdr.APIKey).Int16("api_version", hdr.APIVersion).
				Str("client_id", hdr.ClientID).Msg("closing connection: unsupported api or version")
			c.cancel()
			return
		}
		if rewrite := beforeDecode[hdr.APIKey]; rewrite != nil {
			rest = rewrite(hdr.APIVersion, rest)
		}
		req, err := protocol.DecodeRequest(hdr, rest)
		if err != nil {
			mem.release(reserved)
			c.log.Warn().Err(err).Str("client_id", hdr.ClientID).Msg("closing connection: malformed request")
			c.cancel()
			return
		}
		c.pending.Add(1)
		select {
		case out <- inflight{hdr: hdr, req: req, mem: reserved, frame: frame, times: reqTimes{read: c.s.metrics.now()}}:
		case <-c.ctx.Done():
			mem.release(reserved)
			return
		}
	}
}

// refusedVersion reports versions that are advertised but refused: Kafka 4
// advertises Produce from v0 because old librdkafka versions require it,
// yet no longer accepts v0-v2 (KIP-896).
func refusedVersion(h protocol.RequestHeader) bool {
	return h.APIKey == int16(kmsg.Produce) && h.APIVersion < 3
}

func (c *conn) handleLoop(in <-chan inflight, out chan<- inflight) {
	for f := range in {
		if f.req != nil {
			// Requests read ahead before a quota muted the connection
			// wait as well, as those Kafka has not yet taken off the
			// socket do.
			if !c.waitUnmuted() {
				c.s.reqMem.release(f.mem)
				c.pending.Add(-1)
				continue
			}
			f.times.start = c.s.metrics.now()
			f.resp = c.handle(f)
			f.times.end = c.s.metrics.now()
			// Handled: the frame's memory may go to other readers (Kafka
			// releases a request's buffer once its handler returns).
			c.s.reqMem.release(f.mem)
			f.mem = 0
			if recycledFrame(f.hdr.APIKey) {
				c.s.frames.Put(f.frame)
			}
			f.frame, f.req = nil, nil
			if f.resp == nil {
				c.s.metrics.request(f.hdr.APIKey, &f.times, nil)
				c.pending.Add(-1)
				c.touch()
				continue // acks=0: nothing to send
			}
		}
		select {
		case out <- f:
		case <-c.ctx.Done():
			releaseResponse(f.resp)
		}
	}
}

func (c *conn) handle(f inflight) (resp kmsg.Response) {
	// A handler bug must cost one connection, not the broker and every
	// other client on it.
	defer func() {
		if v := recover(); v != nil {
			c.log.Error().Str("api", kmsg.NameForKey(f.hdr.APIKey)).Int16("api_version", f.hdr.APIVersion).
				Str("client_id", f.hdr.ClientID).Interface("panic", v).Bytes("stack", debug.Stack()).
				Msg("closing connection: handler panicked")
			c.cancel()
			resp = nil
		}
	}()
	if ok, why := c.auth.permits(f.hdr.APIKey, time.Now()); !ok {
		c.log.Warn().Str("api", kmsg.NameForKey(f.hdr.APIKey)).Str("client_id", f.hdr.ClientID).
			Msg("closing connection: " + why)
		c.cancel()
		return nil
	}
	if fs := c.s.faults.Load(); fs != nil {
		if resp, handled := c.applyFaults(fs, f); handled {
			return resp
		}
	}
	entry := apis[f.hdr.APIKey]
	r := &request{ctx: c.reqCtx, connCtx: c.ctx, kreq: f.req, version: f.hdr.APIVersion, clientID: f.hdr.ClientID, remote: c.nc.RemoteAddr(), local: c.nc.LocalAddr(),
		auth: &c.auth, size: int(f.mem)}
	start := time.Now()
	var err error
	if c.s.authz == nil {
		resp, err = entry.handle(c.s, r)
	} else {
		resp, err = c.s.handleAuthorized(entry, r) // authz.go
	}
	if err == nil {
		c.applyQuotas(f.hdr.APIKey, r, resp, start)
	}
	if err != nil {
		// A handler error means the request was invalid in a way Kafka
		// answers by closing the connection.
		c.log.Warn().Err(err).Str("api", kmsg.NameForKey(f.hdr.APIKey)).Str("client_id", f.hdr.ClientID).
			Msg("closing connection: request rejected")
		c.cancel()
		return nil
	}
	return resp
}

func (c *conn) writeLoop(in <-chan inflight) {
	// Allocated with the first response: a connection that never gets one
	// (a client stalled in its first request) does not hold it.
	var bw *bufio.Writer
	var buf []byte
	var pieces []framePiece // the frame: slices of buf and, for fetches, records
	// Asked once: whether record bytes can go from the segment files to
	// this connection without a copy (not under TLS).
	fs := newFileSender(c.nc, func() {
		c.writeDeadline()
		c.touch()
	})
	for f := range in {
		if c.ctx.Err() != nil {
			releaseResponse(f.resp)
			continue // drain so the handler never blocks
		}
		if bw == nil {
			bw = bufio.NewWriterSize(deadlineWriter{c}, 64<<10)
		}
		if ca, ok := f.resp.(*closeAfterResponse); ok && ca.delay > 0 {
			bw.Flush() // what went before is not held back
			t := time.NewTimer(ca.delay)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
			}
		}
		var ok bool
		buf, pieces, ok = c.encode(buf[:0], pieces[:0], f)
		if !ok {
			releaseResponse(f.resp)
			continue
		}
		var err error
		for _, p := range pieces {
			if p.file.File != nil {
				err = writeFileRange(bw, fs, p.file)
			} else {
				_, err = bw.Write(p.b)
			}
			if err != nil {
				break
			}
		}
		// The records are with the socket or bw now (bufio hands large
		// writes to the socket directly; file ranges were sent or copied):
		// give their budget and segment references back.
		clear(pieces)
		releaseResponse(f.resp)
		if err != nil {
			c.writeFailed(err)
			continue
		}
		if _, closing := f.resp.(*closeAfterResponse); closing {
			// A failed authentication: the client gets the error, then the
			// connection closes, as Kafka does.
			bw.Flush()
			c.cancel()
			continue
		}
		if len(in) == 0 {
			if err := bw.Flush(); err != nil {
				c.writeFailed(err)
				continue
			}
		}
		// Written, or buffered behind a response that is still pending and
		// flushes it: writing is activity, and the request is done.
		c.touch()
		c.pending.Add(-1)
		if cap(buf) > 1<<20 {
			buf = nil // do not pin one large fetch response's buffer
		}
	}
}

// writeFailed closes the connection after a failed write, saying why when
// the client stopped reading.
func (c *conn) writeFailed(err error) {
	if errors.Is(err, errWriteStalled) || isTimeout(err) {
		c.log.Debug().Dur("idle", c.idle).Msg("closing connection: the client does not read its responses")
	}
	c.cancel()
}

// encode completes a deferred response and encodes the response frame. A
// panic there, like one in a handler, closes only this connection.
func (c *conn) encode(buf []byte, pieces []framePiece, f inflight) (_ []byte, _ []framePiece, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error().Str("api", kmsg.NameForKey(f.hdr.APIKey)).Interface("panic", v).Bytes("stack", debug.Stack()).
				Msg("closing connection: encoding a response panicked")
			c.cancel()
			ok = false
		}
	}()
	resp := f.resp
	if d, isDeferred := resp.(*deferredResponse); isDeferred {
		waitStart := c.s.metrics.now()
		d.wait()
		if !waitStart.IsZero() {
			f.times.wait = time.Since(waitStart)
		}
		resp = d.Response
	}
	if h, isHeld := resp.(*heldResponse); isHeld {
		resp = h.Response
	}
	if ca, isClosing := resp.(*closeAfterResponse); isClosing {
		resp = ca.Response
	}
	c.s.metrics.request(f.hdr.APIKey, &f.times, resp)
	if fr, isFetch := resp.(*fetchResponse); isFetch {
		var copied int64
		buf, pieces, copied = appendFetchFrame(buf, pieces, f.hdr.CorrelationID, fr.FetchResponse, fr.files)
		if copied > 0 {
			c.s.fetchPool.give(-copied) // given back when the response is released
			fr.copied += copied
		}
		return buf, pieces, true
	}
	buf = protocol.AppendResponse(buf, f.hdr.CorrelationID, resp)
	return buf, append(pieces, framePiece{b: buf}), true
}

func isClosedConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.Canceled) || isTimeout(err) || errors.Is(err, errConnReset) || errors.Is(err, errIdleConn)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var errConnReset = syscall.ECONNRESET
