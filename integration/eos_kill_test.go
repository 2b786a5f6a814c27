package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The EOS kill tests run a consume-transform-produce loop as separate worker
// processes and SIGKILL one of them in the middle of a transaction: its
// records are in the output log, uncommitted, and it neither leaves the group
// nor ends the transaction. A replacement with the same transactional id then
// fences it (InitProducerID aborts the open transaction), the group
// rebalances the dead member's partitions away once its session times out,
// and the committed output must still hold every input record exactly once,
// with the group's committed offsets at the input's end offsets.
//
// A worker freezes (prints "frozen" and blocks forever) inside its
// transaction after FREEZE_AFTER commits, with its records produced and
// flushed but the transaction not ended, so the kill lands mid-transaction
// every time instead of by chance.

const (
	eosIn         = "eos-kill-in"
	eosOut        = "eos-kill-out"
	eosGroup      = "eos-kill-group"
	eosPartitions = 4
	eosTotal      = 3000
)

// eosSettings lets the group form at once, accepts short sessions, and
// expires abandoned transactions quickly as a backstop to fencing.
func eosSettings() map[string]string {
	return map[string]string{
		"group.initial.rebalance.delay.ms":                            "0",
		"group.min.session.timeout.ms":                                "1000",
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
	}
}

// eosWorker is a running worker process.
type eosWorker struct {
	name   string
	cmd    *exec.Cmd
	frozen chan struct{} // closed when the worker prints "frozen"
	done   chan struct{} // closed when its stdout ends
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startEOSWorker starts args as a worker process with env added; it is
// killed when the test ends.
func startEOSWorker(t *testing.T, name string, env []string, args ...string) *eosWorker {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	w := &eosWorker{name: name, cmd: cmd, frozen: make(chan struct{}), done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = w.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker %s: %v", name, err)
	}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "frozen" {
				once.Do(func() { close(w.frozen) })
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-w.done
		_ = cmd.Wait()
		if out := w.stderr.String(); out != "" {
			t.Logf("worker %s (pid %d) stderr:\n%s", name, cmd.Process.Pid, out)
		}
	})
	return w
}

// kill SIGKILLs the worker and waits for it to be gone.
func (w *eosWorker) kill(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", w.name, err)
	}
	<-w.done
	_ = w.cmd.Wait()
}

// waitFrozen waits until the worker is frozen inside a transaction.
func (w *eosWorker) waitFrozen(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-w.frozen:
	case <-w.done:
		t.Fatalf("worker %s exited before freezing:\n%s", w.name, w.stderr.String())
	case <-time.After(timeout):
		t.Fatalf("worker %s did not freeze within %v:\n%s", w.name, timeout, w.stderr.String())
	}
}

// eosSetup starts a broker and fills the input topic with eosTotal records
// (values "0".."eosTotal-1") spread round-robin over eosPartitions.
func eosSetup(t *testing.T) *broker {
	b := startBroker(t, eosSettings())
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, eosIn, eosPartitions, nil)
	createTopic(t, adm, eosOut, 1, nil)
	src := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	recs := make([]*kgo.Record, 0, eosTotal)
	for i := range eosTotal {
		recs = append(recs, &kgo.Record{Topic: eosIn, Value: []byte(strconv.Itoa(i))})
	}
	produceSync(t, src, recs...)
	return b
}

// eosCheckOpenTxn asserts the frozen worker's transaction (txnID) is
// ongoing with the output partition in it, and the output has uncommitted
// records: the last stable offset is below the high watermark.
func eosCheckOpenTxn(t *testing.T, b *broker, txnID string) {
	t.Helper()
	described, err := newAdmin(t, b.Addr()).DescribeTransactions(testContext(t), txnID)
	if err != nil {
		t.Fatalf("DescribeTransactions %s: %v", txnID, err)
	}
	d, ok := described[txnID]
	if !ok || d.Err != nil || d.State != "Ongoing" {
		t.Fatalf("transaction %s: %+v, want Ongoing", txnID, d)
	}
	if !d.Topics.Lookup(eosOut, 0) {
		t.Fatalf("transaction %s has partitions %v, want %s-0 among them", txnID, d.Topics, eosOut)
	}
	hwm, lso := partitionEndOffset(t, b.Addr(), eosOut, false), partitionEndOffset(t, b.Addr(), eosOut, true)
	if lso >= hwm {
		t.Fatalf("output LSO %d, HWM %d: want an open transaction holding the LSO when the worker is killed", lso, hwm)
	}
	t.Logf("killing mid-transaction: output HWM %d, LSO %d", hwm, lso)
}

