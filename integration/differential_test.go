package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The differential test: Apache Kafka 4.1 is the oracle. Each scenario
// sends the same raw kmsg requests, at the same pinned versions, to a real
// Kafka and to an embedded Skiff; the responses are compared field by
// field after normalising what legitimately differs (differential_compare_test.go).
// Every intended difference is listed with its reason in
// differential_known_test.go; any other difference fails the test.
//
// Scenarios live in differential_<family>_test.go, one list per API
// family. A scenario runs first against Kafka and then against Skiff, with
// the same topic, group and transactional ids (prefixed with its name), so
// that one Kafka serves every scenario.

// diffScenario is one exchange to run against both brokers. run returns
// what is compared: responses, or parts of them.
type diffScenario struct {
	name string
	run  func(c *diffConn) []any
}

// diffScenarioLists gathers every family's scenarios.
var diffScenarioLists [][]diffScenario

// diffTarget is one of the two brokers.
type diffTarget struct {
	name     string // "kafka" or "skiff"
	addr     string
	versions map[int16]int16 // version every request is sent at, by API key
	sent     map[int16]bool  // API keys the scenarios sent (the test's goroutine only)
	admin    *kadm.Client
}

// diffConn is one scenario's connection to one target.
type diffConn struct {
	t        *testing.T
	tgt      *diffTarget
	scenario string
	run      string // this run's id, in every name
	conn     net.Conn
	corr     int32
}

// do sends req at the pinned version for its API and returns the response.
func (c *diffConn) do(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	v, ok := c.tgt.versions[req.Key()]
	if !ok {
		c.t.Fatalf("%s: %s is not advertised by both brokers", c.tgt.name, kmsg.NameForKey(req.Key()))
	}
	return c.doAt(req, v)
}

// doAt sends req at version v, for scenarios that pin a version of their own.
func (c *diffConn) doAt(req kmsg.Request, v int16) kmsg.Response {
	c.t.Helper()
	req.SetVersion(v)
	if c.tgt.sent != nil {
		c.tgt.sent[req.Key()] = true
	}
	c.corr++
	return roundTrip(c.t, c.conn, req, c.corr)
}

// name is a topic, group or transactional id unique to the scenario and
// the same on both brokers.
func (c *diffConn) name(suffix string) string {
	n := "diff-" + c.run + "-" + c.scenario
	if suffix != "" {
		n += "-" + suffix
	}
	return n
}

// createTopic creates a topic through the admin client (not compared).
func (c *diffConn) createTopic(topic string, partitions int32, configs map[string]*string) {
	c.t.Helper()
	createTopic(c.t, c.tgt.admin, topic, partitions, configs)
	// Kafka's metadata cache catches up with its controller a moment
	// after CreateTopics answers.
	eventually(c.t, 30*time.Second, topic+" in "+c.tgt.name+"'s metadata", func() bool {
		td, err := c.tgt.admin.ListTopics(testContext(c.t), topic)
		if err != nil || td[topic].Err != nil || len(td[topic].Partitions) != int(partitions) {
			return false
		}
		for _, p := range td[topic].Partitions {
			if p.Leader < 0 {
				return false
			}
		}
		return true
	})
}

// produce writes values to one partition with an acks=all franz-go
// producer whose record timestamps are fixed, so that both brokers store
// the same bytes (not compared).
func (c *diffConn) produce(topic string, partition int32, values ...string) {
	c.t.Helper()
	cl := newClient(c.t, c.tgt.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.DisableIdempotentWrite())
	var rs []*kgo.Record
	for i, v := range values {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v),
			Timestamp: time.UnixMilli(diffBaseTimestamp + int64(i))})
	}
	if err := cl.ProduceSync(testContext(c.t), rs...).FirstErr(); err != nil {
		c.t.Fatalf("%s: produce to %s: %v", c.tgt.name, topic, err)
	}
}

// topicID returns the id the target gave topic.
func (c *diffConn) topicID(topic string) [16]byte {
	c.t.Helper()
	td, err := c.tgt.admin.ListTopics(testContext(c.t), topic)
	if err != nil || td[topic].Err != nil {
		c.t.Fatalf("%s: metadata for %s: %v %v", c.tgt.name, topic, err, td[topic].Err)
	}
	return td[topic].ID
}

// nodeID is the target's broker id.
func (c *diffConn) nodeID() int32 {
	c.t.Helper()
	md, err := c.tgt.admin.BrokerMetadata(testContext(c.t))
	if err != nil || len(md.Brokers) == 0 {
		c.t.Fatalf("%s: broker metadata: %v", c.tgt.name, err)
	}
	return md.Brokers[0].NodeID
}

// diffBaseTimestamp is the CreateTime of every record the scenarios write.
const diffBaseTimestamp = 1_700_000_000_000

