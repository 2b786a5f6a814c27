package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Crash tests run the real binary, because only a process can be killed:
// SIGKILL while acks=all produces are being acknowledged, a torn tail
// written into a segment on purpose, and a graceful SIGTERM.

// TestCrash builds skiff once and runs the crash scenarios against it.
func TestCrash(t *testing.T) {
	bin := buildSkiff(t)
	t.Run("Kill9WhileProducing", func(t *testing.T) { testKill9WhileProducing(t, bin) })
	t.Run("TornTail", func(t *testing.T) { testTornTail(t, bin) })
	t.Run("FlippedByteInSealedSegment", func(t *testing.T) { testFlippedByteInSealedSegment(t, bin) })
	t.Run("SIGTERM", func(t *testing.T) { testSIGTERM(t, bin) })
	t.Run("HTTPAfterKill9", func(t *testing.T) { testHTTPAfterKill9(t, bin) }) // metrics_binary_test.go
}

// buildSkiff builds the single-node binary, as `go build ./cmd/skiff`
// does: without etcd.
func buildSkiff(t testing.TB) string {
	t.Helper()
	return goBuild(t, "", "github.com/skiffmq/skiff/cmd/skiff")
}

// buildClusterSkiff builds the binary with cluster support (-tags etcd).
func buildClusterSkiff(t testing.TB) string {
	t.Helper()
	return goBuild(t, "", "github.com/skiffmq/skiff/cmd/skiff", "-tags", "etcd")
}

// goBuild builds the main package pkg, from the module in dir (the
// current one if empty), with extra go build flags, into a temp dir and
// returns the binary's path.
func goBuild(t testing.TB, dir, pkg string, flags ...string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build %s: %v", pkg, err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command(goTool, append(append([]string{"build"}, flags...), "-o", out, pkg)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// skiffProcess is one run of the binary.
type skiffProcess struct {
	cmd        *exec.Cmd
	addr       string // from the "skiff started" log line
	cleanStart bool   // likewise
	httpAddr   string // likewise: /metrics, /healthz, /readyz
	exited     chan struct{}
	waitErr    error               // set before exited is closed
	started    chan map[string]any // the "skiff started" line's fields

	mu   sync.Mutex
	logs []string // stderr lines (JSON)
}

// startSkiff starts the binary on 127.0.0.1:0 with dataDir and Kafka
// settings (key=value; an argument beginning with -- is a flag) and waits
// for its "skiff started" line, which tells the port. The process is killed at
// the end of the test if it is still running.
func startSkiff(t testing.TB, bin, dataDir string, overrides ...string) *skiffProcess {
	t.Helper()
	p := launchSkiff(t, bin, dataDir, overrides...)
	p.waitStarted(t)
	return p
}

// launchSkiff starts the binary as startSkiff does but does not wait for
// it to be ready (waitStarted does): brokers that form a cluster with
// embedded etcd become ready only once a quorum of them runs.
func launchSkiff(t testing.TB, bin, dataDir string, overrides ...string) *skiffProcess {
	t.Helper()
	// Port 0 for the HTTP listener too: the binary's default (9644) would
	// collide between tests and with other brokers on the machine.
	args := []string{"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json", "--log-level", "info"}
	for _, o := range overrides {
		if strings.HasPrefix(o, "--") { // a flag, passed as is
			args = append(args, o)
			continue
		}
		args = append(args, "--override", o)
	}
	p := &skiffProcess{cmd: exec.Command(bin, args...), exited: make(chan struct{}), started: make(chan map[string]any, 1)}
	started := p.started
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting skiff: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "skiff started" {
				select {
				case started <- m:
				default:
				}
			}
		}
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("skiff (data dir %s) stderr:\n%s", dataDir, p.logText())
		}
	})
	return p
}

