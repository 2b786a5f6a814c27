// Package integration drives Skiff end to end with real Kafka clients over
// real sockets: the embedded server on port 0 for most tests, the built
// binary where a test must kill the process.
package integration

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/server"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// broker is a Skiff server started for one test.
type broker struct {
	*server.Server
	dir string
}

// startBroker starts an embedded Skiff on 127.0.0.1:0 in a fresh data dir
// (or dir, if given) with the given Kafka settings; it is closed when the
// test ends.
func startBroker(t testing.TB, settings map[string]string, dir ...string) *broker {
	t.Helper()
	d := t.TempDir()
	if len(dir) > 0 {
		d = dir[0]
	}
	var logOut io.Writer = io.Discard
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		logOut = zerolog.ConsoleWriter{Out: os.Stderr}
	}
	srv, err := server.New(server.Config{
		Listen:   "127.0.0.1:0",
		DataDir:  d,
		Settings: settings,
		Logger:   zerolog.New(logOut).With().Timestamp().Logger(),
	})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return &broker{Server: srv, dir: d}
}

// client returns a franz-go client for addr, closed at test end.
func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newAdmin(t testing.TB, addr string) *kadm.Client {
	return kadm.NewClient(newClient(t, addr))
}

// testContext is a context bounded by a generous deadline, so a broken
// broker fails the test instead of hanging it.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic and fails the test on any error.
func createTopic(t testing.TB, adm *kadm.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(testContext(t), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
