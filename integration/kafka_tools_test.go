package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Apache Kafka's command-line tools (kafka-topics.sh and friends) run
// against Skiff from their main classes on the integration/jvm/kafka
// classpath, each with its output parsed and checked. The shell scripts
// in Kafka's tarball do nothing but pick these classes.

// The tools' main classes in Kafka 4.1: most moved to kafka-tools'
// org.apache.kafka.tools; ConfigCommand is still Scala in kafka_2.13.
const (
	toolTopics        = "org.apache.kafka.tools.TopicCommand"
	toolConfigs       = "kafka.admin.ConfigCommand"
	toolConsoleProd   = "org.apache.kafka.tools.ConsoleProducer"
	toolConsoleCons   = "org.apache.kafka.tools.consumer.ConsoleConsumer"
	toolGroups        = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
	toolGetOffsets    = "org.apache.kafka.tools.GetOffsetShell"
	toolDeleteRecords = "org.apache.kafka.tools.DeleteRecordsCommand"
	toolLogDirs       = "org.apache.kafka.tools.LogDirsCommand"
	toolTransactions  = "org.apache.kafka.tools.TransactionsCommand"
	toolFeatures      = "org.apache.kafka.tools.FeatureCommand"
	toolAPIVersions   = "org.apache.kafka.tools.BrokerApiVersionsCommand"
	toolQuorum        = "org.apache.kafka.tools.MetadataQuorumCommand"
	toolProducerPerf  = "org.apache.kafka.tools.ProducerPerformance"
	toolConsumerPerf  = "org.apache.kafka.tools.ConsumerPerformance"
)

// toolResult is what one tool invocation printed and how it exited.
type toolResult struct {
	stdout, stderr string
	err            error // nil on exit status 0
}

// execTool runs a tool's main class with stdin and returns its output.
// The JVM flags trade peak speed for start-up time: each tool runs for
// about a second, most of it class loading.
func execTool(t *testing.T, stdin, class string, args ...string) toolResult {
	t.Helper()
	cp := mavenClasspath(t, "jvm/kafka")
	// testContext bounds a hung tool; it is no timing assertion.
	ctx := testContext(t)
	jvmArgs := []string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto", "-Xmx256m", "-cp", cp, class}
	cmd := exec.CommandContext(ctx, javaBin(t), append(jvmArgs, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return toolResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// runTool runs a tool that must succeed and returns its standard output.
func runTool(t *testing.T, class string, args ...string) string {
	t.Helper()
	return runToolInput(t, "", class, args...)
}

// runToolInput is runTool with the given standard input.
func runToolInput(t *testing.T, stdin, class string, args ...string) string {
	t.Helper()
	r := execTool(t, stdin, class, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", class, strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

// outputLines splits tool output into its non-empty lines, right-trimmed.
func outputLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, " \t\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// produceValues writes values to one partition of topic and fails on error.
func produceValues(t *testing.T, cl *kgo.Client, topic string, partition int32, values ...string) {
	t.Helper()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)})
	}
	produceSync(t, cl, recs...)
}

// TestKafkaTools runs each of Kafka's command-line tools against one
// embedded Skiff, one subtest per tool.
func TestKafkaTools(t *testing.T) {
	mavenClasspath(t, "jvm/kafka") // skip under -short before starting anything
	// The console consumer and the perf consumer each join a new group;
	// Kafka's 3 s initial rebalance delay would only slow them down.
	b := startBroker(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	addr := b.Addr()
	prod := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))

	t.Run("topics", func(t *testing.T) { testToolTopics(t, addr) })
	t.Run("configs", func(t *testing.T) { testToolConfigs(t, addr) })
	t.Run("console", func(t *testing.T) { testToolConsole(t, addr) })
	t.Run("consumer-groups", func(t *testing.T) { testToolConsumerGroups(t, addr, prod) })
	t.Run("offsets-and-delete-records", func(t *testing.T) { testToolOffsets(t, addr, prod) })
	t.Run("log-dirs", func(t *testing.T) { testToolLogDirs(t, addr, b.dir, prod) })
	t.Run("transactions", func(t *testing.T) { testToolTransactions(t, addr, prod) })
	t.Run("features", func(t *testing.T) { testToolFeatures(t, addr) })
	t.Run("broker-api-versions", func(t *testing.T) { testToolAPIVersions(t, addr) })
	t.Run("metadata-quorum", func(t *testing.T) { testToolQuorum(t, addr) })
	t.Run("perf", func(t *testing.T) { testToolPerf(t, addr) })
}

