package integration

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/skiffmq/skiff/clusterstate"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rf3 is a partition on brokers 1-3, all in sync, led by leader at epoch.
func rf3(leader, epoch, partitionEpoch int32, isr ...int32) clusterstate.Assignment {
	if isr == nil {
		isr = []int32{1, 2, 3}
	}
	return clusterstate.Assignment{Replicas: []int32{1, 2, 3}, ISR: isr, Leader: leader, LeaderEpoch: epoch, PartitionEpoch: partitionEpoch}
}

// replicatedTopic creates a one-partition topic through broker 1 and
// places it on brokers 1-3 led by broker 1 at epoch 1, then waits until
// every broker has published that.
func replicatedTopic(t *testing.T, c *testCluster, topic string, configs map[string]*string) {
	t.Helper()
	createTopic(t, newAdmin(t, c.brokers[1].Addr()), topic, 1, configs)
	c.assign(t, topic, rf3(1, 1, 1))
	waitLeader(t, c, topic, 1, 1)
}

// waitLeader waits until every broker's Metadata shows leader at epoch.
func waitLeader(t *testing.T, c *testCluster, topic string, leader, epoch int32) {
	t.Helper()
	for id, b := range c.brokers {
		adm := newAdmin(t, b.Addr())
		eventually(t, 20*time.Second, fmt.Sprintf("broker %d to see leader %d at epoch %d", id, leader, epoch), func() bool {
			md, err := adm.Metadata(context.Background(), topic)
			if err != nil {
				return false
			}
			p, ok := md.Topics[topic].Partitions[0]
			return ok && p.Leader == leader && p.LeaderEpoch == epoch
		})
	}
}