func TestDifferential(t *testing.T) {
	var kafka *kafkaBroker
	if addr := os.Getenv("SKIFF_DIFF_KAFKA"); addr != "" {
		// A Kafka already running (started with diffKafkaSettings), to
		// iterate on scenarios without paying its start-up each time.
		kafka = &kafkaBroker{addr: addr}
	} else {
		kafka = startKafka(t, kafkaOptions{settings: diffKafkaSettings})
	}
	skiff := startBroker(t, diffSkiffSettings)
	targets := []*diffTarget{
		{name: "kafka", addr: kafka.addr, admin: newAdmin(t, kafka.addr)},
		{name: "skiff", addr: skiff.Addr(), admin: newAdmin(t, skiff.Addr())},
	}
	pinVersions(t, targets)
	for _, tgt := range targets {
		warmCoordinators(t, tgt)
	}

	var scenarios []diffScenario
	seen := map[string]bool{}
	for _, l := range diffScenarioLists {
		for _, s := range l {
			if seen[s.name] {
				t.Fatalf("two scenarios named %s", s.name)
			}
			seen[s.name] = true
			scenarios = append(scenarios, s)
		}
	}

	for _, tgt := range targets {
		tgt.sent = map[int16]bool{}
	}
	// Names carry a run id, so that a reused Kafka never holds a
	// scenario's topics from an earlier run.
	run := fmt.Sprintf("%06x", rand.IntN(1<<24))
	var identical, documented, failures int
	used, ran := map[string]bool{}, map[string]bool{}
	for _, s := range scenarios {
		var got [2][]any
		ok := t.Run(s.name, func(t *testing.T) {
			ran[s.name] = true
			for i, tgt := range targets {
				c := &diffConn{t: t, tgt: tgt, scenario: s.name, run: run, conn: dialRaw(t, tgt.addr)}
				got[i] = s.run(c)
				c.conn.Close()
			}
			diffs := compareResults(got[0], got[1])
			var undocumented []string
			for _, d := range diffs {
				// Paths name elements by identity: drop the run's name
				// prefix, so that documented paths are the same each run.
				d.path = strings.ReplaceAll(d.path, "diff-"+run+"-"+s.name+"-", "")
				if key, reason := knownDifference(s.name, d.path); reason != "" {
					used[key] = true
					t.Logf("documented: %s (%s)", d, reason)
				} else {
					undocumented = append(undocumented, d.String())
				}
			}
			switch {
			case len(undocumented) > 0:
				t.Errorf("%d undocumented difference(s) from Kafka:\n  %s", len(undocumented), strings.Join(undocumented, "\n  "))
			case len(diffs) > 0:
				documented++
			default:
				identical++
			}
		})
		if !ok {
			failures++
		}
	}
	for key := range diffKnown {
		if !used[key] && ran[strings.Fields(key)[0]] {
			t.Errorf("documented difference %q no longer occurs: remove it from differential_known_test.go", key)
		}
	}
	if len(ran) == len(scenarios) {
		checkAPICoverage(t, targets[1])
	}
	line := fmt.Sprintf("differential: %d scenarios, %d identical, %d documented differences, %d failures",
		len(ran), identical, documented, failures)
	t.Log(line)
	fmt.Println(line)
	// go test shows a passing package's output only with -v: `make unit`
	// prints the lines left in SKIFF_REPORT_DIR after the run.
	if dir := os.Getenv("SKIFF_REPORT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "differential.txt"), []byte(line+"\n"), 0o644)
		}
	}
}

// checkAPICoverage fails the test if an API Skiff advertises was sent by
// no scenario: every API Skiff implements is compared with Kafka.
func checkAPICoverage(t *testing.T, skiff *diffTarget) {
	var missing []string
	for key := range skiff.versions {
		if !skiff.sent[key] {
			missing = append(missing, kmsg.NameForKey(key))
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("no differential scenario sends %s: add one", strings.Join(missing, ", "))
	}
}

// Both brokers start a new group's first rebalance at once, so the group
// scenarios need not wait out the default 3s delay; both set
// log.retention.hours, so that configs from a static broker setting are
// compared too.
var (
	diffKafkaSettings = map[string]string{"group.initial.rebalance.delay.ms": "0", "log.retention.hours": "48"}
	diffSkiffSettings = map[string]string{"group.initial.rebalance.delay.ms": "0", "log.retention.hours": "48"}
)

// warmCoordinators waits until tgt's group and transaction coordinators
// answer. A fresh Kafka creates __consumer_offsets and __transaction_state
// on first use and answers COORDINATOR_NOT_AVAILABLE meanwhile: a start-up
// transient, not a difference in behaviour.
func warmCoordinators(t *testing.T, tgt *diffTarget) {
	c := &diffConn{t: t, tgt: tgt, scenario: "warm-up", conn: dialRaw(t, tgt.addr)}
	defer c.conn.Close()
	for _, typ := range []int8{0, 1} {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKeys = typ, []string{"diff-warm-up"}
		eventually(t, time.Minute, tgt.name+" coordinators to load", func() bool {
			resp := c.do(req).(*kmsg.FindCoordinatorResponse)
			return len(resp.Coordinators) == 1 && resp.Coordinators[0].ErrorCode == 0
		})
	}
	c.initProducerID("diff-warm-up", -1, -1)
}

// pinVersions sets each target's request versions: for every API both
// brokers advertise, the highest version both support and kmsg knows.
// Kafka 4.1's maximum is the aim; where Skiff's is lower the ApiVersions
// scenario shows it.
func pinVersions(t *testing.T, targets []*diffTarget) {
	maxes := make([]map[int16]int16, len(targets))
	for i, tgt := range targets {
		cl := newClient(t, tgt.addr)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
		cancel()
		if err != nil {
			t.Fatalf("%s: ApiVersions: %v", tgt.name, err)
		}
		maxes[i] = map[int16]int16{}
		for _, k := range resp.ApiKeys {
			maxes[i][k.ApiKey] = k.MaxVersion
		}
	}
	pinned := map[int16]int16{}
	for key, v := range maxes[0] {
		for _, m := range maxes[1:] {
			other, ok := m[key]
			if !ok {
				v = -1
				break
			}
			v = min(v, other)
		}
		req := kmsg.RequestForKey(key)
		if v < 0 || req == nil {
			continue
		}
		pinned[key] = min(v, req.MaxVersion())
	}
	for _, tgt := range targets {
		tgt.versions = pinned
	}
}
