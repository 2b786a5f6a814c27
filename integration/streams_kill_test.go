package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaStreamsEOSKill runs a Kafka Streams word count
// (integration/jvm/clients WordCount: a count() state store behind a
// repartition, processing.guarantee=exactly_once_v2) as its own JVM,
// SIGKILLs it right after seeing a transaction hold uncommitted output
// (so mid-run, and nearly always mid-transaction), adds more
// input, and starts it again on the same state directory. A read_committed
// reader must then see, for every word, the counts 1, 2, ..., n with no gap
// and no repeat (the record cache is off, so every word emits its count),
// ending at the exact number of times the word was written, and the
// application's group must have committed the input's end offsets.
func TestKafkaStreamsEOSKill(t *testing.T) {
	for _, v := range javaClientVersions {
		t.Run(v, func(t *testing.T) { testStreamsEOSKill(t, v) })
	}
}

const (
	streamsIn         = "wc-in"
	streamsOut        = "wc-out"
	streamsApp        = "wc-app"
	streamsLines      = 3000 // per phase: before and after the kill
	streamsVocabulary = 40
)

// streamsLine is input line i: three words from a fixed vocabulary.
func streamsLine(i int) []string {
	w := func(n int) string { return fmt.Sprintf("w%02d", n%streamsVocabulary) }
	return []string{w(i), w(i*7 + 3), w(i*13 + 5)}
}

// streamsClasspath compiles the Java module at kafka-clients version v into
// a temporary directory and returns the classpath that runs WordCount.
func streamsClasspath(t *testing.T, v string) string {
	t.Helper()
	pom, err := filepath.Abs("jvm/clients/pom.xml")
	if err != nil {
		t.Fatal(err)
	}
	build := t.TempDir()
	cpFile := filepath.Join(build, "classpath.txt")
	out, err := runMaven(t, 10*time.Minute, "-q", "-f", pom, "compile", "dependency:build-classpath",
		"-Dkafka.clients.version="+v, "-Dskiff.build.dir="+build,
		"-Dmdep.outputFile="+cpFile, "-Dmdep.includeScope=runtime")
	if err != nil {
		t.Fatalf("mvn compile at kafka-clients %s: %v\n%s", v, err, out)
	}
	deps, err := os.ReadFile(cpFile)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(build, "classes") + string(os.PathListSeparator) + strings.TrimSpace(string(deps))
}

func testStreamsEOSKill(t *testing.T, v string) {
	cp := streamsClasspath(t, v)
	b := startBroker(t, javaSettings())
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
	stateDir := t.TempDir()
	args := []string{javaBin(t), "-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", cp, "dev.skiff.clients.WordCount", b.Addr(), streamsApp, streamsIn, streamsOut, stateDir}

	produceLines(0, streamsLines)
	first := startEOSWorker(t, "wordcount-1", nil, args...)
	// Kill while a transaction of the application holds output the
	// committed view does not show yet.
	eventually(t, 3*time.Minute, "Streams output held by an open transaction", func() bool {
		select {
		case <-first.done:
			t.Fatalf("WordCount exited:\n%s", first.stderr.String())
		default:
		}
		hwm, lso := streamsOutOffsets(t, adm)
		return hwm > lso && lso > 0
	})
	first.kill(t)
	// Almost always the transaction seen open is still open: the process
	// died holding it, and Skiff must abort it for the restarted instance.
	// A commit that completed in the instant between the check and the
	// kill is not a failure, only a kill between two transactions.
	if hwm, lso := streamsOutOffsets(t, adm); hwm > lso {
		t.Logf("killed WordCount mid-transaction: output end offsets sum %d, last stable offsets sum %d", hwm, lso)
	} else {
		t.Logf("killed WordCount mid-run, between two transactions (output end offsets sum %d)", hwm)
	}

	produceLines(streamsLines, 2*streamsLines)
	second := startEOSWorker(t, "wordcount-2", nil, args...)

	awaitWordCounts(t, b.Addr(), want, second)
	awaitInputCommitted(t, adm, streamsApp)
	var total int64
	for _, n := range want {
		total += n
	}
	t.Logf("kafka-streams %s: %d words over %d lines, exact after kill -9 and restart", v, total, 2*streamsLines)
}

// streamsOutOffsets sums the output's end offsets and last stable offsets
// over its partitions.
func streamsOutOffsets(t *testing.T, adm *kadm.Client) (hwm, lso int64) {
	t.Helper()
	ends, err := adm.ListEndOffsets(testContext(t), streamsOut)
	if err != nil {
		t.Fatal(err)
	}
	stable, err := adm.ListCommittedOffsets(testContext(t), streamsOut)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { hwm += o.Offset })
	stable.Each(func(o kadm.ListedOffset) { lso += o.Offset })
	return hwm, lso
}

// head64 is the first n+1 values of s, at most 12.
func head64(s []int64, n int) []int64 {
	return s[:min(n+1, len(s), 12)]
}

// awaitWordCounts reads the committed (read_committed) word counts of
// streamsOut until every word reached its count in want, failing if one of
// workers exits first, and then checks exactly-once: each word's counts
// read 1, 2, ..., n, with no gap and no repeat.
func awaitWordCounts(t *testing.T, addr string, want map[string]int64, workers ...*eosWorker) {
	t.Helper()
	counts := map[string][]int64{}
	reader := newClient(t, addr, kgo.ConsumeTopics(streamsOut), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	done := func() bool {
		for w, n := range want {
			c := counts[w]
			if len(c) == 0 || c[len(c)-1] != n {
				return false
			}
		}
		return true
	}
	eventually(t, 3*time.Minute, "the exact final count of every word in the committed output", func() bool {
		for _, w := range workers {
			select {
			case <-w.done:
				t.Fatalf("WordCount %s exited:\n%s", w.name, w.stderr.String())
			default:
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		fs := reader.PollRecords(ctx, 10000)
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != 8 {
				t.Fatalf("%s/%d@%d: value %x is not a long", r.Topic, r.Partition, r.Offset, r.Value)
			}
			counts[string(r.Key)] = append(counts[string(r.Key)], int64(binary.BigEndian.Uint64(r.Value)))
		})
		return done()
	})
	for w, c := range counts {
		for i, n := range c {
			if n != int64(i+1) {
				t.Errorf("word %s: committed counts %v, want 1..%d in order (position %d is %d)", w, head64(c, i), want[w], i, n)
				break
			}
		}
		if int64(len(c)) != want[w] {
			t.Errorf("word %s: %d committed updates, want %d", w, len(c), want[w])
		}
	}
	if len(counts) != len(want) {
		t.Errorf("committed output has %d words, want %d", len(counts), len(want))
	}

}

// awaitInputCommitted waits until the application's group committed the
// end offsets of streamsIn.
func awaitInputCommitted(t *testing.T, adm *kadm.Client, app string) {
	t.Helper()
	ends, err := adm.ListEndOffsets(testContext(t), streamsIn)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the application's committed offsets at the input's end", func() bool {
		committed, err := adm.FetchOffsets(testContext(t), app)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			c, found := committed.Lookup(streamsIn, o.Partition)
			ok = ok && found && c.At == o.Offset
		})
		return ok
	})
}
