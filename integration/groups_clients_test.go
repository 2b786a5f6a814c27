package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Classic consumer groups run by other clients than franz-go: sarama,
// segmentio/kafka-go and kcat (librdkafka). Each client gets the same
// checks through groupMember: members share partitions evenly and
// exclusively, leaving and killed members hand theirs over, and committed
// offsets resume exactly after the consumers and the broker restart.

// groupMember is one consumer of some client library.
type groupMember interface {
	leave() // close it, which leaves the group
	kill()  // cut it off without leaving; its session must time out
	// commit commits offsets of the member's partitions, or fails the test.
	commit(t testing.TB, offsets map[int32]int64)
}

// groupClient starts members with one library and one balancer. Members
// report their assignments to o and the offsets they consume to pd.
type groupClient struct {
	name  string
	start func(t *testing.T, o *ownership, pd *polled, addr, group, topic, name string) groupMember
}

func (pd *polled) add(p int32, offset int64) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	pd.offs[p] = append(pd.offs[p], offset)
	pd.n++
}

func (pd *polled) fail(err error) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	pd.errors = append(pd.errors, err)
}

func newPolled() *polled { return &polled{offs: make(map[int32][]int64)} }

// testMembership runs three members of c over six partitions; one leaves,
// one is killed, one joins, and the group must end balanced each time.
func testMembership(t *testing.T, b *broker, adm *kadm.Client, c groupClient) {
	topic, group := "members-"+c.name, "members-"+c.name
	const partitions = 6
	createTopic(t, adm, topic, partitions, nil)
	o, pd := newOwnership(), newPolled()
	var ms []groupMember
	for i := range 3 {
		ms = append(ms, c.start(t, o, pd, b.Addr(), group, topic, "m"+strconv.Itoa(i)))
	}
	waitClassicBalanced(t, o, adm, group, topic, partitions)
	leftAt := time.Now()
	ms[0].leave()
	o.gone("m0")
	waitClassicBalanced(t, o, adm, group, topic, partitions)
	t.Logf("leave rebalanced in %v", time.Since(leftAt))
	if took := time.Since(leftAt); took >= testSession/2 {
		t.Errorf("a leave took %v to rebalance; only the %v session timeout takes that long", took, testSession)
	}
	killedAt := time.Now()
	o.gone("m1")
	ms[1].kill()
	waitClassicBalanced(t, o, adm, group, topic, partitions)
	if took := time.Since(killedAt); took < testSession/2 {
		t.Errorf("killed member's partitions moved after %v, before its %v session could expire", took, testSession)
	}
	c.start(t, o, pd, b.Addr(), group, topic, "m3")
	waitClassicBalanced(t, o, adm, group, topic, partitions)
}

// testResume is TestGroupOffsetsResume for c: two members consume each
// partition from the committed offsets to the end and commit new offsets
// in the middle; the next members, after a consumer restart and after a
// broker restart, must start exactly there.
func testResume(t *testing.T, c groupClient) {
	dir := t.TempDir()
	b := startBroker(t, groupSettings(), dir)
	adm := newAdmin(t, b.Addr())
	topic, group := "resume-"+c.name, "resume-"+c.name
	const partitions, perPartition = 3, 30
	seedNumberedTopic(t, b, adm, topic, partitions, perPartition)

	round := 0
	run := func(addr string, adm *kadm.Client, start, commit map[int32]int64) {
		t.Helper()
		round++
		o, pd := newOwnership(), newPolled()
		var ms []groupMember
		var names []string
		for i := range 2 {
			name := fmt.Sprintf("r%d-m%d", round, i)
			ms = append(ms, c.start(t, o, pd, addr, group, topic, name))
			names = append(names, name)
		}
		waitClassicBalanced(t, o, adm, group, topic, partitions)
		want := 0
		for _, s := range start {
			want += perPartition - int(s)
		}
		waitFor(t, balanceWait, "the records after the committed offsets", func() error {
			if n := pd.distinct(); n < want {
				return fmt.Errorf("consumed %d of %d", n, want)
			}
			return nil
		})
		for i, m := range ms {
			mine := make(map[int32]int64)
			for _, p := range o.partitions(names[i]) {
				mine[p] = commit[p]
			}
			m.commit(t, mine)
		}
		for i, m := range ms {
			m.leave()
			o.gone(names[i])
		}
		if err := pd.resumed(start, perPartition); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		wantCommitted(t, adm, group, topic, commit)
	}
	zero := map[int32]int64{0: 0, 1: 0, 2: 0}
	first := map[int32]int64{0: 7, 1: 13, 2: 29}
	second := map[int32]int64{0: 11, 1: 13, 2: 30}
	run(b.Addr(), adm, zero, first)
	run(b.Addr(), adm, first, second)
	b.Close()
	b = startBroker(t, groupSettings(), dir)
	adm = newAdmin(t, b.Addr())
	run(b.Addr(), adm, second, second)
}

