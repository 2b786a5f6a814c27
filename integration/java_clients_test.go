package integration

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffmq/skiff/server"
	"github.com/skiffmq/skiff/skifftest"
)

// The Java client suite (integration/jvm/clients) is a Maven project of
// JUnit 5 scenarios that drive Apache Kafka's own client against a Skiff
// named by -Dskiff.bootstrap. Each scenario asserts the records, offsets and
// group state it reads back. It runs at two kafka-clients versions: 4.1.x,
// whose API table Skiff implements, and the newest 4.x, to catch
// forward-compatibility breaks.

// javaClientVersions are the kafka-clients (and kafka-streams) versions the
// suite runs at.
var javaClientVersions = []string{"4.1.2", "4.4.0"}

// javaSettings are Kafka-valid broker settings that keep the Java scenarios
// quick: groups form without the initial rebalance delay, short sessions
// are accepted, and abandoned transactions expire soon.
func javaSettings() map[string]string {
	return map[string]string{
		"group.initial.rebalance.delay.ms":                            "0",
		"group.min.session.timeout.ms":                                "1000",
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
	}
}

// javaCompactionRecords is how many records CompactionTest writes at each
// client version (issue 12's 1M over 10k keys). It runs at one version
// only: the cleaner under test is the broker's, the same at both, and 1M
// records cost CI time.
var javaCompactionRecords = map[string]int{"4.1.2": 1_000_000}

// surefireSummary matches surefire's per-class and total result lines, and
// the figures a scenario prints as "SomethingTest: ..." (CompactionTest's
// produce and compaction times).
var surefireSummary = regexp.MustCompile(`(?m)^(?:\[(?:INFO|WARNING|ERROR)\] (?:Tests run: .*|Tests run:.*<<< FAILURE!.*|BUILD (?:SUCCESS|FAILURE))|[A-Z][A-Za-z]*Test: .*)$`)

// surefireTotal matches surefire's closing count of scenarios run.
var surefireTotal = regexp.MustCompile(`(?m)^\[(?:INFO|WARNING|ERROR)\] Tests run: (\d+), Failures: \d+, Errors: \d+, Skipped: \d+$`)

// runMaven runs mvn with args in the integration directory, bounded by
// timeout, and returns its combined output. A missing java or mvn fails the
// test outside -short (CI installs both).
func runMaven(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Java and Maven; skipped with -short")
	}
	javaBin(t)
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		t.Fatalf("mvn not found: %v (.ci/run installs maven)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, mvn, append([]string{"-B", "-Dstyle.color=never"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestJavaClients runs the Java client suite against an embedded Skiff,
// once per client version. SKIFF_JAVA_TEST, if set, is passed as surefire's
// -Dtest filter, to run one scenario while working on it.
func TestJavaClients(t *testing.T) {
	for _, v := range javaClientVersions {
		t.Run(v, func(t *testing.T) {
			// The cleaner looks for work often, for CompactionTest; test
			// control is on, for FaultsTest; otherwise the broker runs on
			// disk with Kafka's defaults, like startBroker's.
			settings := javaSettings()
			maps.Copy(settings, compactionSettings)
			b := skifftest.New(t, skifftest.Settings(settings), skifftest.Profile(server.ProfileProduction),
				skifftest.DataDir(t.TempDir()), skifftest.TestControl("127.0.0.1:0"))
			if b.TestControlURL() == "" {
				t.Fatal("TestControl option did not start the HTTP API")
			}
			pom, err := filepath.Abs("jvm/clients/pom.xml")
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"-f", pom, "test",
				"-Dkafka.clients.version=" + v,
				"-Dskiff.bootstrap=" + b.Addr(),
				"-Dskiff.control=" + b.TestControlURL(),
				"-Dskiff.compaction.records=" + strconv.Itoa(javaCompactionRecords[v]),
				"-Dskiff.build.dir=" + t.TempDir()}
			if f := os.Getenv("SKIFF_JAVA_TEST"); f != "" {
				args = append(args, "-Dtest="+f, "-Dsurefire.failIfNoSpecifiedTests=false")
			}
			start := time.Now()
			out, err := runMaven(t, 15*time.Minute, args...)
			t.Logf("kafka-clients %s: mvn test ran for %v\n%s", v, time.Since(start).Round(time.Second),
				strings.Join(surefireSummary.FindAllString(out, -1), "\n"))
			if err != nil {
				t.Fatalf("mvn %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			// Guard against a suite that passes by running nothing (a
			// missing JUnit provider, a filter that matches no class).
			total := surefireTotal.FindStringSubmatch(out)
			if total == nil || total[1] == "0" {
				t.Fatalf("surefire ran no scenario:\n%s", out)
			}
		})
	}
}