// waitStarted waits for the "skiff started" line, which tells the port.
func (p *skiffProcess) waitStarted(t testing.TB) {
	t.Helper()
	select {
	case m := <-p.started:
		p.addr, _ = m["listen"].(string)
		p.cleanStart, _ = m["clean_start"].(bool)
		p.httpAddr, _ = m["http"].(string)
		if p.addr == "" {
			t.Fatalf("\"skiff started\" line has no listen address: %v", m)
		}
	case <-p.exited:
		t.Fatalf("skiff exited before starting: %v\n%s", p.waitErr, p.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("skiff did not log \"skiff started\" within 30s:\n%s", p.logText())
	}
}

func (p *skiffProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// logged reports whether a log line at level has a message or error
// containing substr (case-insensitive).
func (p *skiffProcess) logged(level, substr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range p.logs {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["level"] != level {
			continue
		}
		if strings.Contains(strings.ToLower(line), strings.ToLower(substr)) {
			return true
		}
	}
	return false
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (p *skiffProcess) kill9(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("skiff still running 30s after SIGKILL")
	}
}

// producerOpts are the options of the crash tests' producers: acks=all
// (kgo's default), idempotent only if the broker offers InitProducerID, and
// a delivery timeout so that records still buffered when the broker dies
// fail instead of waiting forever.
func producerOpts(t *testing.T, addr string) []kgo.Opt {
	t.Helper()
	opts := []kgo.Opt{kgo.RecordDeliveryTimeout(15 * time.Second)}
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(testContext(t), newClient(t, addr))
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	idempotent := false
	for _, k := range resp.ApiKeys {
		idempotent = idempotent || k.ApiKey == int16(kmsg.InitProducerID)
	}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts
}

func topicIDs(t *testing.T, adm *kadm.Client, topics ...string) map[string]kadm.TopicID {
	t.Helper()
	details, err := adm.ListTopics(testContext(t), topics...)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	ids := map[string]kadm.TopicID{}
	for _, name := range topics {
		d, ok := details[name]
		if !ok || d.Err != nil {
			t.Fatalf("topic %s: listed %v, error %v", name, ok, d.Err)
		}
		ids[name] = d.ID
	}
	return ids
}

// readPartitions reads every partition of topic from the start up to its
// end offset (as ListOffsets reports it when called) with a fresh client,
// and checks the offsets are contiguous from 0.
func readPartitions(t *testing.T, addr, topic string, partitions int32) map[int32][]*kgo.Record {
	t.Helper()
	offs, err := newAdmin(t, addr).ListEndOffsets(testContext(t), topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	ends := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	for p := range partitions {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p, o.Err)
		}
		ends[p] = o.Offset
		start[p] = kgo.NewOffset().AtStart()
	}
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))
	ctx := testContext(t)
	got := map[int32][]*kgo.Record{}
	done := func() bool {
		for p, end := range ends {
			if int64(len(got[p])) < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: deadline passed with %v records of end offsets %v", topic, countRecords(got), ends)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if int64(len(got[r.Partition])) < ends[r.Partition] {
				if want := int64(len(got[r.Partition])); r.Offset != want {
					t.Fatalf("%s/%d: record at offset %d where offset %d was expected (offsets must be contiguous)", topic, r.Partition, r.Offset, want)
				}
				got[r.Partition] = append(got[r.Partition], r)
			}
		})
	}
	return got
}

func countRecords(m map[int32][]*kgo.Record) map[int32]int {
	out := map[int32]int{}
	for p, rs := range m {
		out[p] = len(rs)
	}
	return out
}

