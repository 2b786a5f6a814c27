package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRequestMemoryMutesUntilFreed: once the pool is used up, reserve
// waits (the reader is muted) and goes on when memory is given back; one
// frame at a time may go past the limit so that partly read frames cannot
// all wait for one another; a wait ends when the connection does or has
// been idle too long.
func TestRequestMemoryMutesUntilFreed(t *testing.T) {
	m := newRequestMemory(100)
	ctx := context.Background()
	a, b, c := &conn{}, &conn{}, &conn{}
	mustReserve := func(r *conn, n int64) {
		t.Helper()
		if err := m.reserve(ctx, r, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitingReserve := func(r *conn, n int64) <-chan error {
		t.Helper()
		granted := make(chan error, 1)
		go func() { granted <- m.reserve(ctx, r, n, nil) }()
		select {
		case err := <-granted:
			t.Fatalf("reserve on an exhausted pool returned %v; want it to wait", err)
		case <-time.After(50 * time.Millisecond):
		}
		return granted
	}

	mustReserve(a, 60)
	mustReserve(b, 60) // like Kafka's non-strict pool: granted while anything is left
	mustReserve(a, 10) // a takes the overdraft
	mustReserve(a, 10)
	bMore := waitingReserve(b, 10)
	m.frameDone(a) // a's frame is complete: b may have the overdraft
	if err := <-bMore; err != nil {
		t.Fatal(err)
	}
	cMore := waitingReserve(c, 5)
	m.release(80) // a's request handled: 60 used
	if err := <-cMore; err != nil {
		t.Fatal(err)
	}
	if got := m.inUse(); got != 75 {
		t.Fatalf("in use %d, want 75", got)
	}

	mustReserve(c, 40) // 115, b still has the overdraft
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.reserve(cctx, c, 1, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("reserve on a closed connection: %v", err)
	}
	idleAt := time.Now().Add(20 * time.Millisecond)
	if err := m.reserve(ctx, c, 1, func() time.Time { return idleAt }); !errors.Is(err, errIdleConn) {
		t.Fatalf("reserve past the idle deadline: %v", err)
	}

	unbounded := newRequestMemory(-1)
	if err := unbounded.reserve(ctx, a, 1<<40, nil); err != nil || unbounded.inUse() != 0 {
		t.Fatalf("unbounded pool: %v, in use %d", err, unbounded.inUse())
	}
}
