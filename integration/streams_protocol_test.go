package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// streamsProtocolVersion is the Kafka Streams release run with
// group.protocol=streams: KIP-1071 groups are production-ready from 4.2.
const streamsProtocolVersion = "4.4.0"

// TestKafkaStreamsGroupProtocol runs two instances of the exactly-once
// word count (integration/jvm/clients WordCount) with
// group.protocol=streams against Skiff: the broker validates their
// topology, creates the repartition and changelog topics, and splits the
// eight tasks between the two processes; then one instance is killed and,
// once its session (group.streams.session.timeout.ms, 6 s here) expires,
// the other runs every task. A read_committed reader must see, for every
// word, the counts 1, 2, ..., n with no gap and no repeat, across the
// rebalance, and the group must have committed the input's end offsets.
func TestKafkaStreamsGroupProtocol(t *testing.T) {
	cp := streamsClasspath(t, streamsProtocolVersion)
	settings := javaSettings()
	settings["group.streams.session.timeout.ms"] = "6000"
	settings["group.streams.heartbeat.interval.ms"] = "1000"
	b := startBroker(t, settings)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, streamsIn, 4, nil)
	createTopic(t, adm, streamsOut, 2, nil)
	src := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	want := map[string]int64{}
	produceLines := func(from, to int) {
		recs := make([]*kgo.Record, 0, to-from)
		for i := from; i < to; i++ {
			words := streamsLine(i)
			for _, w := range words {
				want[w]++
			}
			recs = append(recs, &kgo.Record{Topic: streamsIn, Value: []byte(strings.Join(words, " "))})
		}
		produceSync(t, src, recs...)
	}
	start := func(name string) *eosWorker {
		args := []string{javaBin(t), "-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", cp,
			"dev.skiff.clients.WordCount", b.Addr(), streamsApp, streamsIn, streamsOut, t.TempDir(), "streams"}
		return startEOSWorker(t, name, nil, args...)
	}

	produceLines(0, streamsLines)
	first, second := start("wordcount-a"), start("wordcount-b")
	sc := streamsClient(t, b.Addr())
	describe := func() kmsg.StreamsGroupDescribeResponseGroup {
		req := kmsg.NewPtrStreamsGroupDescribeRequest()
		req.Groups = []string{streamsApp}
		resp, err := req.RequestWith(testContext(t), sc)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Groups[0]
	}
	activeCounts := func(g kmsg.StreamsGroupDescribeResponseGroup) []int {
		var out []int
		for _, m := range g.Members {
			out = append(out, len(taskSet(m.Assignment.ActiveTasks)))
		}
		return out
	}
	// Two subtopologies of four partitions: eight tasks, four each.
	eventually(t, 3*time.Minute, "both instances running four tasks each", func() bool {
		for _, w := range []*eosWorker{first, second} {
			select {
			case <-w.done:
				t.Fatalf("WordCount %s exited:\n%s", w.name, w.stderr.String())
			default:
			}
		}
		g := describe()
		return g.ErrorCode == 0 && g.State == "Stable" && fmt.Sprint(activeCounts(g)) == "[4 4]"
	})
	g := describe()
	t.Logf("streams group %s: epoch %d, members %d, active tasks %v", streamsApp, g.Epoch, len(g.Members), activeCounts(g))
	for _, topic := range []string{streamsApp + "-words-repartition", streamsApp + "-counts-changelog"} {
		td, err := adm.ListTopics(testContext(t), topic)
		if err != nil || td[topic].Err != nil || len(td[topic].Partitions) != 4 {
			t.Fatalf("internal topic %s: %+v %v", topic, td[topic], err)
		}
	}
	awaitWordCounts(t, b.Addr(), want, first, second)

	first.kill(t)
	produceLines(streamsLines, 2*streamsLines)
	eventually(t, 3*time.Minute, "the surviving instance running all eight tasks", func() bool {
		g := describe()
		return g.ErrorCode == 0 && g.State == "Stable" && fmt.Sprint(activeCounts(g)) == "[8]"
	})
	awaitWordCounts(t, b.Addr(), want, second)
	awaitInputCommitted(t, adm, streamsApp)
	var total int64
	for _, n := range want {
		total += n
	}
	t.Logf("kafka-streams %s with group.protocol=streams: %d words over %d lines, exact across a rebalance after kill -9", streamsProtocolVersion, total, 2*streamsLines)
}
