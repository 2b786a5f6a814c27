package server

import (
	"time"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// How a connection carries out a quota's throttle: the time goes in the
// response's throttle_time_ms (KIP-219: the response is sent at once and
// the client waits), and the connection stops reading requests for that
// time, as Kafka mutes the channel, so a client that ignores the field
// gains nothing.

// requestQuotaExempt are the APIs Kafka does not count against
// request_percentage: those a client needs before it can be identified.
var requestQuotaExempt = map[int16]bool{
	protocol.ApiVersionsKey:      true,
	int16(kmsg.SASLHandshake):    true,
	int16(kmsg.SASLAuthenticate): true,
}

// applyQuotas records the request's handler time against request_percentage
// and applies the longest throttle any quota asked for.
func (c *conn) applyQuotas(key int16, r *request, resp kmsg.Response, start time.Time) {
	s := c.s
	if s.quotas == nil || len(s.meta.clientQuotas()) == 0 {
		return // no quota stored: nothing to measure
	}
	throttle := r.throttle
	if !requestQuotaExempt[key] {
		now := time.Now()
		// The percentage of one thread's second the request used
		// (Kafka's nanosToPercentage); its throttle is at most one window,
		// as ClientRequestQuotaManager bounds it.
		pct := float64(now.Sub(start).Nanoseconds()) * 100 / float64(time.Second)
		t := s.quotas.record(quotaRequest, r.auth.principal, r.clientID, pct, now)
		throttle = max(throttle, min(t, time.Duration(quotaWindowMs)*time.Millisecond))
	}
	if throttle <= 0 {
		return
	}
	ms := int32(min(throttle.Milliseconds(), int64(1<<31-1)))
	if tr := throttleField(resp); tr != nil {
		if cur, _ := tr.Throttle(); ms > cur {
			tr.SetThrottle(ms)
		}
	}
	until := time.Now().Add(throttle).UnixNano()
	if until > c.mutedUntil.Load() {
		c.mutedUntil.Store(until) // only the handler goroutine stores
	}
}

// throttleField finds the response that carries throttle_time_ms inside the
// wrappers handlers return.
func throttleField(resp kmsg.Response) throttleResponse {
	for {
		switch r := resp.(type) {
		case *deferredResponse:
			resp = r.Response
		case *heldResponse:
			resp = r.Response
		case *closeAfterResponse:
			resp = r.Response
		case throttleResponse:
			return r
		default:
			return nil
		}
	}
}

type throttleResponse interface {
	kmsg.ThrottleResponse
	kmsg.SetThrottleResponse
}

// waitUnmuted holds the reader while a quota has the connection muted. It
// returns false if the connection ends meanwhile.
func (c *conn) waitUnmuted() bool {
	until := c.mutedUntil.Load()
	if until == 0 {
		return true
	}
	d := time.Until(time.Unix(0, until))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.reqCtx.Done():
		// A graceful stop: go on to the read, which the stop's deadline
		// ends; the connection closing ends it too.
		return c.ctx.Err() == nil
	}
}
