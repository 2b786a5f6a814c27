package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestVersionSweep runs one scenario with franz-go capped at the request
// versions of several Kafka releases, so that old and new encodings of
// every API a client uses reach the broker: topics, produce under each
// codec, fetch, ListOffsets, a consumer group that resumes from its
// commits, group and config admin, idempotent and transactional produce,
// and topic deletion. Every request the clients write is recorded, and the
// sweep checks that each API was spoken at the newest version both sides
// know.
func TestVersionSweep(t *testing.T) {
	for _, tc := range []struct {
		name     string
		versions *kversion.Versions
		// unreachable lists the scenario's APIs whose newest version under
		// the cap is below the broker's minimum: Kafka 0.11 knows only
		// DescribeConfigs v0, which KIP-896 removed in Kafka 4.
		unreachable []kmsg.Key
		kip848      bool // ConsumerGroupHeartbeat v1 is within the cap
	}{
		{"0.11", kversion.V0_11_0(), []kmsg.Key{kmsg.DescribeConfigs}, false},
		{"2.1", kversion.V2_1_0(), nil, false},
		{"2.8", kversion.V2_8_0(), nil, false},
		{"3.9", kversion.V3_9_0(), nil, false},
		{"4.1", kversion.V4_1_0(), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// KIP-848 members learn of a new target assignment only on
			// their next heartbeat, at the broker's interval (5 s by
			// default); a short one keeps the 4.1 run's two rebalances fast.
			b := startBroker(t, map[string]string{
				"group.initial.rebalance.delay.ms":     "0",
				"group.consumer.heartbeat.interval.ms": "250",
			})
			s := &sweep{t: t, b: b, name: tc.name, cap: tc.versions, rec: &sweepRecorder{}, wantUnreachable: tc.unreachable}
			s.brokerRanges = sweepBrokerRanges(t, b.Addr())
			if s.kip848() != tc.kip848 {
				t.Fatalf("KIP-848 groups possible under the cap: %v, want %v (ConsumerGroupHeartbeat cap v%d, broker %v)",
					s.kip848(), tc.kip848, s.capMax(kmsg.ConsumerGroupHeartbeat), s.brokerRanges[int16(kmsg.ConsumerGroupHeartbeat)])
			}
			s.adm = kadm.NewClient(s.client())
			s.run()
		})
	}
}

// sweep is one version-capped run of the scenario against its own broker.
type sweep struct {
	t            *testing.T
	b            *broker
	name         string
	cap          *kversion.Versions
	adm          *kadm.Client
	rec          *sweepRecorder
	brokerRanges map[int16][2]int16 // key -> broker's {min, max}

	wantUnreachable []kmsg.Key // APIs of the scenario the cap cannot speak to Skiff
}

// sweepCodecs are the codecs tried in order; zstd needs Produce v7.
var sweepCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
	attr  uint8 // the batch attributes' compression bits
	minV  int16 // lowest Produce version that may carry it
}{
	{"none", kgo.NoCompression(), 0, 0},
	{"gzip", kgo.GzipCompression(), 1, 0},
	{"snappy", kgo.SnappyCompression(), 2, 0},
	{"lz4", kgo.Lz4Compression(), 3, 0},
	{"zstd", kgo.ZstdCompression(), 4, 7},
}

func (s *sweep) run() {
	start := time.Now()
	codecTopics := s.produceConsumeCodecs()
	s.listOffsets(codecTopics[0])
	s.describeConfigs(codecTopics[0])
	s.consumerGroup(false)
	if s.kip848() {
		s.consumerGroup(true)
	}
	s.transactions()
	s.transactionalCopy()
	s.deleteTopics(codecTopics)
	s.checkVersions()
	s.t.Logf("Kafka %s cap: scenario took %v", s.name, time.Since(start).Round(time.Millisecond))
}

// opts are what every client of this run carries: the version cap and the
// recording dialer.
func (s *sweep) opts(extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{kgo.MaxVersions(s.cap), kgo.Dialer(s.rec.dial), kgo.FetchMaxWait(250 * time.Millisecond)}, extra...)
}

func (s *sweep) client(extra ...kgo.Opt) *kgo.Client {
	return newClient(s.t, s.b.Addr(), s.opts(extra...)...)
}

// capMax is the newest version of key the capped client sends, or -1.
func (s *sweep) capMax(key kmsg.Key) int16 {
	v, ok := s.cap.LookupMaxKeyVersion(int16(key))
	if !ok {
		return -1
	}
	return v
}

