package integration

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// BenchmarkSuite is `make bench` (issue 13): Apache Kafka 4.1 with its
// default settings, kfake, and the skiff binary durable and in page-cache
// mode, all running at once as separate processes, get the same franz-go
// load in alternating rounds (round r starts with broker r mod n, so a
// busy moment of the shared machine falls on every broker alike), and one
// table prints the median of the rounds with Skiff's ratios to the
// others. The machine's own limits (fdatasync and loopback bandwidth) are
// measured in every round too.
//
// Sizes come from the environment, so a quick run and the full
// run are the same code:
//
//	SKIFF_BENCH_ROUNDS       rounds, at least 3 (default 3)
//	SKIFF_BENCH_MB           MB of values per produce/consume run (default 256)
//	SKIFF_BENCH_PEAK_MB      MB of 10 KB records produced then consumed for
//	                         peak RSS and the consume-from-start figure
//	                         (default 512; the figure is 5120)
//	SKIFF_BENCH_E2E_SECONDS  seconds of 10,000 records/s per round (default 3)
//	SKIFF_BENCH_SYNC_MB      MB written for the fdatasync bandwidth (default 256)
//	SKIFF_BENCH_BROKERS      comma list of kafka, kfake, skiff,
//	                         skiff-pagecache, skiff-base, skiff-base-pagecache
//	                         (default the first four)
//	SKIFF_BENCH_BASE         a git revision built as skiff-base, for A/B
//	                         rounds of an optimisation in one run
//	SKIFF_BENCH_PROFILE_DIR  if set, CPU and allocation profiles of each
//	                         Skiff under each load are saved there
//	                         (suite_profile_test.go)
func BenchmarkSuite(b *testing.B) {
	cfg := suiteConfigFromEnv(b)
	brokers := startSuiteBrokers(b, cfg)
	s := newSuiteSamples()
	for b.Loop() {
		for r := range cfg.rounds {
			for i := range brokers {
				br := brokers[(r+i)%len(brokers)]
				suiteRound(b, cfg, br, r, s)
			}
			s.add("machine", "fdatasync", fdatasyncBandwidth(b, b.TempDir(), cfg.syncMB<<20))
			s.add("machine", "loopback", loopbackBandwidth(b, 1<<30))
			lats := fdatasyncLatency(b, b.TempDir(), 2000)
			for _, q := range []float64{0.5, 0.99, 0.999} {
				s.add("machine", fmt.Sprintf("fdatasync p%g", q*100), ms(percentile(lats, q)))
			}
		}
		for _, br := range brokers {
			suitePeak(b, cfg, br, s)
		}
		suiteProfiles(b, cfg, brokers)
	}
	printSuite(cfg, brokers, s)
}

type suiteConfig struct {
	rounds  int
	mb      int64
	peakMB  int64
	e2e     time.Duration
	syncMB  int64
	brokers []string
	baseRev string
	e2eRate int
}

