package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Consumer group tests shared by every client: a broker tuned for fast
// rebalances, a record of which member owns which partition, and checks
// of that record against the broker's own view of the group.

// groupSettings are broker settings for group tests: no initial rebalance
// delay (Kafka's 3 s default would dominate every test), session timeouts
// as short as a test wants, and fast KIP-848 heartbeats and sessions.
func groupSettings() map[string]string {
	return map[string]string{
		"group.initial.rebalance.delay.ms":     "0",
		"group.min.session.timeout.ms":         "100",
		"group.consumer.heartbeat.interval.ms": "100",
		"group.consumer.session.timeout.ms":    "3000",
	}
}

// Client-side timing for classic members: a killed member is noticed
// after testSession, a rebalance within about one testHeartbeat. A leave
// must rebalance in under testSession/2, which tells it from a session
// expiry; the session is long enough for that margin to hold although
// librdkafka heartbeats late (its heartbeats ride its main thread's
// wake-ups, up to fetch.wait.max.ms apart). testRebalance is also
// franz-go's SyncGroup read timeout, so it is long enough to ride out the
// first group write, which creates __consumer_offsets.
const (
	testSession   = 3 * time.Second
	testHeartbeat = 100 * time.Millisecond
	testRebalance = 30 * time.Second
	// balanceWait bounds every wait for a group to settle; generous so
	// that a slow CI machine under -race does not flake.
	balanceWait = 20 * time.Second
)

var errKilled = errors.New("killed by the test")

// killSwitch dials like net.Dialer until it is killed; then it cuts every
// connection it made and refuses new ones. A consumer killed this way
// stops heartbeating without leaving its group, like a crashed process.
type killSwitch struct {
	mu     sync.Mutex
	killed bool
	conns  []net.Conn
}

func (k *killSwitch) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	k.mu.Lock()
	dead := k.killed
	k.mu.Unlock()
	if dead {
		return nil, errKilled
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed {
		c.Close()
		return nil, errKilled
	}
	k.conns = append(k.conns, c)
	return c, nil
}

// Dial is the proxy.Dialer form, for sarama.
func (k *killSwitch) Dial(network, addr string) (net.Conn, error) {
	return k.DialContext(context.Background(), network, addr)
}

func (k *killSwitch) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killed = true
	for _, c := range k.conns {
		c.Close()
	}
	k.conns = nil
}

// ownership records which partitions of one topic each member of a group
// holds, as the members' clients report it, plus every partition a member
// was told to give up. Members that left or were killed no longer count.
type ownership struct {
	mu      sync.Mutex
	owned   map[string]map[int32]bool // member name -> partitions
	revoked map[string][]int32        // member name -> every revoked or lost partition
	assigns map[string]int            // member name -> assignment callbacks seen
	live    map[string]bool
	ids     map[string]func() string // member name -> its current member id, if the client tells
}

func newOwnership() *ownership {
	return &ownership{
		owned:   make(map[string]map[int32]bool),
		revoked: make(map[string][]int32),
		assigns: make(map[string]int),
		live:    make(map[string]bool),
		ids:     make(map[string]func() string),
	}
}

// join registers a live member; id, if not nil, returns its member id.
func (o *ownership) join(name string, id func() string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.live[name] = true
	o.owned[name] = make(map[int32]bool)
	if id != nil {
		o.ids[name] = id
	}
}

// gone marks a member as left or killed: what it still reports is ignored.
func (o *ownership) gone(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.live, name)
}

func (o *ownership) assign(name string, ps []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.live[name] {
		return
	}
	o.assigns[name]++
	for _, p := range ps {
		o.owned[name][p] = true
	}
}

func (o *ownership) revoke(name string, ps []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.live[name] {
		return
	}
	for _, p := range ps {
		delete(o.owned[name], p)
	}
	o.revoked[name] = append(o.revoked[name], ps...)
}

// set replaces a member's partitions (clients that report whole
// assignments rather than changes).
func (o *ownership) set(name string, ps []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.live[name] {
		return
	}
	o.assigns[name]++
	o.owned[name] = make(map[int32]bool)
	for _, p := range ps {
		o.owned[name][p] = true
	}
}

func (o *ownership) partitions(name string) []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return sortedSet(o.owned[name])
}

func (o *ownership) revokedOf(name string) []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.revoked[name])
}

func (o *ownership) assignCount(name string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.assigns[name]
}