// reachable reports whether the capped client and the broker share a
// version of key.
func (s *sweep) reachable(key kmsg.Key) bool {
	r, ok := s.brokerRanges[int16(key)]
	return ok && s.capMax(key) >= r[0]
}

// kip848 reports whether the cap lets kgo run a KIP-848 consumer group:
// it pins ConsumerGroupHeartbeat to v1 (Kafka 4.0+) and falls back to the
// classic protocol below that.
// tv2 reports whether franz-go uses transactions v2 (KIP-890 part 2) under
// the cap: Skiff finalizes transaction.version 2, and the client opts in
// when the cap allows Produce v12, EndTxn v5 and TxnOffsetCommit v5.
func (s *sweep) tv2() bool {
	return s.capMax(kmsg.Produce) >= 12 && s.capMax(kmsg.EndTxn) >= 5 && s.capMax(kmsg.TxnOffsetCommit) >= 5 &&
		s.reachable(kmsg.EndTxn)
}

func (s *sweep) kip848() bool {
	return s.capMax(kmsg.ConsumerGroupHeartbeat) >= 1 && s.reachable(kmsg.ConsumerGroupHeartbeat)
}

func (s *sweep) createTopic(name string, partitions int32, configs map[string]*string) {
	s.t.Helper()
	resp, err := s.adm.CreateTopic(testContext(s.t), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		s.t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
	// CreateTopics before v5 does not echo the partition count: ask
	// Metadata, through a fresh client since kgo caches metadata.
	td, err := kadm.NewClient(s.client()).ListTopics(testContext(s.t), name)
	if err != nil || td[name].Err != nil || len(td[name].Partitions) != int(partitions) {
		s.t.Fatalf("topic %s after create: %v %+v", name, err, td[name])
	}
}

// sweepBase is the first record's timestamp; record i of a codec topic is
// stamped base + i seconds.
var sweepBase = time.Now().Add(-time.Hour).Truncate(time.Second)

// produceConsumeCodecs produces keyed records with headers under each codec
// the Produce version allows, through an idempotent producer, and reads
// them back exactly: offsets, keys, values, headers, timestamps, producer
// id, and the compression of every batch fetched.
func (s *sweep) produceConsumeCodecs() []string {
	t := s.t
	var topics []string
	produceMax := s.capMax(kmsg.Produce)
	for _, c := range sweepCodecs {
		if produceMax < c.minV {
			t.Logf("Kafka %s cap: Produce v%d cannot carry %s; skipped", s.name, produceMax, c.name)
			continue
		}
		topic := "codec-" + c.name
		var configs map[string]*string
		if len(topics) == 0 {
			configs = map[string]*string{"retention.ms": kadm.StringPtr("7200000")}
		}
		s.createTopic(topic, 2, configs)
		topics = append(topics, topic)

		pcl := s.client(kgo.ProducerBatchCompression(c.codec), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		const n = 12
		want := map[int32][]*kgo.Record{}
		var recs []*kgo.Record
		for i := range n {
			p := int32(i % 2)
			r := &kgo.Record{
				Topic:     topic,
				Partition: p,
				Key:       []byte(fmt.Sprintf("%s-key-%d", c.name, i)),
				Value:     []byte(strings.Repeat(strconv.Itoa(i), 20+i*7)),
				Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}, {Key: "codec", Value: []byte(c.name)}, {Key: "empty"}},
				Timestamp: sweepBase.Add(time.Duration(i) * time.Second),
			}
			want[p] = append(want[p], r)
			recs = append(recs, r)
		}
		produceSync(t, pcl, recs...)
		pid, epoch, err := pcl.ProducerID(testContext(t))
		if err != nil || pid < 0 {
			t.Fatalf("%s: idempotent producer id %d: %v", topic, pid, err)
		}

		batches := &sweepBatchCodecs{}
		got := consumeN(t, s.b.Addr(), topic, n, s.opts(kgo.WithHooks(batches))...)
		byPart := map[int32][]*kgo.Record{}
		for _, r := range got {
			byPart[r.Partition] = append(byPart[r.Partition], r)
		}
		for p, ws := range want {
			gs := byPart[p]
			if len(gs) != len(ws) {
				t.Fatalf("%s/%d: read %d records, want %d", topic, p, len(gs), len(ws))
			}
			for i, w := range ws {
				g := gs[i]
				if g.Offset != int64(i) || string(g.Key) != string(w.Key) || string(g.Value) != string(w.Value) ||
					!sameHeaders(g.Headers, w.Headers) || !g.Timestamp.Equal(w.Timestamp) {
					t.Fatalf("%s/%d record %d: got offset %d key %q value %q headers %v ts %v; want key %q value %q headers %v ts %v",
						topic, p, i, g.Offset, g.Key, g.Value, g.Headers, g.Timestamp, w.Key, w.Value, w.Headers, w.Timestamp)
				}
				if g.ProducerID != pid || g.ProducerEpoch != epoch || g.Attrs.IsTransactional() {
					t.Fatalf("%s/%d record %d: producer %d/%d transactional=%v, want idempotent producer %d/%d",
						topic, p, i, g.ProducerID, g.ProducerEpoch, g.Attrs.IsTransactional(), pid, epoch)
				}
			}
		}
		if types := batches.types(); len(types) != 1 || types[0] != c.attr {
			t.Fatalf("%s: fetched batches compressed as %v, want only %d (%s)", topic, types, c.attr, c.name)
		}
	}
	return topics
}