// saramaMember is a sarama ConsumerGroup running its Consume loop.
type saramaMember struct {
	cg      sarama.ConsumerGroup
	ks      *killSwitch
	cancel  context.CancelFunc
	done    chan struct{}
	session atomic.Pointer[sarama.ConsumerGroupSession]
	topic   string
}

type saramaHandler struct {
	m     *saramaMember
	o     *ownership
	pd    *polled
	name  string
	topic string
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.m.session.Store(&s)
	h.o.set(h.name, s.Claims()[h.topic])
	return nil
}

func (h *saramaHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.o.revoke(h.name, s.Claims()[h.topic])
	return nil
}

func (h *saramaHandler) ConsumeClaim(_ sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.pd.add(msg.Partition, msg.Offset)
	}
	return nil
}

func saramaClient(name string, strategy func() sarama.BalanceStrategy) groupClient {
	return groupClient{name: "sarama-" + name, start: func(t *testing.T, o *ownership, pd *polled, addr, group, topic, name string) groupMember {
		t.Helper()
		m := &saramaMember{ks: &killSwitch{}, done: make(chan struct{}), topic: topic}
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V4_0_0_0
		cfg.ClientID = name
		cfg.Net.Proxy.Enable = true
		cfg.Net.Proxy.Dialer = m.ks
		cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
		cfg.Consumer.Return.Errors = false
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Offsets.AutoCommit.Enable = false
		cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
		cfg.Consumer.Group.Session.Timeout = testSession
		cfg.Consumer.Group.Heartbeat.Interval = testHeartbeat
		cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
		cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy()}
		cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
		if err != nil {
			t.Fatalf("sarama.NewConsumerGroup: %v", err)
		}
		m.cg = cg
		var ctx context.Context
		ctx, m.cancel = context.WithCancel(context.Background())
		o.join(name, func() string {
			if s := m.session.Load(); s != nil {
				return (*s).MemberID()
			}
			return ""
		})
		h := &saramaHandler{m: m, o: o, pd: pd, name: name, topic: topic}
		go func() {
			defer close(m.done)
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, h); errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				} else if err != nil && ctx.Err() == nil {
					time.Sleep(50 * time.Millisecond) // the member is dead or the group is rebalancing: retry
				}
			}
		}()
		t.Cleanup(m.leave)
		return m
	}}
}

func (m *saramaMember) leave() {
	m.cancel()
	<-m.done
	m.cg.Close()
}

func (m *saramaMember) kill() {
	m.ks.kill()
	m.cancel()
}

func (m *saramaMember) commit(t testing.TB, offsets map[int32]int64) {
	t.Helper()
	s := m.session.Load()
	if s == nil {
		t.Fatal("sarama member has no session to commit in")
	}
	for p, o := range offsets {
		(*s).MarkOffset(m.topic, p, o, "")
	}
	(*s).Commit()
}

// segmentioMember is a segmentio/kafka-go ConsumerGroup whose generations
// read their partitions with one Reader each.
type segmentioMember struct {
	cg     *kafka.ConsumerGroup
	ks     *killSwitch
	cancel context.CancelFunc
	done   chan struct{}
	gen    atomic.Pointer[kafka.Generation]
	topic  string
}

func segmentioClient(name string, balancer kafka.GroupBalancer) groupClient {
	return groupClient{name: "segmentio-" + name, start: func(t *testing.T, o *ownership, pd *polled, addr, group, topic, name string) groupMember {
		t.Helper()
		m := &segmentioMember{ks: &killSwitch{}, done: make(chan struct{}), topic: topic}
		dialer := &kafka.Dialer{ClientID: name, DialFunc: m.ks.DialContext, Timeout: 10 * time.Second}
		cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
			ID:                group,
			Brokers:           []string{addr},
			Dialer:            dialer,
			Topics:            []string{topic},
			GroupBalancers:    []kafka.GroupBalancer{balancer},
			HeartbeatInterval: testHeartbeat,
			SessionTimeout:    testSession,
			RebalanceTimeout:  10 * time.Second,
			JoinGroupBackoff:  100 * time.Millisecond,
			StartOffset:       kafka.FirstOffset,
			Timeout:           10 * time.Second,
		})
		if err != nil {
			t.Fatalf("kafka.NewConsumerGroup: %v", err)
		}
		m.cg = cg
		var ctx context.Context
		ctx, m.cancel = context.WithCancel(context.Background())
		o.join(name, func() string {
			if g := m.gen.Load(); g != nil {
				return g.MemberID
			}
			return ""
		})
		go func() {
			defer close(m.done)
			for {
				gen, err := cg.Next(ctx)
				if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
					return
				}
				if err != nil {
					if os.Getenv("SKIFF_TEST_LOG") != "" {
						t.Logf("%s: segmentio Next: %v", name, err)
					}
					continue // a failed join or sync (a rebalance, say): the group retries
				}
				m.gen.Store(gen)
				var mine []int32
				for _, pa := range gen.Assignments[topic] {
					mine = append(mine, int32(pa.ID))
				}
				o.set(name, mine)
				gen.Start(func(ctx context.Context) {
					<-ctx.Done()
					o.set(name, nil) // the generation ended: everything is revoked
				})
				for _, pa := range gen.Assignments[topic] {
					gen.Start(func(ctx context.Context) { readSegmentio(ctx, pd, addr, dialer, topic, pa) })
				}
			}
		}()
		t.Cleanup(m.leave)
		return m
	}}
}