func (o *ownership) liveMembers() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for n := range o.live {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// memberIDs maps the live members whose client tells its member id to it.
func (o *ownership) memberIDs() map[string]string {
	o.mu.Lock()
	fns := make(map[string]func() string)
	for n := range o.live {
		if f := o.ids[n]; f != nil {
			fns[n] = f
		}
	}
	o.mu.Unlock()
	out := make(map[string]string, len(fns))
	for n, f := range fns {
		out[n] = f()
	}
	return out
}

// balanced reports why the live members do not (yet) own every one of
// the topic's partitions exactly once with counts differing by at most
// one, or nil if they do.
func (o *ownership) balanced(partitions int32) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.live) == 0 {
		return errors.New("no live members")
	}
	lo := int(partitions) / len(o.live)
	hi := lo
	if int(partitions)%len(o.live) != 0 {
		hi++
	}
	owner := make(map[int32]string)
	for n := range o.live {
		ps := o.owned[n]
		if len(ps) < lo || len(ps) > hi {
			return fmt.Errorf("member %s owns %v; want %d to %d partitions (all: %s)", n, sortedSet(ps), lo, hi, o.describeLocked())
		}
		for p := range ps {
			if prev, dup := owner[p]; dup {
				return fmt.Errorf("partition %d owned by both %s and %s (all: %s)", p, prev, n, o.describeLocked())
			}
			if p < 0 || p >= partitions {
				return fmt.Errorf("member %s owns nonexistent partition %d", n, p)
			}
			owner[p] = n
		}
	}
	if len(owner) != int(partitions) {
		return fmt.Errorf("%d of %d partitions owned (all: %s)", len(owner), partitions, o.describeLocked())
	}
	return nil
}

func (o *ownership) describeLocked() string {
	names := make([]string, 0, len(o.live))
	for n := range o.live {
		names = append(names, n)
	}
	sort.Strings(names)
	s := ""
	for _, n := range names {
		s += fmt.Sprintf("%s=%v ", n, sortedSet(o.owned[n]))
	}
	return s
}

func sortedSet(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// waitFor polls cond until it returns nil, failing the test with its last
// error once the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// classicView is what DescribeGroups says of a classic group: its state
// and each member's partitions of topic.
func classicView(ctx context.Context, adm *kadm.Client, group, topic string) (string, map[string][]int32, error) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return "", nil, err
	}
	d, ok := ds[group]
	if !ok {
		return "", nil, fmt.Errorf("group %s missing from DescribeGroups", group)
	}
	if d.Err != nil {
		return d.State, nil, d.Err
	}
	out := make(map[string][]int32)
	for _, m := range d.Members {
		ps := []int32{}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				if t.Topic == topic {
					ps = append(ps, t.Partitions...)
				}
			}
		}
		slices.Sort(ps)
		out[m.MemberID] = ps
	}
	return d.State, out, nil
}

// consumerView is what ConsumerGroupDescribe says of a KIP-848 group.
func consumerView(ctx context.Context, adm *kadm.Client, group, topic string) (kadm.DescribedConsumerGroup, map[string][]int32, error) {
	ds, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		return kadm.DescribedConsumerGroup{}, nil, err
	}
	d, ok := ds[group]
	if !ok {
		return d, nil, fmt.Errorf("group %s missing from ConsumerGroupDescribe", group)
	}
	if d.Err != nil {
		return d, nil, d.Err
	}
	out := make(map[string][]int32)
	for _, m := range d.Members {
		out[m.MemberID] = sortedTopicSet(m.Assignment, topic)
	}
	return d, out, nil
}

// brokerAgrees checks the broker's view of the group against the members':
// the same members, each with the partitions its client reports.
func brokerAgrees(o *ownership, view map[string][]int32, members int) error {
	if len(view) != members {
		return fmt.Errorf("broker lists %d members %v, want %d", len(view), view, members)
	}
	for name, id := range o.memberIDs() {
		got, ok := view[id]
		if !ok {
			return fmt.Errorf("broker does not list member %s (%s): %v", name, id, view)
		}
		if want := o.partitions(name); !slices.Equal(got, want) {
			return fmt.Errorf("broker says member %s owns %v, its client says %v", name, got, want)
		}
	}
	return nil
}