// sweepBatchCodecs records the compression of every batch a consumer reads.
type sweepBatchCodecs struct {
	mu   sync.Mutex
	seen map[uint8]bool
}

func (b *sweepBatchCodecs) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = map[uint8]bool{}
	}
	b.seen[m.CompressionType] = true
}

func (b *sweepBatchCodecs) types() []uint8 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uint8
	for c := range b.seen {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// listOffsets checks earliest, latest and by-timestamp lookups on a codec
// topic: partition p holds records i = p, p+2, ... stamped base + i s.
func (s *sweep) listOffsets(topic string) {
	t := s.t
	ctx := testContext(t)
	starts, err := s.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	ends, err := s.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	for p := range int32(2) {
		if o, _ := starts.Lookup(topic, p); o.Err != nil || o.Offset != 0 {
			t.Errorf("earliest of %s/%d: %d (%v), want 0", topic, p, o.Offset, o.Err)
		}
		if o, _ := ends.Lookup(topic, p); o.Err != nil || o.Offset != 6 {
			t.Errorf("latest of %s/%d: %d (%v), want 6", topic, p, o.Offset, o.Err)
		}
	}
	for _, at := range []time.Duration{-time.Minute, 0, 1500 * time.Millisecond, 4 * time.Second, 7 * time.Second, 10 * time.Second, 11 * time.Second, time.Hour} {
		offs, err := s.adm.ListOffsetsAfterMilli(ctx, sweepBase.Add(at).UnixMilli(), topic)
		if err != nil {
			t.Fatalf("list offsets after %v: %v", at, err)
		}
		for p := range int32(2) {
			// The first record of p at or after at: record i = 2k+p.
			want, wantTS := int64(-1), int64(-1) // -1: p has no record that new
			for k := range 6 {
				ts := sweepBase.Add(time.Duration(2*k+int(p)) * time.Second)
				if !ts.Before(sweepBase.Add(at)) {
					want, wantTS = int64(k), ts.UnixMilli()
					break
				}
			}
			if raw := s.listOffset(topic, p, sweepBase.Add(at).UnixMilli(), false); raw != want {
				t.Errorf("%s/%d ListOffsets for time base%+v: %d, want %d", topic, p, at, raw, want)
			}
			if want < 0 {
				want = 6 // kadm asks again for the end offset
			}
			o, _ := offs.Lookup(topic, p)
			if o.Err != nil || o.Offset != want {
				t.Errorf("%s/%d offset for time base%+v: %d (%v), want %d", topic, p, at, o.Offset, o.Err, want)
			}
			// ListOffsets v0 has no timestamps; v1+ returns the record's.
			if o.Err == nil && want >= 0 && o.Timestamp != wantTS {
				t.Errorf("%s/%d offset for time base%+v: timestamp %d, want %d", topic, p, at, o.Timestamp, wantTS)
			}
		}
	}
}

// describeConfigs reads back the override set at creation and a default.
// DescribeConfigs v0 (all Kafka 0.11 knows) is below the KIP-896 minimum
// Skiff shares with Kafka 4, so there the client must refuse to send it.
func (s *sweep) describeConfigs(topic string) {
	t := s.t
	rcs, err := s.adm.DescribeTopicConfigs(testContext(t), topic)
	if !s.reachable(kmsg.DescribeConfigs) {
		if err == nil || !strings.Contains(err.Error(), "broker is too old") {
			t.Fatalf("DescribeConfigs capped at v%d (broker min v%d): got %v %+v, want the client's broker-too-old error",
				s.capMax(kmsg.DescribeConfigs), s.brokerRanges[int16(kmsg.DescribeConfigs)][0], err, rcs)
		}
		t.Logf("Kafka %s cap: DescribeConfigs v%d unreachable as expected: %v", s.name, s.capMax(kmsg.DescribeConfigs), err)
		return
	}
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs of %s: %v %v", topic, err, rc.Err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	if c := got["retention.ms"]; c.Value == nil || *c.Value != "7200000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms: %+v, want 7200000 from DYNAMIC_TOPIC_CONFIG", c)
	}
	if c := got["segment.bytes"]; c.Value == nil || *c.Value != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("segment.bytes: %+v, want 1073741824 from DEFAULT_CONFIG", c)
	}
	if len(got) < 30 {
		t.Errorf("only %d topic configs described", len(got))
	}
}