func suiteConfigFromEnv(b *testing.B) suiteConfig {
	num := func(name string, def int64) int64 {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	cfg := suiteConfig{
		rounds:  int(max(num("SKIFF_BENCH_ROUNDS", 3), 3)),
		mb:      num("SKIFF_BENCH_MB", 256),
		peakMB:  num("SKIFF_BENCH_PEAK_MB", 512),
		e2e:     time.Duration(num("SKIFF_BENCH_E2E_SECONDS", 3)) * time.Second,
		syncMB:  num("SKIFF_BENCH_SYNC_MB", 256),
		brokers: []string{"kafka", "kfake", "skiff", "skiff-pagecache"},
		baseRev: os.Getenv("SKIFF_BENCH_BASE"),
		e2eRate: 10_000,
	}
	if v := os.Getenv("SKIFF_BENCH_BROKERS"); v != "" {
		cfg.brokers = strings.Split(v, ",")
	}
	return cfg
}

// suiteLoads are the produce and consume record sizes, each run moving
// cfg.mb megabytes of values.
func (c suiteConfig) loads() []produceLoad {
	return []produceLoad{
		{name: "100B", size: 100, records: int(c.mb * 1e6 / 100)},
		{name: "10KB", size: 10 << 10, records: int(c.mb * 1e6 / (10 << 10))},
	}
}

func startSuiteBrokers(b *testing.B, cfg suiteConfig) []*suiteBroker {
	b.Helper()
	var skiffBin, baseBin, kfakeBin string
	var brokers []*suiteBroker
	for _, name := range cfg.brokers {
		var br *suiteBroker
		switch name {
		case "kafka":
			br = startSuiteKafka(b)
		case "kfake":
			if kfakeBin == "" {
				kfakeBin = goBuild(b, "", "github.com/skiffmq/skiff/integration/kfakeproc")
			}
			br = startSuiteKfake(b, kfakeBin)
		case "skiff", "skiff-pagecache":
			if skiffBin == "" {
				skiffBin = buildSkiff(b)
			}
			br = startSuiteSkiffMode(b, skiffBin, name)
		case "skiff-base", "skiff-base-pagecache":
			if cfg.baseRev == "" {
				b.Fatalf("%s needs SKIFF_BENCH_BASE=<git revision>", name)
			}
			if baseBin == "" {
				baseBin = buildSkiffAt(b, cfg.baseRev)
			}
			br = startSuiteSkiffMode(b, baseBin, name)
		default:
			b.Fatalf("SKIFF_BENCH_BROKERS: unknown broker %q", name)
		}
		fmt.Fprintf(os.Stderr, "bench: %s pid %d on %s, start-up %v\n", br.name, br.pid, br.addr, br.startup.Round(10*time.Microsecond))
		brokers = append(brokers, br)
	}
	return brokers
}

func startSuiteSkiffMode(b *testing.B, bin, name string) *suiteBroker {
	if strings.HasSuffix(name, "-pagecache") {
		return startSuiteSkiff(b, bin, name, "no fsync (log.flush.interval.messages=MAX)", pageCacheOverride)
	}
	return startSuiteSkiff(b, bin, name, "durable: fdatasync group commit (default)")
}

// buildSkiffAt builds cmd/skiff as it was at rev (git archive into a temp
// dir), for A/B rounds against the working tree.
func buildSkiffAt(b *testing.B, rev string) string {
	b.Helper()
	dir := b.TempDir()
	// From the top of the repository: from a subdirectory git archive
	// packs only that subdirectory.
	cmd := exec.Command("sh", "-c", `cd "$(git rev-parse --show-toplevel)" && git archive "$1" | tar -x -C "$2"`, "sh", rev, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git archive %s: %v\n%s", rev, err, out)
	}
	return goBuild(b, dir, "./cmd/skiff")
}

// suiteRound runs every per-round load against one broker, each on topics
// of its own that are deleted afterwards so the disk stays small.
func suiteRound(b *testing.B, cfg suiteConfig, br *suiteBroker, r int, s *suiteSamples) {
	b.Helper()
	adm := kadm.NewClient(newClient(b, br.addr))
	ctx := testContext(b)
	for _, load := range cfg.loads() {
		topic := fmt.Sprintf("suite-%s-%d", load.name, r)
		createTopic(b, adm, topic, benchPartitions, nil)
		p := suiteProduce(b, br, topic, load)
		s.add(br.name, "produce "+load.name, p.mbPerSec)
		s.add(br.name, "cpu produce "+load.name, p.cpuPerGB)
		// The warm-up records are read too.
		c := suiteConsume(b, br, topic, load.records+benchPartitions, load.size)
		s.add(br.name, "consume "+load.name, c.mbPerSec)
		s.add(br.name, "cpu consume "+load.name, c.cpuPerGB)
		if _, err := adm.DeleteTopics(ctx, topic); err != nil {
			b.Fatalf("%s: delete %s: %v", br.name, topic, err)
		}
	}
	topic := fmt.Sprintf("suite-e2e-%d", r)
	createTopic(b, adm, topic, benchPartitions, nil)
	var before stageBuckets
	if br.http != "" {
		before = scrapeStages(b, br.http)
	}
	lats := suiteEndToEnd(b, br, topic, cfg.e2eRate, cfg.e2e)
	if br.http != "" {
		after := scrapeStages(b, br.http)
		for _, st := range suiteStages {
			for _, q := range []struct {
				name string
				q    float64
			}{{"p50", 0.5}, {"p99", 0.99}, {"p999", 0.999}} {
				s.add(br.name, "stage "+st.key+" "+q.name, stageQuantile(before, after, st.key, q.q))
			}
		}
	}
	s.add(br.name, "e2e p50", ms(percentile(lats, 0.50)))
	s.add(br.name, "e2e p99", ms(percentile(lats, 0.99)))
	s.add(br.name, "e2e p999", ms(percentile(lats, 0.999)))
	s.add(br.name, "group join", ms(suiteGroupJoin(b, br, topic, fmt.Sprintf("suite-group-%d", r))))
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		b.Fatalf("%s: delete %s: %v", br.name, topic, err)
	}
	fmt.Fprintf(os.Stderr, "bench: round %d %s done\n", r, br.name)
}

