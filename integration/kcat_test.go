package integration

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kcatPath finds kcat, which .ci/run installs; a missing kcat is a failure,
// not a skip, so CI cannot pass without having run these checks.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not installed (apt-get install kcat; .ci/run does this): %v", err)
	}
	return p
}

func runKcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcatPath(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %v: %v\nstderr: %s", args, err, stderr.String())
	}
	return stdout.String()
}

// TestKcatMetadata lists the broker and a topic with kcat -L (librdkafka).
func TestKcatMetadata(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, newAdmin(t, b.Addr()), "kcat-meta", 3, nil)
	out := runKcat(t, "", "-b", b.Addr(), "-L")
	for _, want := range []string{"1 brokers:", "broker 0 at " + b.Addr(), `topic "kcat-meta" with 3 partitions`, "partition 2, leader 0, replicas: 0, isrs: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("kcat -L output lacks %q:\n%s", want, out)
		}
	}
}

// TestKcatProduceConsume produces keyed messages under each codec with kcat
// and reads them back with kcat, checking keys, values, headers and order.
func TestKcatProduceConsume(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			createTopic(t, adm, topic, 1, nil)
			var in strings.Builder
			for i := 0; i < 50; i++ {
				in.WriteString("k" + strconv.Itoa(i) + ":value-" + strconv.Itoa(i) + "\n")
			}
			runKcat(t, in.String(), "-b", b.Addr(), "-P", "-t", topic, "-K", ":", "-z", codec,
				"-H", "origin=kcat", "-X", "acks=all")
			out := runKcat(t, "", "-b", b.Addr(), "-C", "-t", topic, "-o", "beginning", "-e",
				"-f", "%k=%s@%o|%h\n")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 50 {
				t.Fatalf("kcat consumed %d records, want 50:\n%s", len(lines), out)
			}
			for i, l := range lines {
				want := "k" + strconv.Itoa(i) + "=value-" + strconv.Itoa(i) + "@" + strconv.Itoa(i) + "|origin=kcat"
				if l != want {
					t.Fatalf("record %d: got %q, want %q", i, l, want)
				}
			}
		})
	}
}