// sweepMember is one consumer of the sweep's group: it commits what each
// poll returned before it lets a rebalance happen, so that the group's
// commits always match what was handed out.
type sweepMember struct {
	cl        *kgo.Client
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// sweepGroupLog is what the group's members consumed.
type sweepGroupLog struct {
	mu     sync.Mutex
	seen   map[int32][]*kgo.Record
	member map[int32]map[string]bool // partition -> member ids that read it
	errs   []error
	total  int
}

func (l *sweepGroupLog) add(memberID string, recs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		l.seen[r.Partition] = append(l.seen[r.Partition], r)
		if l.member[r.Partition] == nil {
			l.member[r.Partition] = map[string]bool{}
		}
		l.member[r.Partition][memberID] = true
		l.total++
	}
}

func (l *sweepGroupLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *sweepGroupLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func newSweepGroupLog() *sweepGroupLog {
	return &sweepGroupLog{seen: map[int32][]*kgo.Record{}, member: map[int32]map[string]bool{}}
}

func (s *sweep) startMember(group, topic string, log *sweepGroupLog, kip848 bool) *sweepMember {
	opts := s.opts(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if kip848 {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.b.Addr())}, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &sweepMember{cl: cl, cancel: cancel, done: make(chan struct{})}
	s.t.Cleanup(m.close)
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			fs.EachError(func(topic string, p int32, err error) {
				if ctx.Err() == nil {
					log.fail(fmt.Errorf("fetch %s/%d: %w", topic, p, err))
				}
			})
			if recs := fs.Records(); len(recs) > 0 {
				if err := cl.CommitRecords(ctx, recs...); err != nil {
					log.fail(fmt.Errorf("commit: %w", err))
				} else {
					id, _ := cl.GroupMetadata()
					log.add(id, recs)
				}
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

// close stops polling and leaves the group.
func (m *sweepMember) close() {
	m.closeOnce.Do(func() {
		m.cancel()
		<-m.done
		m.cl.Close()
	})
}

// waitRangeAssigned waits until the group is Stable with two members
// holding two of the four partitions each, and checks the range split. A
// classic group's client-side range balancer gives the member with the
// lower id 0 and 1; Kafka's server-side range assignor (KIP-848) is
// sticky, so which member keeps 0 and 1 depends on who came first.
func (s *sweep) waitRangeAssigned(group, topic string, kip848 bool) map[string][]int32 {
	t := s.t
	t.Helper()
	ctx := testContext(t)
	assigned := map[string][]int32{}
	var protocolType, protocol string
	eventually(t, 30*time.Second, "two members assigned "+topic, func() bool {
		clear(assigned)
		if kip848 {
			dg, err := s.adm.DescribeConsumerGroups(ctx, group)
			g := dg[group]
			if err != nil || g.Err != nil || g.State != "Stable" || len(g.Members) != 2 {
				return false
			}
			protocolType, protocol = "consumer", g.AssignorName
			for _, m := range g.Members {
				ps := m.Assignment.Sorted()
				if len(ps) != 1 || ps[0].Topic != topic || len(ps[0].Partitions) != 2 {
					return false
				}
				// Settled: the member owns its target.
				if tps := m.TargetAssignment.Sorted(); len(tps) != 1 || !slices.Equal(slices.Sorted(slices.Values(tps[0].Partitions)), slices.Sorted(slices.Values(ps[0].Partitions))) {
					return false
				}
				assigned[m.MemberID] = slices.Sorted(slices.Values(ps[0].Partitions))
			}
			return true
		}
		dg, err := s.adm.DescribeGroups(ctx, group)
		g := dg[group]
		if err != nil || g.Err != nil || g.State != "Stable" || len(g.Members) != 2 {
			return false
		}
		protocolType, protocol = g.ProtocolType, g.Protocol
		for _, m := range g.Members {
			c, ok := m.Assigned.AsConsumer()
			if !ok || len(c.Topics) != 1 || c.Topics[0].Topic != topic || len(c.Topics[0].Partitions) != 2 {
				return false
			}
			assigned[m.MemberID] = slices.Sorted(slices.Values(c.Topics[0].Partitions))
		}
		return true
	})
	if protocolType != "consumer" || protocol != "range" {
		t.Fatalf("group %s: protocol type %q protocol %q, want consumer/range", group, protocolType, protocol)
	}
	ids := slices.Sorted(maps.Keys(assigned))
	lo, hi := assigned[ids[0]], assigned[ids[1]]
	if kip848 && lo[0] == 2 {
		lo, hi = hi, lo
	}
	if !slices.Equal(lo, []int32{0, 1}) || !slices.Equal(hi, []int32{2, 3}) {
		t.Fatalf("range assignment %v, want one member on 0,1 and the other on 2,3 (classic: the lower id on 0,1)", assigned)
	}
	return assigned
}

// checkSweepGroupLog checks that the members read offsets from..to-1 of
// every partition exactly once and in order, with the values produced,
// and, given the assignment, that each read only its own partitions.
func checkSweepGroupLog(t *testing.T, log *sweepGroupLog, partitions int32, from, to int64, assigned map[string][]int32) {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, err := range log.errs {
		t.Errorf("group member: %v", err)
	}
	for p := range partitions {
		var got []string
		for _, r := range log.seen[p] {
			got = append(got, fmt.Sprintf("%d=%s", r.Offset, r.Value))
		}
		var want []string
		for o := from; o < to; o++ {
			want = append(want, fmt.Sprintf("%d=g-%d-%d", o, p, o))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("group read of partition %d: %v, want %v", p, got, want)
		}
		for id := range log.member[p] {
			if assigned != nil && !slices.Contains(assigned[id], p) {
				t.Fatalf("member %s read partition %d, assigned %v", id, p, assigned[id])
			}
		}
	}
}

// consumerGroup runs two range-balanced members over four partitions,
// checks what each read and committed, stops them, and starts two new
// members that must resume exactly at the commits.
func (s *sweep) consumerGroup(kip848 bool) {
	t := s.t
	const partitions, perRound = int32(4), 5
	topic, group := "grouped", "sweep-group"
	if kip848 {
		topic, group = "grouped-848", "sweep-group-848"
	}
	s.createTopic(topic, partitions, nil)
	producer := s.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceRound := func(round int) {
		var recs []*kgo.Record
		for p := range partitions {
			for i := range perRound {
				o := round*perRound + i
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(strconv.Itoa(o)), Value: fmt.Appendf(nil, "g-%d-%d", p, o)})
			}
		}
		produceSync(t, producer, recs...)
	}
	waitRead := func(log *sweepGroupLog, n int) {
		eventually(t, 30*time.Second, fmt.Sprintf("the group to read %d records", n), func() bool { return log.count() >= n })
	}
	ctx := testContext(t)

	// Round one: both members are assigned before anything is produced,
	// so each reads exactly its own partitions.
	log := newSweepGroupLog()
	m1 := s.startMember(group, topic, log, kip848)
	m2 := s.startMember(group, topic, log, kip848)
	assigned := s.waitRangeAssigned(group, topic, kip848)
	heartbeat := kmsg.Heartbeat
	if kip848 {
		heartbeat = kmsg.ConsumerGroupHeartbeat
	}
	eventually(t, 10*time.Second, "a heartbeat", func() bool { return len(s.rec.snapshot()[int16(heartbeat)]) > 0 })
	produceRound(0)
	waitRead(log, int(partitions)*perRound)
	checkSweepGroupLog(t, log, partitions, 0, perRound, assigned)
	lg, err := s.adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	wantType := "" // ListGroups v5 (KIP-848) adds the group type
	if s.capMax(kmsg.ListGroups) >= 5 {
		wantType = "classic"
		if kip848 {
			wantType = "consumer"
		}
	}
	wantState := "" // ListGroups v4 adds the state
	if s.capMax(kmsg.ListGroups) >= 4 {
		wantState = "Stable"
	}
	if l, ok := lg[group]; !ok || l.ProtocolType != "consumer" || l.GroupType != wantType || l.State != wantState {
		t.Fatalf("list groups: %+v, want %s with protocol type consumer, group type %q, state %q", lg, group, wantType, wantState)
	}
	s.wantCommitted(group, topic, partitions, perRound)

	// Restart: the members leave, more records arrive, new members resume
	// at the commits and read only those.
	m1.close()
	m2.close()
	eventually(t, 15*time.Second, "the group to empty", func() bool {
		if kip848 {
			dg, err := s.adm.DescribeConsumerGroups(ctx, group)
			return err == nil && dg[group].State == "Empty" && len(dg[group].Members) == 0
		}
		dg, err := s.adm.DescribeGroups(ctx, group)
		return err == nil && dg[group].State == "Empty" && len(dg[group].Members) == 0
	})
	produceRound(1)
	log = newSweepGroupLog()
	m3 := s.startMember(group, topic, log, kip848)
	m4 := s.startMember(group, topic, log, kip848)
	waitRead(log, int(partitions)*perRound)
	s.waitRangeAssigned(group, topic, kip848)
	checkSweepGroupLog(t, log, partitions, perRound, 2*perRound, nil)
	m3.close()
	m4.close()
	s.wantCommitted(group, topic, partitions, 2*perRound)
	if log.count() != int(partitions)*perRound {
		t.Fatalf("after the restart the group read %d records, want %d", log.count(), int(partitions)*perRound)
	}
}

// wantCommitted checks the group's committed offsets through kadm.
func (s *sweep) wantCommitted(group, topic string, partitions int32, at int64) {
	t := s.t
	t.Helper()
	offs, err := s.adm.FetchOffsets(testContext(t), group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	if n := len(offs[topic]); n != int(partitions) {
		t.Fatalf("fetch offsets: %d partitions committed, want %d: %+v", n, partitions, offs)
	}
	for p := range partitions {
		if o, ok := offs.Lookup(topic, p); !ok || o.Err != nil || o.At != at {
			t.Fatalf("committed offset of %s/%d: %+v, want %d", topic, p, o, at)
		}
	}
}

// transactions runs an aborted and a committed transaction and reads the
// partition back at both isolation levels.
func (s *sweep) transactions() {
	t := s.t
	const topic = "txn"
	s.createTopic(topic, 1, nil)
	cl := s.client(kgo.TransactionalID("sweep-"+s.name), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTxn(t, cl, topic, false, "a1", "a2", "a3")
	produceTxn(t, cl, topic, true, "c1", "c2")
	pid, epoch, err := cl.ProducerID(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	// a1..a3 at 0-2, abort marker 3, c1 c2 at 4-5, commit marker 6.
	if hw, lso := s.endOffset(topic, false), s.endOffset(topic, true); hw != 7 || lso != 7 {
		t.Fatalf("high watermark %d, last stable offset %d; want 7 and 7", hw, lso)
	}
	// Under transactions v2 every EndTxn bumped the epoch: the aborted
	// batches are two epochs back, the committed ones one.
	wantEpoch := func(offset int64) int16 {
		switch {
		case !s.tv2():
			return epoch
		case offset < 3:
			return epoch - 2
		}
		return epoch - 1
	}
	committed := s.readTxn(topic, true, 5, pid, wantEpoch)
	if got := strings.Join(committed, ","); got != "4=c1,5=c2" {
		t.Fatalf("read_committed: %s, want 4=c1,5=c2", got)
	}
	all := s.readTxn(topic, false, 5, pid, wantEpoch)
	if got := strings.Join(all, ","); got != "0=a1,1=a2,2=a3,4=c1,5=c2" {
		t.Fatalf("read_uncommitted: %s", got)
	}
}

// transactionalCopy copies the classic group's topic to another topic
// with a GroupTransactSession, so that each transaction also commits the
// group's offsets (AddOffsetsToTxn, TxnOffsetCommit); the committed copy
// and the group's offsets must match the input exactly.
func (s *sweep) transactionalCopy() {
	t := s.t
	const in, out, group, total = "grouped", "eos-out", "sweep-eos", 40
	s.createTopic(out, 1, nil)
	sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{kgo.SeedBrokers(s.b.Addr())}, s.opts(
		kgo.TransactionalID("sweep-eos-"+s.name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.DefaultProduceTopic(out),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.HeartbeatInterval(200*time.Millisecond),
	)...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx := testContext(t)
	want := map[string]bool{}
	for copied := 0; copied < total; {
		fs := sess.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("copied %d of %d records before the deadline", copied, total)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			key := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
			want[key+"="+string(r.Value)] = true
			recs = append(recs, &kgo.Record{Key: []byte(key), Value: r.Value})
		})
		if err := sess.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce in transaction: %v", err)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil || !committed {
			t.Fatalf("end transaction: committed=%v %v", committed, err)
		}
		copied += len(recs)
	}
	if len(want) != total {
		t.Fatalf("the session read %d distinct records, want %d", len(want), total)
	}
	s.wantCommitted(group, in, 4, total/4)
	if hw, lso := s.endOffset(out, false), s.endOffset(out, true); hw != lso {
		t.Fatalf("%s: high watermark %d, last stable offset %d: a transaction was left open", out, hw, lso)
	}
	got := map[string]bool{}
	for _, r := range consumeN(t, s.b.Addr(), out, total, s.opts(kgo.FetchIsolationLevel(kgo.ReadCommitted()))...) {
		kv := string(r.Key) + "=" + string(r.Value)
		if got[kv] || !want[kv] || !r.Attrs.IsTransactional() {
			t.Fatalf("%s: record %s (transactional=%v) is a duplicate or was never read", out, kv, r.Attrs.IsTransactional())
		}
		got[kv] = true
	}
	if len(got) != total {
		t.Fatalf("%s holds %d records, want %d", out, len(got), total)
	}
}

// endOffset asks ListOffsets for partition 0's latest offset at an
// isolation level: the high watermark or the last stable offset.
func (s *sweep) endOffset(topic string, committed bool) int64 {
	s.t.Helper()
	return s.listOffset(topic, 0, -1, committed)
}

// listOffset sends one ListOffsets for a partition and timestamp (-1
// latest, -2 earliest) through the capped client.
func (s *sweep) listOffset(topic string, partition int32, timestamp int64, committed bool) int64 {
	t := s.t
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, timestamp
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), s.client())
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("ListOffsets %s/%d at %d: %v", topic, partition, timestamp, kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

// readTxn reads partition 0 until it has seen offset last and returns
// "offset=value" of every record, checking that each is transactional
// and from the given producer, at the epoch wantEpoch gives for its offset.
func (s *sweep) readTxn(topic string, committed bool, last, pid int64, wantEpoch func(offset int64) int16) []string {
	t := s.t
	t.Helper()
	opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}})}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := s.client(opts...)
	ctx := testContext(t)
	var out []string
	for seen := int64(-1); seen < last; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s (committed=%v): timed out with %v", topic, committed, out)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if epoch := wantEpoch(r.Offset); !r.Attrs.IsTransactional() || r.ProducerID != pid || r.ProducerEpoch != epoch {
				t.Errorf("record %d: transactional=%v producer %d/%d, want transactional from %d/%d",
					r.Offset, r.Attrs.IsTransactional(), r.ProducerID, r.ProducerEpoch, pid, epoch)
			}
			out = append(out, fmt.Sprintf("%d=%s", r.Offset, r.Value))
			seen = max(seen, r.Offset)
		})
	}
	return out
}