// testKill9WhileProducing kills the broker while four acks=all producers
// are producing unique values, restarts it on the same data dir, and checks
// that every acknowledged value is there and the topic ids are unchanged.
func testKill9WhileProducing(t *testing.T, bin string) {
	dir := t.TempDir()
	p := startSkiff(t, bin, dir)
	adm := newAdmin(t, p.addr)
	const topic, other = "crash", "crash-other"
	createTopic(t, adm, topic, 3, nil)
	createTopic(t, adm, other, 1, nil)
	idsBefore := topicIDs(t, adm, topic, other)

	cl, err := kgo.NewClient(append(producerOpts(t, p.addr), kgo.SeedBrokers(p.addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const workers = 4
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		nAcked   atomic.Int64
		nFailed  atomic.Int64
		attempts [workers]atomic.Int64
		pending  sync.WaitGroup
		running  sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for w := range workers {
		running.Add(1)
		go func() {
			defer running.Done()
			for i := 0; ctx.Err() == nil; i++ {
				v := fmt.Sprintf("w%d-%07d", w, i)
				attempts[w].Store(int64(i + 1))
				pending.Add(1)
				cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
					defer pending.Done()
					if err != nil {
						nFailed.Add(1)
						return
					}
					mu.Lock()
					acked[string(r.Value)] = true
					mu.Unlock()
					nAcked.Add(1)
				})
			}
		}()
	}
	eventually(t, 60*time.Second, "3000 acknowledged records", func() bool { return nAcked.Load() >= 3000 })
	p.kill9(t)
	atKill := nAcked.Load()
	stop()
	running.Wait()
	// Every record settles: acknowledged before the broker died, or failed
	// by the delivery timeout (Close fails what is still buffered).
	settled := make(chan struct{})
	go func() { pending.Wait(); close(settled) }()
	cl.Close()
	select {
	case <-settled:
	case <-time.After(60 * time.Second):
		t.Fatal("produce callbacks did not all return within 60s of the kill")
	}
	t.Logf("acknowledged %d records (%d when SIGKILL was sent), %d failed", nAcked.Load(), atKill, nFailed.Load())

	p2 := startSkiff(t, bin, dir)
	if p2.cleanStart {
		t.Error("start after SIGKILL logged clean_start=true")
	}
	adm2 := newAdmin(t, p2.addr)
	if idsAfter := topicIDs(t, adm2, topic, other); idsAfter[topic] != idsBefore[topic] || idsAfter[other] != idsBefore[other] {
		t.Errorf("topic ids changed across the crash: before %v, after %v", idsBefore, idsAfter)
	}

	got := readPartitions(t, p2.addr, topic, 3)
	seen := map[string]bool{}
	for part, recs := range got {
		for _, r := range recs {
			v := string(r.Value)
			var w, i int
			if n, _ := fmt.Sscanf(v, "w%d-%d", &w, &i); n != 2 || w < 0 || w >= workers || int64(i) >= attempts[w].Load() || string(r.Key) != v {
				t.Fatalf("partition %d offset %d holds %q (key %q), which no producer sent", part, r.Offset, v, r.Key)
			}
			seen[v] = true
		}
	}
	var missing []string
	for v := range acked {
		if !seen[v] {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("%d of %d acknowledged records are missing after the restart, e.g. %v", len(missing), len(acked), missing[:min(len(missing), 10)])
	}
	t.Logf("after restart: %d records on disk (%v per partition), every one of %d acknowledged values present",
		len(seen), countRecords(got), len(acked))
}

// lastSegment returns the .log file with the highest base offset in a
// partition directory.
func lastSegment(t *testing.T, partitionDir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(partitionDir, "*.log"))
	if err != nil || len(segs) == 0 {
		entries, _ := os.ReadDir(filepath.Dir(partitionDir))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("no segment in %s (%v); data dir holds %v", partitionDir, err, names)
	}
	// Segment names are zero-padded base offsets, so the last in lexical
	// order has the highest base offset.
	sort.Strings(segs)
	return segs[len(segs)-1]
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// testTornTail kills the broker, appends what a write torn by a crash
// leaves at the end of the last segment, and checks that the restarted
// broker truncates it, keeps every acknowledged record and appends after
// them.
func testTornTail(t *testing.T, bin string) {
	dir := t.TempDir()
	p := startSkiff(t, bin, dir)
	adm := newAdmin(t, p.addr)
	rng := rand.New(rand.NewPCG(11, 12))

	nextBatch := func(baseOffset int64) []byte {
		b := recordBatch("never acknowledged", "also lost")
		binary.BigEndian.PutUint64(b, uint64(baseOffset))
		return b
	}
	const batches, perBatch = 20, 10
	tails := []struct {
		topic string
		tail  func() []byte
	}{
		// Half of a batch header, then random bytes: a write cut short.
		{"torn-half-header", func() []byte {
			b := nextBatch(batches * perBatch)[:30]
			for range 64 {
				b = append(b, byte(rng.Uint32()))
			}
			return b
		}},
		// A whole batch whose last bytes never reached the disk.
		{"torn-bad-crc", func() []byte {
			b := nextBatch(batches * perBatch)
			clear(b[len(b)-8:])
			return b
		}},
		// Zeros, as a file system can leave after a crash.
		{"torn-zeros", func() []byte { return make([]byte, 4096) }},
	}

	cl := newClient(t, p.addr, append(producerOpts(t, p.addr), kgo.ProducerLinger(0))...)
	for _, tc := range tails {
		createTopic(t, adm, tc.topic, 1, nil)
		// Separate synchronous produces, so the segment holds many batches.
		for b := range batches {
			var recs []*kgo.Record
			for i := range perBatch {
				recs = append(recs, &kgo.Record{Topic: tc.topic, Value: fmt.Appendf(nil, "%s-%03d", tc.topic, b*perBatch+i)})
			}
			produceSync(t, cl, recs...)
		}
	}
	p.kill9(t)

	sizes := map[string]int64{}
	segs := map[string]string{}
	for _, tc := range tails {
		seg := lastSegment(t, filepath.Join(dir, tc.topic+"-0"))
		segs[tc.topic], sizes[tc.topic] = seg, fileSize(t, seg)
		f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		tail := tc.tail()
		if _, err := f.Write(tail); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: appended %d bytes to %s (%d bytes)", tc.topic, len(tail), filepath.Base(seg), sizes[tc.topic])
	}

	p2 := startSkiff(t, bin, dir)
	if !p2.logged("warn", "truncat") {
		t.Errorf("no warn log line mentions the truncation")
	}
	cl2 := newClient(t, p2.addr, append(producerOpts(t, p2.addr), kgo.ProducerLinger(0))...)
	for _, tc := range tails {
		t.Run(tc.topic, func(t *testing.T) {
			if got := fileSize(t, segs[tc.topic]); got != sizes[tc.topic] {
				t.Errorf("segment is %d bytes after recovery, want %d (the torn tail truncated)", got, sizes[tc.topic])
			}
			got := readPartitions(t, p2.addr, tc.topic, 1)[0]
			if len(got) != batches*perBatch {
				t.Fatalf("%d records after recovery, want the %d acknowledged", len(got), batches*perBatch)
			}
			for i, r := range got {
				if want := fmt.Sprintf("%s-%03d", tc.topic, i); string(r.Value) != want {
					t.Fatalf("offset %d holds %q, want %q", i, r.Value, want)
				}
			}
			res, err := cl2.ProduceSync(testContext(t), &kgo.Record{Topic: tc.topic, Value: []byte("after recovery")}).First()
			if err != nil {
				t.Fatalf("produce after recovery: %v", err)
			}
			if res.Offset != batches*perBatch {
				t.Fatalf("produce after recovery landed at offset %d, want %d", res.Offset, batches*perBatch)
			}
			got = readPartitions(t, p2.addr, tc.topic, 1)[0]
			if last := got[len(got)-1]; len(got) != batches*perBatch+1 || !bytes.Equal(last.Value, []byte("after recovery")) {
				t.Fatalf("after the new produce: %d records, last %q", len(got), last.Value)
			}
		})
	}
}

// testSIGTERM stops the broker with SIGTERM: it exits 0 promptly, and the
// next start is a clean one that still has every record; a SIGKILL after
// that makes the following start an unclean one.
func testSIGTERM(t *testing.T, bin string) {
	dir := t.TempDir()
	p := startSkiff(t, bin, dir)
	const topic = "graceful"
	createTopic(t, newAdmin(t, p.addr), topic, 2, nil)
	cl := newClient(t, p.addr, producerOpts(t, p.addr)...)
	var recs []*kgo.Record
	for i := range 100 {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "g-%03d", i)})
	}
	produceSync(t, cl, recs...)
	// A connected consumer with a parked long poll must not hold up the
	// stop beyond the grace period.
	consumer := newClient(t, p.addr, kgo.ConsumeTopics(topic), kgo.FetchMaxWait(30*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	go consumer.PollFetches(testContext(t))

	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("skiff still running 20s after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0 (%v)", code, p.waitErr)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	if !p.logged("info", "skiff stopped") {
		t.Error("no \"skiff stopped\" log line")
	}

	p2 := startSkiff(t, bin, dir)
	if !p2.cleanStart {
		t.Error("start after SIGTERM logged clean_start=false, want true")
	}
	got := readPartitions(t, p2.addr, topic, 2)
	seen := map[string]bool{}
	for _, rs := range got {
		for _, r := range rs {
			seen[string(r.Value)] = true
		}
	}
	for _, r := range recs {
		if !seen[string(r.Value)] {
			t.Fatalf("record %q missing after a graceful restart", r.Value)
		}
	}

	p2.kill9(t)
	p3 := startSkiff(t, bin, dir)
	if p3.cleanStart {
		t.Error("start after SIGKILL logged clean_start=true, want false")
	}
}