// produceNumbered produces values from..to-1 with acks=all through cl,
// failing the test on any error.
func produceNumbered(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := cl.ProduceSync(testContext(t), &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
}

// consumeReplicated reads n records from the start through seed.
func consumeReplicated(t *testing.T, seed []string, topic string, n int) []string {
	t.Helper()
	cl := newClient(t, seed[0], kgo.SeedBrokers(seed...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []string
	ctx := testContext(t)
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d: %v", len(out), n, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

// hwOf is a partition's high watermark as ListOffsets tells it.
func hwOf(t *testing.T, addr, topic string) int64 {
	t.Helper()
	offs, err := newAdmin(t, addr).ListEndOffsets(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offs.Lookup(topic, 0)
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	return o.Offset
}

func isrOf(t *testing.T, c *testCluster, topic string) []int32 {
	return c.assignment(t, topic, 0).ISR
}

// TestReplicationAcksAllIdenticalSegments: with RF=3, records produced
// with acks=all are readable from the leader and, once acknowledged, the
// followers' segment files hold exactly the leader's bytes (offsets,
// leader epochs and producer fields kept), fsynced before they fetched on.
func TestReplicationAcksAllIdenticalSegments(t *testing.T) {
	c := startMemCluster(t, 3, nil)
	replicatedTopic(t, c, "rep", nil)
	cl := newClient(t, c.brokers[1].Addr(), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceNumbered(t, cl, "rep", 0, 200)

	if hw := hwOf(t, c.brokers[1].Addr(), "rep"); hw != 200 {
		t.Fatalf("leader's high watermark %d, want 200", hw)
	}
	got := consumeReplicated(t, []string{c.brokers[1].Addr()}, "rep", 200)
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
	leader := c.segmentBytes(t, 1, "rep", 0)
	for _, id := range []int32{2, 3} {
		// Acknowledged means on every ISR member's disk already.
		if f := c.segmentBytes(t, id, "rep", 0); !bytes.Equal(f, leader) {
			t.Fatalf("broker %d's segments differ from the leader's (%d vs %d bytes)", id, len(f), len(leader))
		}
	}
	if a := c.assignment(t, "rep", 0); len(a.ISR) != 3 {
		t.Fatalf("ISR %v, want all three", a.ISR)
	}
}

// TestReplicationCutLinksShrinkISR: cutting both followers' links to the
// leader keeps an acks=1 record above the high watermark (invisible to
// consumers), shrinks the ISR after replica.lag.time.max.ms, and acks=all
// is then refused with NOT_ENOUGH_REPLICAS (min.insync.replicas=2);
// healing the links brings the followers back into the ISR, and
// everything becomes visible.
func TestReplicationCutLinksShrinkISR(t *testing.T) {
	c := startMemCluster(t, 3, map[string]string{"replica.lag.time.max.ms": "500"})
	replicatedTopic(t, c, "cut", map[string]*string{"min.insync.replicas": kadm.StringPtr("2")})
	all := newClient(t, c.brokers[1].Addr(), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceNumbered(t, all, "cut", 0, 10)

	c.links[2][1].Cut()
	c.links[3][1].Cut()
	one := newClient(t, c.brokers[1].Addr(), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := one.ProduceSync(testContext(t), &kgo.Record{Topic: "cut", Value: []byte("10")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if hw := hwOf(t, c.brokers[1].Addr(), "cut"); hw != 10 {
		t.Fatalf("high watermark %d with the followers cut off, want 10", hw)
	}
	eventually(t, 20*time.Second, "the ISR to shrink to the leader", func() bool {
		return slices.Equal(isrOf(t, c, "cut"), []int32{1})
	})
	// A raw request: franz-go retries NOT_ENOUGH_REPLICAS until its
	// delivery timeout.
	b1 := newClient(t, c.brokers[1].Addr()).SeedBrokers()[0]
	if code := rawProduceCode(t, b1, "cut", topicIDs(t, newAdmin(t, c.brokers[1].Addr()), "cut")["cut"]); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all below min ISR: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
	}
	if hw := hwOf(t, c.brokers[1].Addr(), "cut"); hw != 10 {
		t.Fatalf("high watermark moved to %d below min ISR", hw)
	}

	c.links[2][1].Heal()
	c.links[3][1].Heal()
	eventually(t, 20*time.Second, "the ISR to grow back", func() bool {
		return len(isrOf(t, c, "cut")) == 3
	})
	produceNumbered(t, all, "cut", 11, 20)
	got := consumeReplicated(t, []string{c.brokers[1].Addr()}, "cut", 20)
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
}

// TestReplicationLeaderMoveFencesOldLeader: moving leadership (new
// leader, epoch+1) makes the old leader refuse produce with
// NOT_LEADER_OR_FOLLOWER and a fetch at the old epoch with
// FENCED_LEADER_EPOCH; the producer follows by itself and no acknowledged
// record is lost.
func TestReplicationLeaderMoveFencesOldLeader(t *testing.T) {
	c := startMemCluster(t, 3, nil)
	replicatedTopic(t, c, "move", nil)
	seeds := []string{c.brokers[1].Addr(), c.brokers[2].Addr(), c.brokers[3].Addr()}
	cl := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MetadataMinAge(50*time.Millisecond)) // follow the move at once, not after 5 s
	produceNumbered(t, cl, "move", 0, 100)

	c.assign(t, "move", rf3(2, 2, 2))
	waitLeader(t, c, "move", 2, 2)

	old := newClient(t, seeds[0])
	b1 := old.SeedBrokers()[0]
	ctx := testContext(t)
	topicID := topicIDs(t, newAdmin(t, seeds[0]), "move")["move"]
	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MaxBytes = -1, 0, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "move", topicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.CurrentLeaderEpoch, fp.PartitionMaxBytes = 1, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fresp, err := fetch.RequestWith(ctx, b1)
	if err != nil {
		t.Fatal(err)
	}
	if code := fresp.Topics[0].Partitions[0].ErrorCode; code != kerr.FencedLeaderEpoch.Code {
		t.Fatalf("fetch at the old epoch from the old leader: %v, want FENCED_LEADER_EPOCH", kerr.ErrorForCode(code))
	}
	fp.CurrentLeaderEpoch = 2
	fetch.Topics[0].Partitions[0] = fp
	if fresp, err = fetch.RequestWith(ctx, b1); err != nil {
		t.Fatal(err)
	}
	if code := fresp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch at the new epoch from the old leader: %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
	}
	if code := rawProduceCode(t, b1, "move", topicID); code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to the old leader: %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
	}

	produceNumbered(t, cl, "move", 100, 200)
	got := consumeReplicated(t, []string{seeds[1]}, "move", 200)
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
}

// TestReplicationDivergentTailTruncated: a leader cut off from its
// followers takes acks=1 records that no follower has; leadership moves
// to a follower, which writes other records at those offsets; when the
// old leader returns as a follower, the leader tells it where their logs
// diverge (KIP-320) and it truncates its tail: its segments end up the
// new leader's, byte for byte.
func TestReplicationDivergentTailTruncated(t *testing.T) {
	c := startMemCluster(t, 3, nil)
	replicatedTopic(t, c, "div", nil)
	all := newClient(t, c.brokers[1].Addr(), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceNumbered(t, all, "div", 0, 50)

	c.links[2][1].Cut()
	c.links[3][1].Cut()
	one := newClient(t, c.brokers[1].Addr(), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	for i := range 10 {
		if err := one.ProduceSync(testContext(t), &kgo.Record{Topic: "div", Value: []byte("lost-" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c.assign(t, "div", rf3(2, 2, 2, 2, 3))
	waitLeader(t, c, "div", 2, 2)
	c.links[2][1].Heal()
	c.links[3][1].Heal()

	cl2 := newClient(t, c.brokers[2].Addr(), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceNumbered(t, cl2, "div", 50, 80)
	eventually(t, 20*time.Second, "the old leader to truncate and copy the new leader's log", func() bool {
		return bytes.Equal(c.segmentBytes(t, 1, "div", 0), c.segmentBytes(t, 2, "div", 0))
	})
	got := consumeReplicated(t, []string{c.brokers[2].Addr()}, "div", 80)
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
}

// rawProduceCode sends one acks=all batch straight to broker b (no
// client-side routing or retries) and returns the partition's error code.
func rawProduceCode(t *testing.T, b *kgo.Broker, topic string, id [16]byte) int16 {
	t.Helper()
	req := produceV9(topic, 0, recordBatch("x"))
	req.Topics[0].TopicID = id
	resp, err := req.RequestWith(testContext(t), b)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestReplicationWaitingProduceToldNotLeader: an acks=all produce waiting
// for followers that no longer fetch is answered NOT_LEADER_OR_FOLLOWER as
// soon as leadership moves, not REQUEST_TIMED_OUT at its timeout (Kafka
// completes delayed produces when it stops leading).
func TestReplicationWaitingProduceToldNotLeader(t *testing.T) {
	c := startMemCluster(t, 3, nil)
	replicatedTopic(t, c, "wait", nil)
	all := newClient(t, c.brokers[1].Addr(), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceNumbered(t, all, "wait", 0, 5)
	c.links[2][1].Cut()
	c.links[3][1].Cut()

	b1 := newClient(t, c.brokers[1].Addr()).SeedBrokers()[0]
	id := topicIDs(t, newAdmin(t, c.brokers[1].Addr()), "wait")["wait"]
	codes := make(chan int16, 1)
	go func() {
		req := produceV9("wait", 0, recordBatch("late"))
		req.Topics[0].TopicID = id
		req.TimeoutMillis = 60000
		resp, err := req.RequestWith(context.Background(), b1)
		if err != nil {
			codes <- -1
			return
		}
		codes <- resp.Topics[0].Partitions[0].ErrorCode
	}()
	// The batch is in the leader's log (the latest epoch ends at the log
	// end) but the high watermark cannot pass it.
	adm := newAdmin(t, c.brokers[1].Addr())
	eventually(t, 20*time.Second, "the batch to be appended", func() bool {
		var req kadm.OffsetForLeaderEpochRequest
		req.Add("wait", 0, 1)
		res, err := adm.OffsetForLeaderEpoch(context.Background(), req)
		return err == nil && res["wait"][0].EndOffset == 6
	})
	c.assign(t, "wait", rf3(2, 2, 2, 2, 3))
	select {
	case code := <-codes:
		if code != kerr.NotLeaderForPartition.Code {
			t.Fatalf("waiting produce answered %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
		}
	case <-testContext(t).Done():
		t.Fatal("the waiting produce was never answered")
	}
}

// TestReplicationNewReplicaStartsAtLeaderLogStart: a replica added to a
// partition whose leader deleted its first records (DeleteRecords) is
// answered OFFSET_OUT_OF_RANGE from offset 0, starts its log over at the
// leader's log start, copies the rest and joins the ISR.
func TestReplicationNewReplicaStartsAtLeaderLogStart(t *testing.T) {
	c := startMemCluster(t, 2, nil)
	adm := newAdmin(t, c.brokers[1].Addr())
	createTopic(t, adm, "late", 1, nil)
	alone := clusterstate.Assignment{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1}
	c.assign(t, "late", alone)
	waitLeader(t, c, "late", 1, 1)
	all := newClient(t, c.brokers[1].Addr(), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceNumbered(t, all, "late", 0, 20)
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: "late", Partition: 0, At: 10})
	if res, err := adm.DeleteRecords(testContext(t), del); err != nil || res.Error() != nil {
		t.Fatalf("DeleteRecords: %v %v", err, res.Error())
	}

	c.assign(t, "late", clusterstate.Assignment{Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 2})
	eventually(t, 20*time.Second, "the new replica to join the ISR", func() bool {
		return slices.Equal(isrOf(t, c, "late"), []int32{1, 2})
	})
	produceNumbered(t, all, "late", 20, 25)
	// The follower holds offsets 10-24, which end the leader's log too.
	f, l := c.segmentBytes(t, 2, "late", 0), c.segmentBytes(t, 1, "late", 0)
	if len(f) == 0 || !bytes.HasSuffix(l, f) {
		t.Fatalf("the follower's %d bytes are not the end of the leader's %d", len(f), len(l))
	}
}