// deleteTopics deletes the codec topics and checks they are gone.
func (s *sweep) deleteTopics(topics []string) {
	t := s.t
	ctx := testContext(t)
	resps, err := s.adm.DeleteTopics(ctx, topics...)
	if err != nil {
		t.Fatalf("delete topics: %v", err)
	}
	for _, topic := range topics {
		if r := resps[topic]; r.Err != nil {
			t.Fatalf("delete %s: %v", topic, r.Err)
		}
	}
	td, err := kadm.NewClient(s.client()).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, name := range td.Names() {
		if strings.HasPrefix(name, "codec-") {
			left = append(left, name)
		}
	}
	if len(left) != 0 || !td.Has("grouped") || !td.Has("txn") {
		t.Fatalf("topics after delete: %v", td.Names())
	}
	resps, err = s.adm.DeleteTopics(ctx, topics[0])
	if err != nil || !errors.Is(resps[topics[0]].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("deleting %s again: %v %v, want UNKNOWN_TOPIC_OR_PARTITION", topics[0], err, resps[topics[0]].Err)
	}
}

// checkVersions checks that the scenario spoke every API it needs, each at
// the newest version both the cap and the broker know (the client never
// goes below the broker's minimum), and that an API below the broker's
// minimum was never sent.
func (s *sweep) checkVersions() {
	t := s.t
	seen := s.rec.snapshot()
	var summary []string
	kip848Keys := []kmsg.Key{kmsg.ConsumerGroupHeartbeat, kmsg.ConsumerGroupDescribe}
	if !s.kip848() {
		for _, key := range kip848Keys {
			if vs := seen[int16(key)]; len(vs) != 0 {
				t.Errorf("%s sent at %v under a cap without KIP-848 v1", key.Name(), vs)
			}
		}
		kip848Keys = nil
	}
	var unreachable []kmsg.Key
	for _, key := range append([]kmsg.Key{
		kmsg.ApiVersions, kmsg.Metadata, kmsg.CreateTopics, kmsg.DeleteTopics,
		kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.InitProducerID,
		kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.LeaveGroup,
		kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.ListGroups, kmsg.DescribeGroups,
		kmsg.DescribeConfigs, kmsg.AddPartitionsToTxn, kmsg.EndTxn, kmsg.AddOffsetsToTxn, kmsg.TxnOffsetCommit,
	}, kip848Keys...) {
		vs := seen[int16(key)]
		r := s.brokerRanges[int16(key)]
		if !s.reachable(key) {
			if len(vs) != 0 {
				t.Errorf("%s sent at %v although the cap's v%d is below the broker's minimum v%d", key.Name(), vs, s.capMax(key), r[0])
			}
			summary = append(summary, fmt.Sprintf("%s=unreachable(cap v%d < min v%d)", key.Name(), s.capMax(key), r[0]))
			unreachable = append(unreachable, key)
			continue
		}
		want := min(s.capMax(key), r[1])
		switch key {
		case kmsg.AddPartitionsToTxn, kmsg.AddOffsetsToTxn:
			if s.tv2() {
				// Transactions v2: Produce v12 and TxnOffsetCommit v5 add
				// their partitions themselves.
				if len(vs) != 0 {
					t.Errorf("%s sent at %v under transactions v2", key.Name(), vs)
				}
				summary = append(summary, key.Name()+"=none(tv2)")
				continue
			}
			if key == kmsg.AddPartitionsToTxn {
				want = min(want, 3) // v4+ is for brokers only (KIP-890)
			}
		case kmsg.EndTxn, kmsg.TxnOffsetCommit:
			// v5 is KIP-890 part 2, which clients use only when the cap
			// allows all of its versions (see tv2).
			if !s.tv2() {
				want = min(want, 4)
			}
		}
		if len(vs) == 0 || slices.Max(vs) != want || slices.Min(vs) < r[0] {
			t.Errorf("%s sent at versions %v, want up to v%d (cap v%d, broker v%d-%d)", key.Name(), vs, want, s.capMax(key), r[0], r[1])
		}
		summary = append(summary, fmt.Sprintf("%s=%v", key.Name(), vs))
	}
	if !slices.Equal(unreachable, s.wantUnreachable) {
		t.Errorf("APIs unreachable under the cap: %v, want %v", unreachable, s.wantUnreachable)
	}
	t.Logf("Kafka %s cap: versions sent: %s", s.name, strings.Join(summary, " "))
}