// suitePeak produces cfg.peakMB of 10 KB records to a new topic and reads
// them back from the start, then reads the broker's VmHWM, reset just
// before: the peak memory of the whole exercise.
func suitePeak(b *testing.B, cfg suiteConfig, br *suiteBroker, s *suiteSamples) {
	b.Helper()
	adm := kadm.NewClient(newClient(b, br.addr))
	createTopic(b, adm, "suite-peak", benchPartitions, nil)
	load := produceLoad{name: "10KB", size: 10 << 10, records: int(cfg.peakMB * 1e6 / (10 << 10))}
	resetPeakRSS(b, br.pid)
	suiteProduce(b, br, "suite-peak", load)
	c := suiteConsume(b, br, "suite-peak", load.records+benchPartitions, load.size)
	s.add(br.name, "peak rss", float64(procStatusKB(b, br.pid, "VmHWM")<<10)/(1<<20))
	s.add(br.name, "consume from start", c.mbPerSec)
	s.add(br.name, "startup", ms(br.startup))
	s.add(br.name, "idle rss", float64(br.idleRSS)/(1<<20))
	if _, err := adm.DeleteTopics(testContext(b), "suite-peak"); err != nil {
		b.Fatalf("%s: delete suite-peak: %v", br.name, err)
	}
	fmt.Fprintf(os.Stderr, "bench: peak %s done\n", br.name)
}

// suiteSamples holds every round's figure per broker and metric.
type suiteSamples struct {
	m map[string]map[string][]float64
}

func newSuiteSamples() *suiteSamples { return &suiteSamples{m: map[string]map[string][]float64{}} }

func (s *suiteSamples) add(broker, metric string, v float64) {
	if s.m[broker] == nil {
		s.m[broker] = map[string][]float64{}
	}
	s.m[broker][metric] = append(s.m[broker][metric], v)
}

// median of a metric's rounds; ok is false if it was not measured.
func (s *suiteSamples) median(broker, metric string) (float64, bool) {
	vs := s.m[broker][metric]
	return medianOf(vs), len(vs) > 0
}

// suiteRows are the table's rows in order: metric key, label.
var suiteRows = []struct{ key, label string }{
	{"produce 100B", "produce 100 B, MB/s"},
	{"produce 10KB", "produce 10 KB, MB/s"},
	{"consume 100B", "consume 100 B, MB/s"},
	{"consume 10KB", "consume 10 KB, MB/s"},
	{"consume from start", "consume 10 KB from start of peak topic, MB/s"},
	{"e2e p50", "end to end p50 ms, 10k rec/s"},
	{"e2e p99", "end to end p99 ms"},
	{"e2e p999", "end to end p999 ms"},
	{"cpu produce 100B", "CPU s per GB produced, 100 B"},
	{"cpu produce 10KB", "CPU s per GB produced, 10 KB"},
	{"cpu consume 100B", "CPU s per GB consumed, 100 B"},
	{"cpu consume 10KB", "CPU s per GB consumed, 10 KB"},
	{"group join", "group join ms (new group)"},
	{"startup", "start-up to first Metadata, ms"},
	{"idle rss", "idle RSS MB"},
	{"peak rss", "peak RSS MB (VmHWM), produce+consume"},
}

