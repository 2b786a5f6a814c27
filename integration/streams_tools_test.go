package integration

import (
	"strings"
	"testing"
	"time"
)

const toolStreamsGroups = "org.apache.kafka.tools.streams.StreamsGroupCommand"

// TestKafkaToolStreamsGroups: kafka-streams-groups (Kafka's
// StreamsGroupCommand) lists a streams group and describes its members and
// tasks through the admin client's StreamsGroupDescribe.
func TestKafkaToolStreamsGroups(t *testing.T) {
	mavenClasspath(t, "jvm/kafka") // skip under -short before starting anything
	b := startBroker(t, map[string]string{"group.streams.initial.rebalance.delay.ms": "0"})
	addr := b.Addr()
	createTopic(t, newAdmin(t, addr), "tool-src", 2, nil)
	m := &streamsMember{t: t, cl: streamsClient(t, addr), group: "tool-app", id: "tool-member", process: "tool-process", port: 9090}
	m.heartbeat(wordCountTopology("tool-app", "tool-src"))
	eventually(t, 30*time.Second, "the member's four tasks", func() bool {
		m.heartbeat(nil)
		return len(taskSet(m.active)) == 4
	})

	out := runTool(t, toolStreamsGroups, "--bootstrap-server", addr, "--list")
	if !strings.Contains(out, "tool-app") {
		t.Fatalf("kafka-streams-groups --list printed %q", out)
	}
	out = runTool(t, toolStreamsGroups, "--bootstrap-server", addr, "--describe", "--group", "tool-app", "--members", "--verbose")
	// One row: the member, its protocol, process and tasks.
	row := ""
	for _, l := range outputLines(out) {
		if strings.Contains(l, "tool-member") {
			row = l
		}
	}
	for _, want := range []string{"tool-app", "streams", "tool-process", "ACTIVE: 0:[0,1]; 1:[0,1];", "TARGET-ACTIVE: 0:[0,1]; 1:[0,1];"} {
		if !strings.Contains(row, want) {
			t.Errorf("kafka-streams-groups --describe --members: member row lacks %q:\n%s", want, out)
		}
	}
	out = runTool(t, toolStreamsGroups, "--bootstrap-server", addr, "--describe", "--group", "tool-app", "--state")
	if !strings.Contains(out, "Stable") {
		t.Errorf("kafka-streams-groups --describe --state printed:\n%s", out)
	}
	t.Logf("kafka-streams-groups --describe --state:\n%s", out)
}