// waitClassicBalanced waits until the live members own the topic's
// partitions evenly and exclusively and the broker's Stable group agrees.
func waitClassicBalanced(t testing.TB, o *ownership, adm *kadm.Client, group, topic string, partitions int32) {
	t.Helper()
	ctx := testContext(t)
	waitFor(t, balanceWait, "a balanced group "+group, func() error {
		if err := o.balanced(partitions); err != nil {
			return err
		}
		state, view, err := classicView(ctx, adm, group, topic)
		if err != nil {
			return err
		}
		if state != "Stable" {
			return fmt.Errorf("group state %s, want Stable", state)
		}
		return brokerAgrees(o, view, len(o.liveMembers()))
	})
}

// waitConsumerBalanced is waitClassicBalanced for a KIP-848 group, whose
// description must also show every member reconciled at the group epoch.
func waitConsumerBalanced(t testing.TB, o *ownership, adm *kadm.Client, group, topic string, partitions int32) kadm.DescribedConsumerGroup {
	t.Helper()
	ctx := testContext(t)
	var d kadm.DescribedConsumerGroup
	waitFor(t, balanceWait, "a balanced consumer group "+group, func() error {
		if err := o.balanced(partitions); err != nil {
			return err
		}
		var view map[string][]int32
		var err error
		d, view, err = consumerView(ctx, adm, group, topic)
		if err != nil {
			return err
		}
		if d.State != "Stable" || d.Epoch != d.AssignmentEpoch {
			return fmt.Errorf("group state %s epoch %d assignment epoch %d, want Stable at one epoch", d.State, d.Epoch, d.AssignmentEpoch)
		}
		for _, m := range d.Members {
			if m.MemberEpoch != d.Epoch {
				return fmt.Errorf("member %s at epoch %d, group at %d", m.MemberID, m.MemberEpoch, d.Epoch)
			}
			if !slices.Equal(sortedTopicSet(m.Assignment, topic), sortedTopicSet(m.TargetAssignment, topic)) {
				return fmt.Errorf("member %s assignment %v differs from its target %v", m.MemberID, m.Assignment, m.TargetAssignment)
			}
		}
		return brokerAgrees(o, view, len(o.liveMembers()))
	})
	return d
}

// sortedTopicSet lists the partitions of topic in s, sorted.
func sortedTopicSet(s kadm.TopicsSet, topic string) []int32 {
	ps := []int32{}
	for p := range s[topic] {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// kgoMember is one franz-go group consumer.
type kgoMember struct {
	name   string
	cl     *kgo.Client
	ks     *killSwitch
	cancel context.CancelFunc
	o      *ownership
}

// startKgoMember starts a franz-go consumer of topic in group whose
// assignment callbacks feed o.
func startKgoMember(t testing.TB, o *ownership, addr, group, topic, name string, opts ...kgo.Opt) *kgoMember {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := &kgoMember{name: name, ks: &killSwitch{}, cancel: cancel, o: o}
	pick := func(ps map[string][]int32) []int32 { return ps[topic] }
	o.join(name, func() string { id, _ := m.cl.GroupMetadata(); return id })
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, testKgoLogLevel(), func() string {
			return time.Now().Format("15:04:05.000 ") + name + " "
		})))
	}
	m.cl = newClient(t, addr, append([]kgo.Opt{
		kgo.WithContext(ctx),
		kgo.Dialer(m.ks.DialContext),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(testSession),
		kgo.HeartbeatInterval(testHeartbeat),
		kgo.RebalanceTimeout(testRebalance),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { o.assign(name, pick(ps)) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { o.revoke(name, pick(ps)) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { o.revoke(name, pick(ps)) }),
	}, opts...)...)
	return m
}

// leave closes the member, which leaves the group.
func (m *kgoMember) leave() {
	m.cl.Close()
	m.o.gone(m.name)
}

// kill cuts the member off without a goodbye; only its session timeout
// tells the broker it is gone.
func (m *kgoMember) kill() {
	m.o.gone(m.name)
	m.ks.kill()
	m.cancel()
}

func (m *kgoMember) generation() int32 {
	_, gen := m.cl.GroupMetadata()
	return gen
}

