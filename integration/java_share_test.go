package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runShareScenario runs one phase of jvm/share/ShareScenario.java, a
// KafkaShareConsumer (kafka-clients 4.4) with explicit acknowledgement,
// and returns the lines it printed.
func runShareScenario(t *testing.T, cp, addr, topic, group, phase, lockMs string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, javaBin(t), "-cp", cp, "jvm/share/ShareScenario.java", addr, topic, group, phase, lockMs)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ShareScenario %s: %v\n%s", phase, err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "RECORD ") || strings.HasPrefix(l, "COMMIT ") || l == "EMPTY" {
			lines = append(lines, l)
		}
	}
	t.Logf("ShareScenario %s:\n%s", phase, out)
	return lines
}

// TestJavaShareConsumerAcknowledgeRedeliverArchiveRestart: Kafka's own
// KafkaShareConsumer with explicit acknowledgement. A lock that expires
// before the ACCEPT makes the ACCEPT fail and the records come again with
// delivery count 2; ACCEPT, RELEASE and REJECT then apply; after a broker
// restart only the released record comes back, with its count kept, and
// releasing it at the delivery limit archives it.
func TestJavaShareConsumerAcknowledgeRedeliverArchiveRestart(t *testing.T) {
	cp := mavenClasspath(t, "jvm/share")
	const lockMs = "1000"
	settings := map[string]string{
		"group.share.record.lock.duration.ms": lockMs,
		"group.share.delivery.count.limit":    "3",
	}
	b := startBroker(t, settings)
	adm := newAdmin(t, b.Addr())
	const topic, group = "java-share", "java-share-group"
	createTopic(t, adm, topic, 1, nil)
	produceN(t, b.Addr(), topic, 0, 5, time.Now())
	cl := newClient(t, b.Addr())
	setShareGroupConfig(t, cl, group, "share.auto.offset.reset", "earliest")

	got := runShareScenario(t, cp, b.Addr(), topic, group, "before", lockMs)
	want := []string{
		"RECORD 0 1", "RECORD 1 1", "RECORD 2 1", "RECORD 3 1", "RECORD 4 1",
		"COMMIT InvalidRecordStateException", // the lock had expired
		"RECORD 0 2", "RECORD 1 2", "RECORD 2 2", "RECORD 3 2", "RECORD 4 2",
		"COMMIT ok",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("before restart:\n got %q\nwant %q", got, want)
	}
	if spso := shareStartOffset(t, cl, group, topic); spso != 1 {
		t.Fatalf("SPSO %d, want 1", spso)
	}

	b.Close()
	b = startBroker(t, settings, b.dir)
	got = runShareScenario(t, cp, b.Addr(), topic, group, "after", lockMs)
	want = []string{"RECORD 1 3", "COMMIT ok", "EMPTY"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after restart:\n got %q\nwant %q", got, want)
	}
	if spso := shareStartOffset(t, newClient(t, b.Addr()), group, topic); spso != 5 {
		t.Fatalf("SPSO %d after archiving offset 1, want 5", spso)
	}
}