func printSuite(cfg suiteConfig, brokers []*suiteBroker, s *suiteSamples) {
	var names []string
	for _, br := range brokers {
		names = append(names, br.name)
	}
	// Ratio columns: each Skiff to each reference present.
	type pair struct{ a, b string }
	var pairs []pair
	for _, ref := range []string{"kafka", "kfake", "skiff-base", "skiff-base-pagecache"} {
		for _, sk := range []string{"skiff", "skiff-pagecache"} {
			if ref == "skiff-base" && sk != "skiff" || ref == "skiff-base-pagecache" && sk != "skiff-pagecache" {
				continue
			}
			if slices.Contains(names, ref) && slices.Contains(names, sk) {
				pairs = append(pairs, pair{sk, ref})
			}
		}
	}
	short := func(n string) string {
		return strings.NewReplacer("skiff-base-pagecache", "base-pc", "skiff-pagecache", "skiff-pc", "skiff-base", "base").Replace(n)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n== make bench: median of %d alternating rounds; %d MB per produce/consume run, peak topic %d MB, end to end %v at %d rec/s (linger 0), acks=all, idempotent franz-go, %d partitions\n",
		cfg.rounds, cfg.mb, cfg.peakMB, cfg.e2e, cfg.e2eRate, benchPartitions)
	for _, br := range brokers {
		fmt.Fprintf(&sb, "   %-20s %s\n", br.name, br.about)
	}
	fmt.Fprintf(&sb, "%-44s", "")
	for _, n := range names {
		fmt.Fprintf(&sb, " %9s", short(n))
	}
	for _, p := range pairs {
		fmt.Fprintf(&sb, " %15s", short(p.a)+"/"+short(p.b))
	}
	sb.WriteString("\n")
	for _, row := range suiteRows {
		fmt.Fprintf(&sb, "%-44s", row.label)
		for _, n := range names {
			if v, ok := s.median(n, row.key); ok {
				fmt.Fprintf(&sb, " %9s", suiteNum(v))
			} else {
				fmt.Fprintf(&sb, " %9s", "-")
			}
		}
		for _, p := range pairs {
			a, okA := s.median(p.a, row.key)
			r, okB := s.median(p.b, row.key)
			if okA && okB && r != 0 {
				fmt.Fprintf(&sb, " %15s", fmt.Sprintf("%.2fx", a/r))
			} else {
				fmt.Fprintf(&sb, " %15s", "-")
			}
		}
		sb.WriteString("\n")
	}
	sync, _ := s.median("machine", "fdatasync")
	loop, _ := s.median("machine", "loopback")
	fmt.Fprintf(&sb, "machine: fdatasync bandwidth, 1 MiB writes %s MB/s; loopback TCP %s MB/s\n", suiteNum(sync), suiteNum(loop))
	var q [3]float64
	for i, name := range []string{"fdatasync p50", "fdatasync p99", "fdatasync p99.9"} {
		q[i], _ = s.median("machine", name)
	}
	fmt.Fprintf(&sb, "machine: one 200 B append + fdatasync, ms: p50 %s p99 %s p999 %s (the floor under durable end-to-end latency)\n",
		suiteNum(q[0]), suiteNum(q[1]), suiteNum(q[2]))
	if v, ok := s.median("skiff", "produce 10KB"); ok && sync > 0 {
		fmt.Fprintf(&sb, "durable skiff produce 10 KB / fdatasync bandwidth: %.2f\n", v/sync)
	}
	fmt.Print(sb.String())
	printStages(names, s)
	fmt.Println()
}

// suiteNum prints with three significant figures or so.
func suiteNum(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