// TestGroupFranzBalancers runs classic groups of franz-go consumers with
// each client-side balancer: three members share six partitions evenly
// and exclusively; a member that leaves and one that is killed (found out
// by its session timeout) hand their partitions to the rest; a new member
// gets its share. With the cooperative balancer a departure costs the
// remaining members nothing.
func TestGroupFranzBalancers(t *testing.T) {
	t.Parallel()
	b := startBroker(t, groupSettings())
	adm := newAdmin(t, b.Addr())
	for _, tc := range []struct {
		name        string
		balancer    kgo.GroupBalancer
		cooperative bool
	}{
		{"range", kgo.RangeBalancer(), false},
		{"sticky", kgo.StickyBalancer(), false},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic, group := "balance-"+tc.name, "balance-"+tc.name
			const partitions = 6
			createTopic(t, adm, topic, partitions, nil)
			o := newOwnership()
			var ms []*kgoMember
			for i := range 3 {
				ms = append(ms, startKgoMember(t, o, b.Addr(), group, topic, "m"+strconv.Itoa(i), kgo.Balancers(tc.balancer)))
			}
			waitClassicBalanced(t, o, adm, group, topic, partitions)
			ds, err := adm.DescribeGroups(testContext(t), group)
			if err != nil || ds[group].Protocol != tc.balancer.ProtocolName() {
				t.Fatalf("group protocol %q (%v), want %q", ds[group].Protocol, err, tc.balancer.ProtocolName())
			}

			// A member leaves: its partitions go to the other two.
			revokedBefore := len(o.revokedOf("m1")) + len(o.revokedOf("m2"))
			gone := o.partitions("m0")
			leftAt := time.Now()
			ms[0].leave()
			waitClassicBalanced(t, o, adm, group, topic, partitions)
			if took := time.Since(leftAt); took >= testSession/2 {
				t.Errorf("a leave took %v to rebalance; only the %v session timeout takes that long", took, testSession)
			}
			for _, p := range gone {
				if !slices.Contains(o.partitions("m1"), p) && !slices.Contains(o.partitions("m2"), p) {
					t.Fatalf("partition %d of the member that left went to nobody", p)
				}
			}
			if revokedAfter := len(o.revokedOf("m1")) + len(o.revokedOf("m2")); tc.cooperative && revokedAfter != revokedBefore {
				t.Errorf("cooperative rebalance after a leave revoked %d partitions from the members that stayed", revokedAfter-revokedBefore)
			}

			// A member is killed: after its session times out the last
			// member owns everything.
			killedAt := time.Now()
			ms[1].kill()
			waitClassicBalanced(t, o, adm, group, topic, partitions)
			if took := time.Since(killedAt); took < testSession/2 {
				t.Errorf("killed member's partitions moved after %v, before its %v session could expire", took, testSession)
			}

			// A newcomer gets its share.
			startKgoMember(t, o, b.Addr(), group, topic, "m3", kgo.Balancers(tc.balancer))
			waitClassicBalanced(t, o, adm, group, topic, partitions)
		})
	}
}

// groupProtocol is how a franz-go member joins: the classic protocol with
// a client-side balancer, or KIP-848 with a server-side assignor.
type groupProtocol struct {
	name string
	opts []kgo.Opt
	wait func(t testing.TB, o *ownership, adm *kadm.Client, group, topic string, partitions int32)
}

var groupProtocols = []groupProtocol{
	{"classic", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}, waitClassicBalanced},
	{"consumer", []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer())},
		func(t testing.TB, o *ownership, adm *kadm.Client, group, topic string, partitions int32) {
			t.Helper()
			waitConsumerBalanced(t, o, adm, group, topic, partitions)
		}},
}

// polled gathers the offsets that a group's members consumed, by partition.
type polled struct {
	mu     sync.Mutex
	offs   map[int32][]int64
	n      int
	errors []error
}

// pollMembers polls every member in its own goroutine into a fresh polled,
// until stop is called.
func pollMembers(ms ...*kgoMember) (*polled, func()) {
	pd := &polled{offs: make(map[int32][]int64)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fs := m.cl.PollFetches(ctx)
				pd.mu.Lock()
				fs.EachError(func(topic string, p int32, err error) {
					if ctx.Err() == nil {
						pd.errors = append(pd.errors, fmt.Errorf("%s: fetch %s/%d: %w", m.name, topic, p, err))
					}
				})
				fs.EachRecord(func(r *kgo.Record) {
					pd.offs[r.Partition] = append(pd.offs[r.Partition], r.Offset)
					pd.n++
				})
				pd.mu.Unlock()
			}
		}()
	}
	return pd, func() { cancel(); wg.Wait() }
}

func (pd *polled) count() int {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	return pd.n
}

// distinct counts the different (partition, offset) pairs consumed.
func (pd *polled) distinct() int {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	n := 0
	for _, offs := range pd.offs {
		seen := make(map[int64]bool, len(offs))
		for _, o := range offs {
			if !seen[o] {
				seen[o] = true
				n++
			}
		}
	}
	return n
}