// describedPartition is one partition line of kafka-topics --describe.
type describedPartition struct{ leader, replicas, isr string }

// parseTopicDescribe reads kafka-topics --describe output: the topic
// line's fields and the partition lines by partition index.
func parseTopicDescribe(t *testing.T, out string) (map[string]string, map[int]describedPartition) {
	t.Helper()
	head := map[string]string{}
	parts := map[int]describedPartition{}
	for _, l := range outputLines(out) {
		fields := map[string]string{}
		for _, f := range strings.Split(strings.TrimSpace(l), "\t") {
			k, v, _ := strings.Cut(f, ":")
			fields[k] = strings.TrimSpace(v)
		}
		if p, ok := fields["Partition"]; ok {
			i, err := strconv.Atoi(p)
			if err != nil {
				t.Fatalf("partition line %q: %v", l, err)
			}
			parts[i] = describedPartition{fields["Leader"], fields["Replicas"], fields["Isr"]}
		} else {
			head = fields
		}
	}
	return head, parts
}

func testToolTopics(t *testing.T, addr string) {
	const topic = "tools-topics"
	out := runTool(t, toolTopics, "--bootstrap-server", addr, "--create", "--topic", topic,
		"--partitions", "2", "--replication-factor", "1", "--config", "retention.ms=86400000")
	if !strings.Contains(out, "Created topic "+topic+".") {
		t.Fatalf("--create printed %q", out)
	}
	if l := outputLines(runTool(t, toolTopics, "--bootstrap-server", addr, "--list")); !slices.Contains(l, topic) {
		t.Fatalf("--list lacks %s: %q", topic, l)
	}
	runTool(t, toolTopics, "--bootstrap-server", addr, "--alter", "--topic", topic, "--partitions", "4")

	head, parts := parseTopicDescribe(t, runTool(t, toolTopics, "--bootstrap-server", addr, "--describe", "--topic", topic))
	adm := newAdmin(t, addr)
	details, err := adm.ListTopics(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	// Kafka prints topic ids in URL-safe base64 without padding.
	rawID := details[topic].ID
	id := base64.RawURLEncoding.EncodeToString(rawID[:])
	if head["Topic"] != topic || head["TopicId"] != id || head["PartitionCount"] != "4" ||
		head["ReplicationFactor"] != "1" || head["Configs"] != "retention.ms=86400000" {
		t.Errorf("--describe topic line %q, want %s, id %s, 4 partitions, RF 1, retention.ms=86400000", head, topic, id)
	}
	if len(parts) != 4 {
		t.Errorf("--describe shows partitions %v, want 0-3", parts)
	}
	for i := 0; i < 4; i++ {
		if p := parts[i]; p != (describedPartition{"0", "0", "0"}) {
			t.Errorf("partition %d: leader %q replicas %q isr %q, want node 0 in each", i, p.leader, p.replicas, p.isr)
		}
	}

	runTool(t, toolTopics, "--bootstrap-server", addr, "--delete", "--topic", topic)
	eventually(t, 30*time.Second, "the deleted topic to go", func() bool {
		d, err := adm.ListTopics(testContext(t))
		return err == nil && !d.Has(topic)
	})
}

// toolConfigLine matches one config of kafka-configs --describe:
// "  name=value sensitive=false synonyms={SOURCE:name=value, ...}".
var toolConfigLine = regexp.MustCompile(`^\s+([a-z0-9.]+)=(.*) sensitive=(true|false) synonyms=\{(.*)\}$`)

// parseToolConfigs reads kafka-configs --describe output into name -> the
// value and the synonyms text.
func parseToolConfigs(t *testing.T, out string) (header string, configs map[string][2]string) {
	t.Helper()
	configs = map[string][2]string{}
	for _, l := range outputLines(out) {
		if m := toolConfigLine.FindStringSubmatch(l); m != nil {
			configs[m[1]] = [2]string{m[2], m[4]}
		} else if header == "" {
			header = l
		} else {
			t.Fatalf("unexpected kafka-configs line %q", l)
		}
	}
	return header, configs
}

func testToolConfigs(t *testing.T, addr string) {
	const topic = "tools-configs"
	createTopic(t, newAdmin(t, addr), topic, 1, nil)
	out := runTool(t, toolConfigs, "--bootstrap-server", addr, "--entity-type", "topics", "--entity-name", topic,
		"--alter", "--add-config", "retention.ms=3600000,cleanup.policy=compact")
	if !strings.Contains(out, "Completed updating config for topic "+topic+".") {
		t.Fatalf("--alter printed %q", out)
	}
	header, cfgs := parseToolConfigs(t, runTool(t, toolConfigs, "--bootstrap-server", addr,
		"--entity-type", "topics", "--entity-name", topic, "--describe"))
	if header != "Dynamic configs for topic "+topic+" are:" {
		t.Errorf("topic --describe header %q", header)
	}
	want := map[string][2]string{
		"retention.ms":   {"3600000", "DYNAMIC_TOPIC_CONFIG:retention.ms=3600000, DEFAULT_CONFIG:log.retention.hours=168"},
		"cleanup.policy": {"compact", "DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact, DEFAULT_CONFIG:log.cleanup.policy=delete"},
	}
	if fmt.Sprint(cfgs) != fmt.Sprint(want) {
		t.Errorf("topic --describe:\n got %v\nwant %v", cfgs, want)
	}

	header, cfgs = parseToolConfigs(t, runTool(t, toolConfigs, "--bootstrap-server", addr,
		"--entity-type", "brokers", "--entity-name", "0", "--describe", "--all"))
	if header != "All configs for broker 0 are:" {
		t.Errorf("broker --describe --all header %q", header)
	}
	if got := cfgs["log.retention.hours"]; got != [2]string{"168", "DEFAULT_CONFIG:log.retention.hours=168"} {
		t.Errorf("broker log.retention.hours: %q", got)
	}
	if got := cfgs["advertised.listeners"]; got[0] != "PLAINTEXT://"+addr {
		t.Errorf("broker advertised.listeners: %q, want PLAINTEXT://%s", got, addr)
	}

	// Client quotas: the tool reads the existing quotas before it alters
	// them, so both invocations go through DescribeClientQuotas.
	out = runTool(t, toolConfigs, "--bootstrap-server", addr, "--entity-type", "clients", "--entity-name", "tools-client",
		"--alter", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048")
	if !strings.Contains(out, "Completed updating config for client tools-client.") {
		t.Errorf("clients --alter printed %q", out)
	}
	out = runTool(t, toolConfigs, "--bootstrap-server", addr, "--entity-type", "clients", "--entity-name", "tools-client", "--describe")
	if want := "Quota configs for client-id 'tools-client' are consumer_byte_rate=2048.0, producer_byte_rate=1024.0"; !slices.Contains(outputLines(out), want) {
		t.Errorf("clients --describe printed %q, want %q", out, want)
	}

	// Skiff refuses dynamic broker configs; the tool must show Kafka's
	// answer for a config it cannot change (INVALID_REQUEST, as Kafka 4.1
	// gives in the differential test) and exit 1.
	r := execTool(t, "", toolConfigs, "--bootstrap-server", addr, "--entity-type", "brokers", "--entity-name", "0",
		"--alter", "--add-config", "log.retention.ms=1000")
	var exit *exec.ExitError
	if !errors.As(r.err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("broker --alter: exit %v, want status 1", r.err)
	}
	if !strings.Contains(r.stderr, "Error while executing config command with args '--bootstrap-server") ||
		!strings.Contains(r.stderr, "org.apache.kafka.common.errors.InvalidRequestException: Cannot update these configs dynamically: Set(log.retention.ms)") {
		t.Errorf("broker --alter printed\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

func testToolConsole(t *testing.T, addr string) {
	const topic = "tools-console"
	createTopic(t, newAdmin(t, addr), topic, 1, nil)
	runToolInput(t, "k1:v1\nk2:v2\n:v3\n", toolConsoleProd, "--bootstrap-server", addr, "--topic", topic,
		"--property", "parse.key=true", "--property", "key.separator=:")
	// More records than --max-messages, so the consumer stops on the count.
	runToolInput(t, "k4:v4\n", toolConsoleProd, "--bootstrap-server", addr, "--topic", topic,
		"--property", "parse.key=true", "--property", "key.separator=:")

	r := execTool(t, "", toolConsoleCons, "--bootstrap-server", addr, "--topic", topic, "--from-beginning",
		"--max-messages", "3", "--property", "print.key=true", "--property", "key.separator==",
		"--group", "tools-console-group")
	if r.err != nil {
		t.Fatalf("console consumer: %v\n%s\n%s", r.err, r.stdout, r.stderr)
	}
	// An empty key is parsed as an empty key, not null.
	if got, want := outputLines(r.stdout), []string{"k1=v1", "k2=v2", "=v3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("console consumer printed %q, want %q", got, want)
	}
	if !strings.Contains(r.stderr, "Processed a total of 3 messages") {
		t.Errorf("console consumer stderr: %s", r.stderr)
	}
	// The consumer committed where it stopped.
	offs, err := newAdmin(t, addr).FetchOffsets(testContext(t), "tools-console-group")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup(topic, 0); o.At != 3 {
		t.Errorf("tools-console-group committed %d, want 3", o.At)
	}
}

// parseGroupTable reads a kafka-consumer-groups table, --describe's or
// --reset-offsets', into its header and, by partition, the columns after
// PARTITION.
func parseGroupTable(t *testing.T, out, group, topic string) (header []string, rows map[int32][]string) {
	t.Helper()
	rows = map[int32][]string{}
	for _, l := range outputLines(out) {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "GROUP" {
			header = f
			continue
		}
		if len(f) < 4 || f[0] != group || f[1] != topic {
			continue
		}
		p, err := strconv.Atoi(f[2])
		if err != nil {
			t.Fatalf("row %q: %v", l, err)
		}
		rows[int32(p)] = f[3:]
	}
	return header, rows
}

func testToolConsumerGroups(t *testing.T, addr string, prod *kgo.Client) {
	const topic, group = "tools-groups", "tools-group"
	adm := newAdmin(t, addr)
	createTopic(t, adm, topic, 2, nil)
	produceValues(t, prod, topic, 0, "a", "b", "c", "d", "e")
	produceValues(t, prod, topic, 1, "f", "g")
	// A group with committed offsets and no members, as a stopped consumer
	// leaves it: 2 of 5 consumed on partition 0, 1 of 2 on partition 1.
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = group, -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = topic
	for p, off := range []int64{2, 1} {
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset = int32(p), off
		ct.Partitions = append(ct.Partitions, cp)
	}
	commit.Topics = append(commit.Topics, ct)
	resp, err := commit.RequestWith(testContext(t), newClient(t, addr))
	if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[0].Partitions[1].ErrorCode != 0 {
		t.Fatalf("commit offsets: %v %+v", err, resp)
	}

	if l := outputLines(runTool(t, toolGroups, "--bootstrap-server", addr, "--list")); !slices.Contains(l, group) {
		t.Fatalf("--list lacks %s: %q", group, l)
	}
	describe := func() map[int32][]string {
		t.Helper()
		r := execTool(t, "", toolGroups, "--bootstrap-server", addr, "--describe", "--group", group)
		if r.err != nil {
			t.Fatalf("--describe: %v\n%s\n%s", r.err, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "Consumer group '"+group+"' has no active members.") {
			t.Errorf("--describe of a memberless group printed to stderr %q", r.stderr)
		}
		header, rows := parseGroupTable(t, r.stdout, group, topic)
		if want := "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID"; strings.Join(header, " ") != want {
			t.Errorf("--describe header %q, want %q", header, want)
		}
		return rows
	}
	// CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID.
	if rows, want := describe(), map[int32][]string{0: {"2", "5", "3", "-", "-", "-"}, 1: {"1", "2", "1", "-", "-", "-"}}; fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("--describe rows %v, want %v", rows, want)
	}

	// Earliest is not 0 on partition 0, so the reset cannot pass by
	// writing zeros.
	var start kadm.Offsets
	start.AddOffset(topic, 0, 1, -1)
	if dr, err := adm.DeleteRecords(testContext(t), start); err != nil || dr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, dr.Error())
	}
	// A date before every record: the first offset still there, which a
	// dry run shows without committing.
	out := runTool(t, toolGroups, "--bootstrap-server", addr, "--reset-offsets", "--to-datetime", "2020-01-01T00:00:00.000",
		"--dry-run", "--group", group, "--topic", topic)
	if _, rows := parseGroupTable(t, out, group, topic); fmt.Sprint(rows) != fmt.Sprint(map[int32][]string{0: {"1"}, 1: {"0"}}) {
		t.Errorf("--reset-offsets --to-datetime --dry-run printed %v, want new offsets 1 and 0", rows)
	}
	out = runTool(t, toolGroups, "--bootstrap-server", addr, "--reset-offsets", "--to-earliest", "--execute",
		"--group", group, "--topic", topic)
	header, rows := parseGroupTable(t, out, group, topic)
	if strings.Join(header, " ") != "GROUP TOPIC PARTITION NEW-OFFSET" ||
		fmt.Sprint(rows) != fmt.Sprint(map[int32][]string{0: {"1"}, 1: {"0"}}) {
		t.Errorf("--reset-offsets printed %q %v, want new offsets 1 and 0", header, rows)
	}
	if rows, want := describe(), map[int32][]string{0: {"1", "5", "4", "-", "-", "-"}, 1: {"0", "2", "2", "-", "-", "-"}}; fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("--describe after reset: rows %v, want %v", rows, want)
	}

	out = runTool(t, toolGroups, "--bootstrap-server", addr, "--delete", "--group", group)
	if !strings.Contains(out, "Deletion of requested consumer groups ('"+group+"') was successful.") {
		t.Errorf("--delete printed %q", out)
	}
	listed, err := adm.ListGroups(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed[group]; ok {
		t.Errorf("group %s still listed after --delete", group)
	}
}

// parseGetOffsets reads kafka-get-offsets lines, topic:partition:offset.
func parseGetOffsets(t *testing.T, out, topic string) map[int32]int64 {
	t.Helper()
	got := map[int32]int64{}
	for _, l := range outputLines(out) {
		f := strings.Split(l, ":")
		if len(f) != 3 || f[0] != topic {
			t.Fatalf("kafka-get-offsets line %q", l)
		}
		p, err1 := strconv.Atoi(f[1])
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("kafka-get-offsets line %q", l)
		}
		got[int32(p)] = o
	}
	return got
}

func testToolOffsets(t *testing.T, addr string, prod *kgo.Client) {
	const topic = "tools-offsets"
	createTopic(t, newAdmin(t, addr), topic, 2, nil)
	produceValues(t, prod, topic, 0, "a", "b", "c", "d")
	produceValues(t, prod, topic, 1, "e", "f")

	got := parseGetOffsets(t, runTool(t, toolGetOffsets, "--bootstrap-server", addr, "--topic", topic), topic)
	if want := map[int32]int64{0: 4, 1: 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("kafka-get-offsets (latest): %v, want %v", got, want)
	}

	file := filepath.Join(t.TempDir(), "offsets.json")
	spec := `{"version":1,"partitions":[{"topic":"` + topic + `","partition":0,"offset":3}]}`
	if err := os.WriteFile(file, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runTool(t, toolDeleteRecords, "--bootstrap-server", addr, "--offset-json-file", file)
	if !slices.Contains(outputLines(out), "partition: "+topic+"-0\tlow_watermark: 3") {
		t.Errorf("kafka-delete-records printed %q", out)
	}

	got = parseGetOffsets(t, runTool(t, toolGetOffsets, "--bootstrap-server", addr, "--topic", topic, "--time", "earliest"), topic)
	if want := map[int32]int64{0: 3, 1: 0}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("kafka-get-offsets --time earliest after delete-records: %v, want %v", got, want)
	}
}

// logDirsOutput is kafka-log-dirs --describe's JSON.
type logDirsOutput struct {
	Version int `json:"version"`
	Brokers []struct {
		Broker  int `json:"broker"`
		LogDirs []struct {
			LogDir     string  `json:"logDir"`
			Error      *string `json:"error"`
			Partitions []struct {
				Partition string `json:"partition"`
				Size      int64  `json:"size"`
				OffsetLag int64  `json:"offsetLag"`
				IsFuture  bool   `json:"isFuture"`
			} `json:"partitions"`
		} `json:"logDirs"`
	} `json:"brokers"`
}

func testToolLogDirs(t *testing.T, addr, dataDir string, prod *kgo.Client) {
	const topic = "tools-logdirs"
	createTopic(t, newAdmin(t, addr), topic, 2, nil)
	produceValues(t, prod, topic, 0, "one", "two")

	out := runTool(t, toolLogDirs, "--bootstrap-server", addr, "--describe", "--topic-list", topic)
	ls := outputLines(out)
	if len(ls) == 0 || !strings.HasPrefix(ls[len(ls)-1], "{") {
		t.Fatalf("kafka-log-dirs printed no JSON: %q", out)
	}
	var got logDirsOutput
	if err := json.Unmarshal([]byte(ls[len(ls)-1]), &got); err != nil {
		t.Fatalf("kafka-log-dirs JSON: %v\n%s", err, out)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || len(got.Brokers) != 1 || got.Brokers[0].Broker != 0 || len(got.Brokers[0].LogDirs) != 1 {
		t.Fatalf("kafka-log-dirs: %+v, want broker 0 with one log dir", got)
	}
	dir := got.Brokers[0].LogDirs[0]
	if dir.LogDir != abs || dir.Error != nil || len(dir.Partitions) != 2 {
		t.Fatalf("kafka-log-dirs log dir %+v, want %s, no error, 2 partitions", dir, abs)
	}
	sizes := map[string]int64{}
	for _, p := range dir.Partitions {
		if p.OffsetLag != 0 || p.IsFuture {
			t.Errorf("partition %+v: want offsetLag 0, not future", p)
		}
		sizes[p.Partition] = p.Size
	}
	// Partition 0 holds one batch of two records, partition 1 nothing.
	if sizes[topic+"-0"] <= 0 || sizes[topic+"-1"] != 0 {
		t.Errorf("kafka-log-dirs sizes %v, want %s-0 > 0 and %s-1 = 0", sizes, topic, topic)
	}
}

// parseToolTable reads a tab-separated table with a header line (the
// output of kafka-transactions) into one map per row.
func parseToolTable(t *testing.T, out string) []map[string]string {
	t.Helper()
	ls := outputLines(out)
	if len(ls) == 0 {
		t.Fatalf("empty table")
	}
	header := strings.Split(ls[0], "\t")
	var rows []map[string]string
	for _, l := range ls[1:] {
		row := map[string]string{}
		for i, v := range strings.Split(l, "\t") {
			if i < len(header) {
				row[strings.TrimSpace(header[i])] = strings.TrimSpace(v)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func testToolTransactions(t *testing.T, addr string, prod *kgo.Client) {
	const topic, txnID = "tools-txn", "tools-txn-id"
	createTopic(t, newAdmin(t, addr), topic, 1, nil)
	// A transaction left open, as by a producer that hung: one record at
	// offset 0 and no marker.
	cl := txnClient(t, addr, txnID)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceValues(t, cl, topic, 0, "hanging")
	if lso := partitionEndOffset(t, addr, topic, true); lso != 0 {
		t.Fatalf("last stable offset %d with the transaction open, want 0", lso)
	}

	var pid string
	for _, row := range parseToolTable(t, runTool(t, toolTransactions, "--bootstrap-server", addr, "list")) {
		if row["TransactionalId"] == txnID {
			if row["Coordinator"] != "0" || row["TransactionState"] != "Ongoing" {
				t.Errorf("list row %v, want coordinator 0, Ongoing", row)
			}
			pid = row["ProducerId"]
		}
	}
	if pid == "" {
		t.Fatalf("kafka-transactions list lacks %s", txnID)
	}

	rows := parseToolTable(t, runTool(t, toolTransactions, "--bootstrap-server", addr, "describe", "--transactional-id", txnID))
	if len(rows) != 1 {
		t.Fatalf("describe printed %d rows, want 1", len(rows))
	}
	row := rows[0]
	if row["CoordinatorId"] != "0" || row["TransactionalId"] != txnID || row["ProducerId"] != pid ||
		row["TransactionState"] != "Ongoing" || row["TopicPartitions"] != topic+"-0" {
		t.Errorf("describe row %v, want coordinator 0, %s, producer %s, Ongoing, %s-0", row, txnID, pid, topic)
	}

	// Abort it from the partition's side, as an operator does with a
	// hanging transaction: the tool finds the producer by the
	// transaction's first offset (DescribeProducers) and writes the abort
	// marker (WriteTxnMarkers).
	runTool(t, toolTransactions, "--bootstrap-server", addr, "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
	if lso := partitionEndOffset(t, addr, topic, true); lso != 2 {
		t.Errorf("last stable offset %d after abort, want 2 (the record and the abort marker)", lso)
	}
	// A record after the marker ends the read quickly; it is all a
	// read_committed reader may see.
	produceValues(t, prod, topic, 0, "after")
	if got := valuesUpTo(t, addr, topic, 3, true); fmt.Sprint(got) != "[after]" {
		t.Errorf("read_committed reads %q after the abort, want [after]", got)
	}
}

func testToolFeatures(t *testing.T, addr string) {
	// Kafka 4.1.2's kafka-features describe prints one tab-separated line
	// per supported feature, sorted by name, metadata.version by release
	// name (level 27 is 4.1-IV1); a feature at level 0 shows level 0.
	// Skiff lists the features it implements (server/features.go).
	out := runTool(t, toolFeatures, "--bootstrap-server", addr, "describe")
	got := outputLines(out)
	var epoch string
	for i, l := range got {
		fields := strings.Split(l, "\t")
		if len(fields) != 5 || !strings.HasPrefix(fields[4], "Epoch: ") {
			t.Fatalf("kafka-features line %q", l)
		}
		if i == 0 {
			epoch = fields[4]
		}
		got[i] = strings.Join(fields[:4], "\t")
		if fields[4] != epoch || epoch == "Epoch: -1" {
			t.Errorf("kafka-features epochs %q and %q; want one finalized epoch", epoch, fields[4])
		}
	}
	want := []string{
		"Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 1",
		"Feature: metadata.version\tSupportedMinVersion: 4.1-IV1\tSupportedMaxVersion: 4.1-IV1\tFinalizedVersionLevel: 4.1-IV1",
		"Feature: share.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 1",
		"Feature: streams.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 1",
		"Feature: transaction.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 2\tFinalizedVersionLevel: 2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("kafka-features describe printed\n%s\nwant (epochs aside)\n%s", out, strings.Join(want, "\n"))
	}

	// A dry-run downgrade is validated by the broker and changes nothing;
	// an unknown feature is refused with Kafka's message.
	if out := runTool(t, toolFeatures, "--bootstrap-server", addr, "downgrade", "--feature", "transaction.version=1", "--dry-run"); strings.TrimSpace(out) != "transaction.version can be downgraded to 1." {
		t.Errorf("kafka-features downgrade --dry-run printed %q", out)
	}
	r := execTool(t, "", toolFeatures, "--bootstrap-server", addr, "upgrade", "--feature", "foo.version=1")
	if !strings.Contains(r.stdout+r.stderr, "Could not upgrade foo.version to 1. The update failed for all features since the following feature had an error: Invalid update version 1 for feature foo.version. Local controller 0 does not support this feature.") {
		t.Errorf("kafka-features upgrade of an unknown feature: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
}

// toolAPIVersionLine matches one API of kafka-broker-api-versions:
// "\tProduce(0): 0 to 13 [usable: 13]," or "\tOffsetDelete(47): 0 [usable: 0],"
// or "\tSaslHandshake(17): UNSUPPORTED,".
var toolAPIVersionLine = regexp.MustCompile(`^\t\w+\((\d+)\): (?:(\d+)(?: to (\d+))? \[usable: \d+\]|UNSUPPORTED),?$`)

func testToolAPIVersions(t *testing.T, addr string) {
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(testContext(t), newClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	advertised := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		advertised[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}

	out := runTool(t, toolAPIVersions, "--bootstrap-server", addr)
	ls := outputLines(out)
	if len(ls) < 3 || ls[0] != addr+" (id: 0 rack: null isFenced: false) -> (" || ls[len(ls)-1] != ")" {
		t.Fatalf("kafka-broker-api-versions printed %q", out)
	}
	shown := map[int16]bool{}
	for _, l := range ls[1 : len(ls)-1] {
		m := toolAPIVersionLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("unexpected line %q", l)
			continue
		}
		key, _ := strconv.Atoi(m[1])
		shown[int16(key)] = true
		adv, ok := advertised[int16(key)]
		switch {
		case m[2] == "" && ok:
			t.Errorf("%s: the tool says UNSUPPORTED, Skiff advertises %d-%d", l, adv[0], adv[1])
		case m[2] == "":
		case !ok:
			t.Errorf("%s: Skiff does not advertise API %d", l, key)
		default:
			min, max := m[2], m[3]
			if max == "" {
				max = min
			}
			if min != strconv.Itoa(int(adv[0])) || max != strconv.Itoa(int(adv[1])) {
				t.Errorf("%s: Skiff advertises %d to %d", l, adv[0], adv[1])
			}
		}
	}
	// Skiff advertises Kafka 4.1's table, so the 4.1 tool knows every API
	// it advertises; one it does not list is an API Kafka 4.1 lacks.
	for key := range advertised {
		if !shown[key] {
			t.Errorf("API %d (%s) advertised by Skiff is missing from the tool's list", key, kmsg.NameForKey(key))
		}
	}
}

func testToolQuorum(t *testing.T, addr string) {
	out := runTool(t, toolQuorum, "--bootstrap-server", addr, "describe", "--status")
	got := map[string]string{}
	for _, l := range outputLines(out) {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("kafka-metadata-quorum line %q", l)
		}
		got[k] = strings.TrimSpace(v)
	}
	meta, err := newAdmin(t, addr).Metadata(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ClusterId":            meta.Cluster,
		"LeaderId":             "0",
		"LeaderEpoch":          "1",
		"HighWatermark":        "-1",
		"MaxFollowerLag":       "0",
		"MaxFollowerLagTimeMs": "0",
		"CurrentVoters":        `[{"id": 0, "endpoints": ["PLAINTEXT://` + addr + `"]}]`,
		"CurrentObservers":     "[]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("kafka-metadata-quorum describe --status:\n got %v\nwant %v", got, want)
	}
}

func testToolPerf(t *testing.T, addr string) {
	const topic, n = "tools-perf", 2000
	createTopic(t, newAdmin(t, addr), topic, 2, nil)
	out := runTool(t, toolProducerPerf, "--topic", topic, "--num-records", strconv.Itoa(n), "--record-size", "100",
		"--throughput", "-1", "--producer-props", "bootstrap.servers="+addr, "acks=all")
	ls := outputLines(out)
	// The last line is the total: "2000 records sent, ... records/sec ...".
	if len(ls) == 0 || !strings.HasPrefix(ls[len(ls)-1], strconv.Itoa(n)+" records sent, ") {
		t.Fatalf("kafka-producer-perf-test printed %q", out)
	}
	ends, err := newAdmin(t, addr).ListEndOffsets(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != n {
		t.Errorf("the topic holds %d records after the producer perf test, want %d", total, n)
	}

	out = runTool(t, toolConsumerPerf, "--bootstrap-server", addr, "--topic", topic, "--messages", strconv.Itoa(n))
	ls = outputLines(out)
	if len(ls) != 2 {
		t.Fatalf("kafka-consumer-perf-test printed %q, want a header and one row", out)
	}
	header, row := strings.Split(ls[0], ", "), strings.Split(ls[1], ", ")
	if len(header) != len(row) {
		t.Fatalf("kafka-consumer-perf-test header %q, row %q", ls[0], ls[1])
	}
	cols := map[string]string{}
	for i, h := range header {
		cols[h] = row[i]
	}
	if cols["data.consumed.in.nMsg"] != strconv.Itoa(n) {
		t.Errorf("kafka-consumer-perf-test consumed %q records, want %d (%v)", cols["data.consumed.in.nMsg"], n, cols)
	}
	if mb, want := cols["data.consumed.in.MB"], fmt.Sprintf("%.4f", float64(n*100)/(1024*1024)); mb != want {
		t.Errorf("kafka-consumer-perf-test consumed %s MB, want %s", mb, want)
	}
}
