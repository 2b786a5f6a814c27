package server

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// TestAcceptBackoffLogsOncePerEpisode: a run of accept failures is logged
// once, with pauses doubling from 5 ms to the 100 ms cap; a new run soon
// after is counted, not logged.
func TestAcceptBackoffLogsOncePerEpisode(t *testing.T) {
	var out bytes.Buffer
	log := zerolog.New(&out)
	// A stopped context: wait updates its state and returns at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	emfile := errors.New("accept tcp: " + syscall.EMFILE.Error())

	var b acceptBackoff
	want := []int{5, 10, 20, 40, 80, 100, 100}
	for i, ms := range want {
		b.wait(ctx, emfile, log, "l")
		if got := int(b.delay.Milliseconds()); got != ms {
			t.Fatalf("failure %d: pause %d ms, want %d", i+1, got, ms)
		}
	}
	b.recovered(log, "l")
	b.wait(ctx, emfile, log, "l") // a second episode within acceptLogInterval
	b.recovered(log, "l")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"level":"error"`) || !strings.Contains(lines[0], "too many open files") ||
		!strings.Contains(lines[1], "accepting connections again") || !strings.Contains(lines[1], `"failures":7`) {
		t.Fatalf("log:\n%s\nwant one error line for the first episode and one recovery line", out.String())
	}
	if b.suppressed != 1 {
		t.Fatalf("suppressed episodes %d, want 1", b.suppressed)
	}
}