// resumed checks that each partition p was consumed from exactly from[p]:
// every offset from there up to (excluding) to, and nothing before it.
// An offset may come twice: a member that consumed before the group
// settled re-reads from the committed offset after the rebalance, which
// Kafka's at-least-once delivery allows.
func (pd *polled) resumed(from map[int32]int64, to int64) error {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if len(pd.errors) > 0 {
		return pd.errors[0]
	}
	for p, start := range from {
		got := pd.offs[p]
		seen := make(map[int64]bool)
		for _, off := range got {
			if off < start || off >= to {
				return fmt.Errorf("partition %d: consumed offset %d, want only offsets %d to %d (consumed %v)", p, off, start, to-1, got)
			}
			seen[off] = true
		}
		if int64(len(seen)) != to-start {
			return fmt.Errorf("partition %d: consumed %d distinct offsets %v, want %d to %d", p, len(seen), got, start, to-1)
		}
		if len(got) > 0 && got[0] != start {
			return fmt.Errorf("partition %d: consumption began at offset %d, want the committed %d (consumed %v)", p, got[0], start, got)
		}
	}
	return nil
}

// commitSync commits offsets of topic for a member and fails on any error.
func commitSync(t testing.TB, m *kgoMember, topic string, offsets map[int32]int64) {
	t.Helper()
	eo := map[string]map[int32]kgo.EpochOffset{topic: {}}
	for p, o := range offsets {
		eo[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var cerr error
	m.cl.CommitOffsetsSync(testContext(t), eo, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("commit %s/%d: %w", rt.Topic, rp.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		t.Fatalf("%s: commit: %v", m.name, cerr)
	}
}

// wantCommitted checks the group's committed offsets of topic with kadm.
func wantCommitted(t testing.TB, adm *kadm.Client, group, topic string, want map[int32]int64) {
	t.Helper()
	got, err := adm.FetchOffsets(testContext(t), group)
	if err != nil {
		t.Fatalf("FetchOffsets %s: %v", group, err)
	}
	if len(got[topic]) != len(want) {
		t.Fatalf("group %s has commits for %d partitions %v, want %v", group, len(got[topic]), got[topic], want)
	}
	for p, o := range want {
		r, ok := got.Lookup(topic, p)
		if !ok || r.Err != nil || r.At != o {
			t.Fatalf("group %s partition %d: committed %d (%v, present %v), want %d", group, p, r.At, r.Err, ok, o)
		}
	}
}

// TestGroupOffsetsResume commits offsets in the middle of each partition
// and checks that the group's next members resume exactly there: after
// the consumers restart, and after the broker restarts from its data dir.
// Members start from the beginning when they find no commit, so a lost or
// wrong commit shows up as re-read or skipped records.
func TestGroupOffsetsResume(t *testing.T) {
	t.Parallel()
	for _, gp := range groupProtocols {
		t.Run(gp.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b := startBroker(t, groupSettings(), dir)
			adm := newAdmin(t, b.Addr())
			const topic, group, partitions, perPartition = "resume", "resume", 3, 30
			seedNumberedTopic(t, b, adm, topic, partitions, perPartition)

			// run starts two members, checks they consume exactly from
			// start to the end of every partition, then has each commit
			// the given offsets of its partitions and leave.
			round := 0
			run := func(addr string, adm *kadm.Client, start, commit map[int32]int64) {
				t.Helper()
				round++
				o := newOwnership()
				var ms []*kgoMember
				for i := range 2 {
					ms = append(ms, startKgoMember(t, o, addr, group, topic, fmt.Sprintf("r%d-m%d", round, i),
						append([]kgo.Opt{kgo.DisableAutoCommit()}, gp.opts...)...))
				}
				gp.wait(t, o, adm, group, topic, partitions)
				pd, stop := pollMembers(ms...)
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
				stop()
				if err := pd.resumed(start, perPartition); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				for _, m := range ms {
					mine := make(map[int32]int64)
					for _, p := range o.partitions(m.name) {
						mine[p] = commit[p]
					}
					commitSync(t, m, topic, mine)
				}
				for _, m := range ms {
					m.leave()
				}
				wantCommitted(t, adm, group, topic, commit)
			}

			zero := map[int32]int64{0: 0, 1: 0, 2: 0}
			first := map[int32]int64{0: 7, 1: 13, 2: 29}
			second := map[int32]int64{0: 11, 1: 13, 2: 30}
			run(b.Addr(), adm, zero, first)
			// The consumers restart.
			run(b.Addr(), adm, first, second)

			// The broker restarts.
			b.Close()
			b = startBroker(t, groupSettings(), dir)
			adm = newAdmin(t, b.Addr())
			wantCommitted(t, adm, group, topic, second)
			run(b.Addr(), adm, second, second)
		})
	}
}

// TestStaticMemberRestart restarts a static franz-go member
// (group.instance.id) of a classic group within its session timeout: it
// gets its old assignment back without a rebalance, so the generation
// stays and the other member keeps its partitions untouched (range is
// eager: any rebalance would revoke all of them). A static member that
// stays away past its session timeout does lose its partitions.
func TestStaticMemberRestart(t *testing.T) {
	t.Parallel()
	const session = 3 * time.Second
	b := startBroker(t, groupSettings())
	adm := newAdmin(t, b.Addr())
	const topic, group, partitions = "static", "static", 4
	createTopic(t, adm, topic, partitions, nil)
	o := newOwnership()
	start := func(name, instance string) *kgoMember {
		return startKgoMember(t, o, b.Addr(), group, topic, name,
			kgo.InstanceID(instance), kgo.SessionTimeout(session), kgo.Balancers(kgo.RangeBalancer()))
	}
	s1 := start("s1", "s1")
	s2 := start("s2", "s2")
	waitClassicBalanced(t, o, adm, group, topic, partitions)
	s1Parts, s2Parts := o.partitions("s1"), o.partitions("s2")
	gen := s1.generation()
	s2Assigns, s2Revoked := o.assignCount("s2"), len(o.revokedOf("s2"))

	s1.leave() // a static member's close keeps its place in the group
	if ids := instanceIDs(t, adm, group); !slices.Equal(ids, []string{"s1", "s2"}) {
		t.Fatalf("after s1 closed the group lists instances %v, want s1 and s2", ids)
	}
	restarted := time.Now()
	s1b := start("s1-restarted", "s1")
	waitClassicBalanced(t, o, adm, group, topic, partitions)
	if took := time.Since(restarted); took >= session {
		t.Fatalf("restart took %v, not within the %v session timeout; the test proves nothing", took, session)
	}
	if got := o.partitions("s1-restarted"); !slices.Equal(got, s1Parts) {
		t.Errorf("restarted static member got %v, had %v", got, s1Parts)
	}
	if got := s1b.generation(); got != gen {
		t.Errorf("restarted static member is at generation %d, was %d", got, gen)
	}
	if got := s2.generation(); got != gen {
		t.Errorf("the other member moved from generation %d to %d", gen, got)
	}
	if r := o.revokedOf("s2")[s2Revoked:]; len(r) > 0 || o.assignCount("s2") != s2Assigns || !slices.Equal(o.partitions("s2"), s2Parts) {
		t.Errorf("the other member was revoked %v and reassigned %d times; now owns %v, had %v", r, o.assignCount("s2")-s2Assigns, o.partitions("s2"), s2Parts)
	}

	// Away for longer than the session timeout: s2 takes over.
	s1b.leave()
	waitClassicBalanced(t, o, adm, group, topic, partitions)
	if ids := instanceIDs(t, adm, group); !slices.Equal(ids, []string{"s2"}) {
		t.Fatalf("after s1's session expired the group lists instances %v, want s2", ids)
	}
}

// instanceIDs lists a classic group's static members' instance ids, sorted.
func instanceIDs(t testing.TB, adm *kadm.Client, group string) []string {
	t.Helper()
	ds, err := adm.DescribeGroups(testContext(t), group)
	if err != nil || ds[group].Err != nil {
		t.Fatalf("describe %s: %v %v", group, err, ds[group].Err)
	}
	var ids []string
	for _, m := range ds[group].Members {
		if m.InstanceID != nil {
			ids = append(ids, *m.InstanceID)
		}
	}
	sort.Strings(ids)
	return ids
}

func testKgoLogLevel() kgo.LogLevel {
	if os.Getenv("SKIFF_TEST_LOG") == "debug" {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelInfo
}

// seedNumberedTopic creates topic and writes values "0".."perPartition-1"
// to each of its partitions, so a record's value is its offset.
func seedNumberedTopic(t *testing.T, b *broker, adm *kadm.Client, topic string, partitions int32, perPartition int) {
	t.Helper()
	createTopic(t, adm, topic, partitions, nil)
	var recs []*kgo.Record
	for p := range partitions {
		for i := range perPartition {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(strconv.Itoa(i))})
		}
	}
	produceSync(t, newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner())), recs...)
}
