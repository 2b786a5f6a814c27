package server

import (
	"testing"
	"time"
)

// TestQuotaRateThrottlesBeyondWindowBudget: a client recording faster than
// its quota is let through until the window's budget (quota times the 10
// full samples) is used, then throttled for the excess over the quota.
func TestQuotaRateThrottlesBeyondWindowBudget(t *testing.T) {
	var r windowedRate
	const limit = 1 << 20
	now := int64(1_000_000)
	var first time.Duration
	sent := 0
	for i := 0; i < 1000 && first == 0; i++ {
		first = r.recordThrottle(64<<10, limit, now)
		sent += 64 << 10
		now += 5
	}
	if sent < 10*limit || sent > 11*limit+64<<10 {
		t.Fatalf("first throttle after %d bytes; want about 10 s of the quota (%d)", sent, 10*limit)
	}
	// Recording 1 MB more at once is 1 s of the quota over it.
	d := r.recordThrottle(limit, limit, now)
	if d < 900*time.Millisecond || d > 1200*time.Millisecond {
		t.Errorf("throttle for 1 s of excess: %v", d)
	}
}