// readSegmentio reads one assigned partition from its committed offset
// until the generation ends.
func readSegmentio(ctx context.Context, pd *polled, addr string, dialer *kafka.Dialer, topic string, pa kafka.PartitionAssignment) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   []string{addr},
		Topic:     topic,
		Partition: pa.ID,
		Dialer:    dialer,
		MaxWait:   100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(pa.Offset); err != nil {
		pd.fail(fmt.Errorf("segmentio: set offset %d: %w", pa.Offset, err))
		return
	}
	for {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			return
		}
		pd.add(int32(msg.Partition), msg.Offset)
	}
}

func (m *segmentioMember) leave() {
	m.cg.Close()
	m.cancel()
	<-m.done
}

func (m *segmentioMember) kill() {
	m.ks.kill()
	m.cancel()
}

func (m *segmentioMember) commit(t testing.TB, offsets map[int32]int64) {
	t.Helper()
	gen := m.gen.Load()
	if gen == nil {
		t.Fatal("segmentio member has no generation to commit in")
	}
	byPart := make(map[int]int64)
	for p, o := range offsets {
		byPart[int(p)] = o
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{m.topic: byPart}); err != nil {
		t.Fatalf("segmentio commit: %v", err)
	}
}

// kcatMember is a `kcat -G` balanced consumer process (librdkafka).
type kcatMember struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// kcatGroupArgs are the librdkafka settings of every kcat group member.
func kcatGroupArgs(strategy string) []string {
	return []string{
		"-X", "auto.offset.reset=earliest",
		"-X", "session.timeout.ms=" + strconv.Itoa(int(testSession.Milliseconds())),
		"-X", "heartbeat.interval.ms=" + strconv.Itoa(int(testHeartbeat.Milliseconds())),
		"-X", "partition.assignment.strategy=" + strategy,
		"-X", "auto.commit.interval.ms=100",
	}
}

// kcatRebalance matches kcat's rebalance reports, eager ("rebalanced
// (memberid m): assigned: t [0], t [1]") and cooperative ("rebalanced:
// incremental revoke of 2 partition(s) (memberid m, COOPERATIVE rebalance
// protocol): t [0], t [1]").
var kcatRebalance = regexp.MustCompile(`rebalanced.*?(assigned|revoked|incremental assignment|incremental revoke).*?\(memberid ([^,)]+)[,)]|rebalanced.*?\(memberid ([^,)]+)\): (assigned|revoked)`)

func kcatClient(strategy string) groupClient {
	return groupClient{name: "kcat-" + strategy, start: func(t *testing.T, o *ownership, pd *polled, addr, group, topic, name string) groupMember {
		t.Helper()
		args := append([]string{"-b", addr, "-G", group, "-u", "-f", "%p %o\\n", "-X", "client.id=" + name}, kcatGroupArgs(strategy)...)
		cmd := exec.Command(kcatPath(t), append(args, topic)...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start kcat: %v", err)
		}
		m := &kcatMember{cmd: cmd, done: make(chan struct{})}
		var memberID atomic.Value
		memberID.Store("")
		o.join(name, func() string { return memberID.Load().(string) })
		parts := regexp.MustCompile(regexp.QuoteMeta(topic) + ` \[(\d+)\]`)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				line := sc.Text()
				mm := kcatRebalance.FindStringSubmatch(line)
				if mm == nil {
					continue
				}
				kind, id := mm[1]+mm[4], mm[2]+mm[3]
				memberID.Store(id)
				var ps []int32
				for _, pm := range parts.FindAllStringSubmatch(line[strings.LastIndex(line, "): "):], -1) {
					p, _ := strconv.Atoi(pm[1])
					ps = append(ps, int32(p))
				}
				if strings.Contains(kind, "assign") {
					o.assign(name, ps)
				} else {
					o.revoke(name, ps)
				}
			}
		}()
		go func() {
			defer wg.Done()
			readKcatRecords(stdout, pd)
		}()
		go func() {
			wg.Wait()
			cmd.Wait()
			close(m.done)
		}()
		t.Cleanup(m.kill)
		return m
	}}
}

