package skifftest

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the broker's clock in a test: the wall clock plus an offset
// that only Advance changes. Time keeps flowing on its own, so clients and
// timeouts behave as usual; Advance jumps it forward, firing at once every
// coordinator timer that comes due (session timeouts, rebalance delays).
// It implements coordinator.Clock.
type Clock struct {
	// offset is what Advance added, in nanoseconds; it changes under mu
	// but is read without it (Now is on the coordinators' request paths).
	offset atomic.Int64
	mu     sync.Mutex // guards timers
	timers map[*clockTimer]struct{}
}

type clockTimer struct {
	at    time.Time
	f     func()
	done  atomic.Bool // fired or stopped
	real  *time.Timer // set under clock.mu
	clock *Clock
}

func newClock() *Clock { return &Clock{timers: map[*clockTimer]struct{}{}} }

// Now is the wall clock plus every Advance so far.
func (c *Clock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load()))
}

// AfterFunc calls f in its own goroutine once d has passed on this clock:
// in real time, or sooner when Advance moves past it.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	t := &clockTimer{f: f, clock: c}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.at = c.Now().Add(d)
	c.timers[t] = struct{}{}
	// Advance only moves the clock forward, so the real timer never
	// fires later than the clock says it should. Set under mu, which
	// Advance reads it under.
	t.real = time.AfterFunc(d, t.fire)
	return t.stop
}

func (t *clockTimer) fire() {
	if !t.done.CompareAndSwap(false, true) {
		return
	}
	t.clock.forget(t)
	t.f()
}

func (t *clockTimer) stop() bool {
	if !t.done.CompareAndSwap(false, true) {
		return false
	}
	t.clock.mu.Lock()
	t.real.Stop()
	delete(t.clock.timers, t)
	t.clock.mu.Unlock()
	return true
}

func (c *Clock) forget(t *clockTimer) {
	c.mu.Lock()
	delete(c.timers, t)
	c.mu.Unlock()
}

// Advance moves the clock forward by d and starts every timer that is now
// due, each in its own goroutine.
func (c *Clock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.offset.Add(int64(d))
	now := c.Now()
	var due []*clockTimer
	for t := range c.timers {
		if !t.at.After(now) {
			t.real.Stop()
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		go t.fire()
	}
}