// eosVerify waits until the committed output holds eosTotal records and the
// group's committed offsets reach the input's end offsets, then checks that
// every input value appears exactly once.
func eosVerify(t *testing.T, b *broker, timeout time.Duration) {
	t.Helper()
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	ends, err := adm.ListEndOffsets(ctx, eosIn)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	eventually(t, timeout, "every input record in the committed output", func() bool {
		lso := partitionEndOffset(t, b.Addr(), eosOut, true)
		if lso < eosTotal {
			return false
		}
		values = valuesUpTo(t, b.Addr(), eosOut, lso, true)
		return len(values) >= eosTotal
	})
	var lastErr string
	defer func() {
		if t.Failed() && lastErr != "" {
			t.Logf("group offsets:%s", lastErr)
		}
	}()
	eventually(t, timeout, "group offsets at the input end offsets", func() bool {
		committed, err := adm.FetchOffsets(ctx, eosGroup)
		if err != nil {
			lastErr = err.Error()
			return false
		}
		ok := true
		lastErr = ""
		for p := range int32(eosPartitions) {
			end, _ := ends.Lookup(eosIn, p)
			c, found := committed.Lookup(eosIn, p)
			if !found || c.At != end.Offset {
				ok = false
				lastErr += fmt.Sprintf(" p%d committed %v want %d;", p, c.At, end.Offset)
			}
		}
		return ok
	})
	// The committed output is final once the offsets are: read it again.
	values = valuesUpTo(t, b.Addr(), eosOut, partitionEndOffset(t, b.Addr(), eosOut, true), true)
	seen := make(map[string]int, len(values))
	for _, v := range values {
		seen[v]++
	}
	var dups, missing []string
	for v, n := range seen {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", v, n))
		}
	}
	for i := range eosTotal {
		if seen[strconv.Itoa(i)] == 0 {
			missing = append(missing, strconv.Itoa(i))
		}
	}
	if len(values) != eosTotal || len(dups) > 0 || len(missing) > 0 {
		t.Fatalf("committed output has %d records, want %d; %d duplicated %v; %d missing %v",
			len(values), eosTotal, len(dups), head(dups), len(missing), head(missing))
	}
	t.Logf("committed output: %d records, each input value exactly once", len(values))
}

func head(s []string) []string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// TestEOSWorkerHelper is the franz-go worker process of TestEOSWorkerKilled;
// it is skipped unless SKIFF_EOS_WORKER names the worker.
func TestEOSWorkerHelper(t *testing.T) {
	name := os.Getenv("SKIFF_EOS_WORKER")
	if name == "" {
		t.Skip("worker process for TestEOSWorkerKilled")
	}
	freezeAfter := -1
	if s := os.Getenv("SKIFF_EOS_FREEZE_AFTER"); s != "" {
		freezeAfter, _ = strconv.Atoi(s)
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(os.Getenv("SKIFF_EOS_BROKER")),
		kgo.TransactionalID("eos-kill-"+name),
		kgo.TransactionTimeout(20*time.Second),
		kgo.ConsumerGroup(eosGroup),
		kgo.ConsumeTopics(eosIn),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.DefaultProduceTopic(eosOut),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.SessionTimeout(3*time.Second),
		kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: session: %v\n", name, err)
		os.Exit(2)
	}
	// The parent kills the worker; it never returns normally.
	ctx := context.Background()
	commits := 0
	for {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := sess.PollRecords(pctx, 25)
		pcancel()
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: begin: %v\n", name, err)
			os.Exit(2)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s: produce: %v\n", name, err)
				}
			})
		})
		if commits == freezeAfter {
			// Freeze mid-transaction with the records in the log.
			if err := sess.Client().Flush(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "%s: flush: %v\n", name, err)
			}
			fmt.Println("frozen")
			select {}
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: end: %v\n", name, err)
		}
		if committed {
			commits++
		}
	}
}

// TestEOSWorkerKilled copies the input to the output with three franz-go
// GroupTransactSession worker processes, SIGKILLs one mid-transaction,
// starts a replacement with its transactional id, and checks the committed
// output holds every input record exactly once.
func TestEOSWorkerKilled(t *testing.T) {
	if os.Getenv("SKIFF_EOS_WORKER") != "" {
		t.Skip("in a worker process")
	}
	b := eosSetup(t)
	start := func(name string, freezeAfter int) *eosWorker {
		env := []string{"SKIFF_EOS_WORKER=" + name, "SKIFF_EOS_BROKER=" + b.Addr()}
		if freezeAfter >= 0 {
			env = append(env, "SKIFF_EOS_FREEZE_AFTER="+strconv.Itoa(freezeAfter))
		}
		return startEOSWorker(t, name, env, os.Args[0], "-test.run=^TestEOSWorkerHelper$", "-test.count=1")
	}
	start("a", -1)
	start("b", -1)
	victim := start("c", 3)
	victim.waitFrozen(t, 40*time.Second)
	eosCheckOpenTxn(t, b, "eos-kill-c")
	victim.kill(t)
	start("c", -1) // the restarted worker: same transactional id
	eosVerify(t, b, 45*time.Second)
}

// TestConfluentEOSWorkerKilled runs the same loop with confluent-kafka's
// transactional producer (integration/clients/confluent_eos.py) as three
// worker processes, SIGKILLs one mid-transaction, starts a replacement with
// its transactional id, and checks exactly-once with franz-go.
func TestConfluentEOSWorkerKilled(t *testing.T) {
	if os.Getenv("SKIFF_EOS_WORKER") != "" {
		t.Skip("in a worker process")
	}
	ecoRequirePython(t, "confluent_kafka", "python3-confluent-kafka")
	b := eosSetup(t)
	start := func(name string, freezeAfter int) *eosWorker {
		return startEOSWorker(t, name, nil, "/usr/bin/python3", "clients/confluent_eos.py",
			b.Addr(), eosIn, eosOut, eosGroup, "eos-kill-py-"+name, strconv.Itoa(freezeAfter))
	}
	start("a", -1)
	start("b", -1)
	victim := start("c", 3)
	victim.waitFrozen(t, 40*time.Second)
	eosCheckOpenTxn(t, b, "eos-kill-py-c")
	victim.kill(t)
	start("c", -1)
	eosVerify(t, b, 45*time.Second)
}
