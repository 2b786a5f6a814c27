// Package integration drives Skiff end to end with real Kafka clients over
// real sockets: the embedded server on port 0 for most tests, the built
// binary where a test must kill the process.
package integration

import (
	"context"
	"testing"
	"time"

	"github.com/skiffmq/skiff/server"
	"github.com/skiffmq/skiff/skifftest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// broker is a Skiff server started for one test.
type broker struct {
	*server.Server
	dir string
}

// startBroker starts an embedded Skiff (skifftest) on 127.0.0.1:0 in a
// fresh data dir on disk (or dir, if given) with the given Kafka settings
// and Kafka's production defaults, which these tests pin down; it is
// closed when the test ends. On disk, not in memory: these tests restart
// brokers on their data, look at segment files and exercise sendfile.
func startBroker(t testing.TB, settings map[string]string, dir ...string) *broker {
	t.Helper()
	d := t.TempDir()
	if len(dir) > 0 {
		d = dir[0]
	}
	opts := []skifftest.Option{skifftest.Settings(settings), skifftest.Profile(server.ProfileProduction), skifftest.DataDir(d)}
	b := skifftest.New(t, opts...)
	return &broker{Server: b.Server(), dir: b.DataDir()}
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