// sweepBrokerRanges asks the broker's ApiVersions for each key's range.
func sweepBrokerRanges(t *testing.T, addr string) map[int16][2]int16 {
	t.Helper()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(testContext(t), newClient(t, addr))
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
	}
	out := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		out[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return out
}

// sweepRecorder notes the API key and version of every request written on
// the connections it dials.
type sweepRecorder struct {
	mu   sync.Mutex
	seen map[int16]map[int16]bool
}

func (r *sweepRecorder) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &sweepRecordingConn{Conn: c, rec: r}, nil
}

func (r *sweepRecorder) add(key, version int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[int16]map[int16]bool{}
	}
	if r.seen[key] == nil {
		r.seen[key] = map[int16]bool{}
	}
	r.seen[key][version] = true
}

// snapshot returns each key's versions, sorted.
func (r *sweepRecorder) snapshot() map[int16][]int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[int16][]int16{}
	for k, vs := range r.seen {
		for v := range vs {
			out[k] = append(out[k], v)
		}
		slices.Sort(out[k])
	}
	return out
}

// sweepRecordingConn parses the request stream it writes: each request is a
// 4-byte size, then the header's api key and version. kgo writes each
// connection from one goroutine, so it needs no lock.
type sweepRecordingConn struct {
	net.Conn
	rec  *sweepRecorder
	hdr  []byte
	skip int
}

func (c *sweepRecordingConn) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		if c.skip > 0 {
			n := min(c.skip, len(rest))
			c.skip -= n
			rest = rest[n:]
			continue
		}
		n := min(8-len(c.hdr), len(rest))
		c.hdr = append(c.hdr, rest[:n]...)
		rest = rest[n:]
		if len(c.hdr) == 8 {
			size := int(binary.BigEndian.Uint32(c.hdr))
			c.rec.add(int16(binary.BigEndian.Uint16(c.hdr[4:])), int16(binary.BigEndian.Uint16(c.hdr[6:])))
			c.skip = size - 4
			c.hdr = c.hdr[:0]
		}
	}
	return c.Conn.Write(p)
}
