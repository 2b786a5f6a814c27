package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRequestMemoryMutesUntilFreed: once the pool is used up, reserve
// waits (the reader is muted) and goes on when memory is given back; it
// gives up when the connection ends or has been idle too long.
func TestRequestMemoryMutesUntilFreed(t *testing.T) {
	m := newRequestMemory(100)
	ctx := context.Background()
	if err := m.reserve(ctx, 60, nil); err != nil {
		t.Fatal(err)
	}
	// Like Kafka's non-strict pool: granted whole while anything is left.
	if err := m.reserve(ctx, 60, nil); err != nil {
		t.Fatal(err)
	}
	granted := make(chan error, 1)
	go func() { granted <- m.reserve(ctx, 10, nil) }()
	select {
	case err := <-granted:
		t.Fatalf("reserve on an exhausted pool returned %v; want it to wait", err)
	case <-time.After(50 * time.Millisecond):
	}
	m.release(60)
	if err := <-granted; err != nil {
		t.Fatal(err)
	}
	if got := m.inUse(); got != 70 {
		t.Fatalf("in use %d, want 70", got)
	}

	m.reserve(ctx, 30, nil) // 100: exhausted again
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.reserve(cctx, 1, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("reserve on a closed connection: %v", err)
	}
	idleAt := time.Now().Add(20 * time.Millisecond)
	if err := m.reserve(ctx, 1, func() time.Time { return idleAt }); !errors.Is(err, errIdleConn) {
		t.Fatalf("reserve past the idle deadline: %v", err)
	}

	unbounded := newRequestMemory(-1)
	if err := unbounded.reserve(ctx, 1<<40, nil); err != nil || unbounded.inUse() != 0 {
		t.Fatalf("unbounded pool: %v, in use %d", err, unbounded.inUse())
	}
}
