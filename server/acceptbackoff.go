package server

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// Accept errors. A failing Accept (most often EMFILE, "too many open
// files") must not end the accept loop: the process would stay up while
// the kernel keeps completing handshakes nobody serves. As net/http.Server
// does, the loop pauses 5 ms after the first failure, doubling up to
// acceptBackoffMax, and retries until Accept succeeds.

const (
	acceptBackoffMin = 5 * time.Millisecond
	// acceptBackoffMax caps the pause. net/http uses 1 s; Skiff uses a
	// tenth of that because the pause is also how late the broker notices
	// that descriptors are free again, so clients waiting in the backlog
	// are served at most 100 ms after that, while ten retries a second cost
	// nothing measurable.
	acceptBackoffMax = 100 * time.Millisecond
	// acceptLogInterval rate-limits the error line: one per episode of
	// failures, and at most one per interval when episodes come and go.
	acceptLogInterval = 10 * time.Second
)

// acceptBackoff is the state of one listener's accept loop between
// failures. It is used by that loop's goroutine only.
type acceptBackoff struct {
	delay      time.Duration // 0: not in an episode of failures
	failures   int           // in this episode
	since      time.Time     // start of this episode
	logged     bool          // this episode's error line was written
	lastLog    time.Time
	suppressed int // episodes not logged because of the rate limit
}

// wait records a failed Accept, logs it if it starts an episode (and the
// rate limit allows), and pauses. It returns false if the server is
// stopping.
func (b *acceptBackoff) wait(ctx context.Context, err error, log zerolog.Logger, listener string) bool {
	now := time.Now()
	if b.delay == 0 {
		b.delay, b.failures, b.since, b.logged = acceptBackoffMin, 0, now, false
		if b.lastLog.IsZero() || now.Sub(b.lastLog) >= acceptLogInterval {
			log.Error().Err(err).Str("listener", listener).Int("suppressed_episodes", b.suppressed).
				Dur("max_retry_delay", acceptBackoffMax).
				Msg("accept failed; retrying until it succeeds (logged once until it does)")
			b.logged, b.lastLog, b.suppressed = true, now, 0
		} else {
			b.suppressed++
		}
	} else {
		b.delay = min(2*b.delay, acceptBackoffMax)
	}
	b.failures++
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// recovered ends an episode of failures after a successful Accept.
func (b *acceptBackoff) recovered(log zerolog.Logger, listener string) {
	if b.delay == 0 {
		return
	}
	if b.logged {
		log.Warn().Str("listener", listener).Int("failures", b.failures).Dur("after", time.Since(b.since)).
			Msg("accepting connections again")
	}
	b.delay = 0
}