// readKcatRecords parses "partition offset" lines.
func readKcatRecords(r io.Reader, pd *polled) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var p int32
		var off int64
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &p, &off); err != nil {
			pd.fail(fmt.Errorf("kcat printed %q: %w", sc.Text(), err))
			continue
		}
		pd.add(p, off)
	}
}

// leave stops kcat with SIGTERM: it closes its consumer, which commits
// and leaves the group.
func (m *kcatMember) leave() {
	m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.done
}

func (m *kcatMember) kill() {
	m.cmd.Process.Kill()
	<-m.done
}

func (m *kcatMember) commit(t testing.TB, _ map[int32]int64) {
	t.Fatal("kcat commits what it consumed; it cannot commit chosen offsets")
}

// TestSaramaGroups runs sarama consumer groups with each of its balance
// strategies, and checks that its commits resume exactly.
func TestSaramaGroups(t *testing.T) {
	t.Parallel()
	b := startBroker(t, groupSettings())
	adm := newAdmin(t, b.Addr())
	for _, c := range []groupClient{
		saramaClient("range", sarama.NewBalanceStrategyRange),
		saramaClient("roundrobin", sarama.NewBalanceStrategyRoundRobin),
		saramaClient("sticky", sarama.NewBalanceStrategySticky),
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testMembership(t, b, adm, c)
		})
	}
	t.Run("resume", func(t *testing.T) {
		t.Parallel()
		testResume(t, saramaClient("range", sarama.NewBalanceStrategyRange))
	})
}

// TestSegmentioGroups runs segmentio/kafka-go consumer groups with its
// range and round-robin balancers, and checks that its commits resume
// exactly.
func TestSegmentioGroups(t *testing.T) {
	t.Parallel()
	b := startBroker(t, groupSettings())
	adm := newAdmin(t, b.Addr())
	for _, c := range []groupClient{
		segmentioClient("range", kafka.RangeGroupBalancer{}),
		segmentioClient("roundrobin", kafka.RoundRobinGroupBalancer{}),
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testMembership(t, b, adm, c)
		})
	}
	t.Run("resume", func(t *testing.T) {
		t.Parallel()
		testResume(t, segmentioClient("range", kafka.RangeGroupBalancer{}))
	})
}

// TestKcatGroups runs `kcat -G` balanced consumers (librdkafka) with the
// eager range and the cooperative-sticky assignors.
func TestKcatGroups(t *testing.T) {
	t.Parallel()
	b := startBroker(t, groupSettings())
	adm := newAdmin(t, b.Addr())
	for _, c := range []groupClient{kcatClient("range"), kcatClient("cooperative-sticky")} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testMembership(t, b, adm, c)
		})
	}
}

// TestKcatGroupResume has kcat consume part of a topic with -c (it
// commits what it printed when it exits), then resume after a restart of
// kcat and one of the broker: every record is consumed exactly once.
func TestKcatGroupResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, groupSettings(), dir)
	adm := newAdmin(t, b.Addr())
	const topic, group, partitions, perPartition = "kcat-resume", "kcat-resume", 3, 10
	seedNumberedTopic(t, b, adm, topic, partitions, perPartition)

	next := map[int32]int64{0: 0, 1: 0, 2: 0} // where each partition must resume
	consume := func(addr string, adm *kadm.Client, count int) {
		t.Helper()
		args := append([]string{"-b", addr, "-G", group, "-f", "%p %o\\n", "-c", strconv.Itoa(count)}, kcatGroupArgs("range")...)
		out := runKcat(t, "", append(args, topic)...)
		pd := newPolled()
		readKcatRecords(strings.NewReader(out), pd)
		if pd.count() != count {
			t.Fatalf("kcat -c %d printed %d records:\n%s", count, pd.count(), out)
		}
		for p, offs := range pd.offs {
			for i, off := range offs {
				if off != next[p]+int64(i) {
					t.Fatalf("partition %d: kcat consumed offsets %v, want them to start at %d without gaps", p, offs, next[p])
				}
			}
			next[p] += int64(len(offs))
		}
		committed := make(map[int32]int64)
		for p, o := range next {
			if o > 0 {
				committed[p] = o
			}
		}
		wantCommitted(t, adm, group, topic, committed)
	}
	consume(b.Addr(), adm, 12)
	consume(b.Addr(), adm, 9)
	b.Close()
	b = startBroker(t, groupSettings(), dir)
	adm = newAdmin(t, b.Addr())
	consume(b.Addr(), adm, partitions*perPartition-21)
}
