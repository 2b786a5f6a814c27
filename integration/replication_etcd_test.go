package integration

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Replication on the etcd cluster mode (startCluster): placement by the
// etcd Node, followers finding their leaders through the brokers'
// registrations, ISR changes and leader elections saved in etcd.

// etcdPartition is partition 0 of topic as broker b's Metadata shows it.
func etcdPartition(t *testing.T, b *clusterBroker, topic string) (kadm.PartitionDetail, bool) {
	t.Helper()
	md, err := newAdmin(t, b.Addr()).Metadata(context.Background(), topic)
	if err != nil || md.Topics[topic].Err != nil {
		return kadm.PartitionDetail{}, false
	}
	p, ok := md.Topics[topic].Partitions[0]
	return p, ok
}

// etcdReplicatedTopic creates a one-partition RF=3 topic and returns its
// leader once every broker's Metadata names the same one with all three
// in the ISR.
func etcdReplicatedTopic(t *testing.T, bs []*clusterBroker, topic string, configs map[string]*string) *clusterBroker {
	t.Helper()
	adm := kadm.NewClient(newClient(t, bs[0].Addr(), kgo.SeedBrokers(clusterSeeds(bs)...)))
	if r, err := adm.CreateTopic(testContext(t), 1, 3, configs, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	var leader int32 = -1
	for _, b := range bs {
		eventually(t, 30*time.Second, fmt.Sprintf("broker %d to publish %s with 3 in sync", b.id, topic), func() bool {
			p, ok := etcdPartition(t, b, topic)
			if !ok || p.Leader < 1 || len(p.ISR) != 3 || (leader >= 0 && p.Leader != leader) {
				return false
			}
			leader = p.Leader
			return true
		})
	}
	return bs[leader-1]
}

// TestReplicationEtcdAcksAllIdenticalSegments: on three brokers sharing
// etcd, records produced with acks=all to an RF=3 topic are readable from
// the leader and, once acknowledged, every follower's segment files hold
// exactly the leader's bytes.
func TestReplicationEtcdAcksAllIdenticalSegments(t *testing.T) {
	bs := startCluster(t, 3, nil)
	leader := etcdReplicatedTopic(t, bs, "rep", nil)
	cl := newClient(t, bs[0].Addr(), kgo.SeedBrokers(clusterSeeds(bs)...), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceNumbered(t, cl, "rep", 0, 200)

	got := consumeReplicated(t, clusterSeeds(bs), "rep", 200)
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
	want := segmentBytesIn(t, leader.dir, "rep", 0)
	if len(want) == 0 {
		t.Fatal("the leader's segments are empty")
	}
	for _, b := range bs {
		if f := segmentBytesIn(t, b.dir, "rep", 0); !bytes.Equal(f, want) {
			t.Fatalf("broker %d's segments differ from leader %d's (%d vs %d bytes)", b.id, leader.id, len(f), len(want))
		}
	}
	if p, _ := etcdPartition(t, bs[0], "rep"); len(p.ISR) != 3 {
		t.Fatalf("ISR %v, want all three", p.ISR)
	}
}

// TestReplicationEtcdCutLinksShrinkISR: followers fetch from the leader's
// registered REPLICATION listener (inter.broker.listener.name), which a
// proxy fronts. Cutting the leader's proxy keeps an acks=1 record above
// the high watermark, shrinks the ISR in etcd after
// replica.lag.time.max.ms, and acks=all is refused with
// NOT_ENOUGH_REPLICAS (min.insync.replicas=2); clients on the PLAINTEXT
// listener are not affected. Healing brings the ISR back to three and
// everything becomes visible, in order.
func TestReplicationEtcdCutLinksShrinkISR(t *testing.T) {
	proxies := map[int]*linkProxy{}
	for i := 1; i <= 3; i++ {
		proxies[i] = newLinkProxy(t, "")
	}
	bs := startClusterEach(t, 3, func(i int) map[string]string {
		return map[string]string{
			"listeners":                      "PLAINTEXT://127.0.0.1:0,REPLICATION://127.0.0.1:0",
			"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,REPLICATION:PLAINTEXT",
			"advertised.listeners":           "REPLICATION://" + proxies[i].Addr(),
			"inter.broker.listener.name":     "REPLICATION",
			"replica.lag.time.max.ms":        "500",
		}
	})
	for _, b := range bs {
		proxies[int(b.id)].SetTarget(b.BoundListenerAddr("REPLICATION"))
	}
	leader := etcdReplicatedTopic(t, bs, "cut", map[string]*string{"min.insync.replicas": kadm.StringPtr("2")})
	seeds := clusterSeeds(bs)
	all := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceNumbered(t, all, "cut", 0, 10)

	proxies[int(leader.id)].Cut()
	one := newClient(t, leader.Addr(), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := one.ProduceSync(testContext(t), &kgo.Record{Topic: "cut", Value: []byte("10")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if hw := hwOf(t, leader.Addr(), "cut"); hw != 10 {
		t.Fatalf("high watermark %d with the followers cut off, want 10", hw)
	}
	eventually(t, 20*time.Second, "the ISR in etcd to shrink to the leader", func() bool {
		p, ok := etcdPartition(t, bs[0], "cut")
		return ok && slices.Equal(p.ISR, []int32{leader.id})
	})
	b := newClient(t, leader.Addr()).SeedBrokers()[0]
	if code := rawProduceCode(t, b, "cut", topicIDs(t, newAdmin(t, leader.Addr()), "cut")["cut"]); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all below min ISR: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
	}
	if hw := hwOf(t, leader.Addr(), "cut"); hw != 10 {
		t.Fatalf("high watermark moved to %d below min ISR", hw)
	}

	proxies[int(leader.id)].Heal()
	eventually(t, 20*time.Second, "the ISR to grow back to three", func() bool {
		p, ok := etcdPartition(t, bs[0], "cut")
		return ok && len(p.ISR) == 3
	})
	produceNumbered(t, all, "cut", 11, 20)
	got := consumeReplicated(t, seeds, "cut", 20)
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
}

// TestClusterLeaderStoppedIdempotentAcksAllExactlyOnce: RF=3 with
// min.insync.replicas=2 on three brokers sharing etcd. A franz-go
// idempotent producer writes numbered records with acks=all while the
// partition's leader is stopped; the controller elects an ISR member
// with the next leader epoch, the producer follows by itself, and every
// acknowledged record is read back from the new leader exactly once, in
// order (records whose acknowledgement was lost may appear too, once).
func TestClusterLeaderStoppedIdempotentAcksAllExactlyOnce(t *testing.T) {
	bs := startCluster(t, 3, map[string]string{"min.insync.replicas": "2"})
	leader := etcdReplicatedTopic(t, bs, "fo", nil)
	before, _ := etcdPartition(t, bs[0], "fo")
	var rest []*clusterBroker
	for _, b := range bs {
		if b != leader {
			rest = append(rest, b)
		}
	}
	cl := newClient(t, clusterSeeds(rest)[0], kgo.SeedBrokers(clusterSeeds(bs)...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryTimeout(2*time.Minute), kgo.RecordDeliveryTimeout(2*time.Minute))

	const total = 3000
	var mu sync.Mutex
	acked := map[int]bool{}
	var failed []error
	ackedN := make(chan struct{}, total)
	ctx := testContext(t)
	for i := range total {
		cl.Produce(ctx, &kgo.Record{Topic: "fo", Value: []byte(strconv.Itoa(i))}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				return
			}
			acked[i] = true
			ackedN <- struct{}{}
		})
		if i == total/3 {
			// Stop the leader once some records are acknowledged, while
			// the rest are in flight or not produced yet.
			for range 200 {
				select {
				case <-ackedN:
				case <-ctx.Done():
					t.Fatal("no acknowledgements before stopping the leader")
				}
			}
			if err := leader.Close(); err != nil {
				t.Fatalf("stopping leader %d: %v", leader.id, err)
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	nAcked, nFailed := len(acked), len(failed)
	mu.Unlock()
	if nFailed > 0 {
		t.Logf("%d records failed (not acknowledged), first: %v", nFailed, failed[0])
	}
	if nAcked < total/2 {
		t.Fatalf("only %d of %d records acknowledged", nAcked, total)
	}
	after, ok := etcdPartition(t, rest[0], "fo")
	if !ok || after.Leader == leader.id || after.Leader < 1 || after.LeaderEpoch <= before.LeaderEpoch {
		t.Fatalf("after stopping leader %d at epoch %d: leader %d epoch %d", leader.id, before.LeaderEpoch, after.Leader, after.LeaderEpoch)
	}

	// Read everything up to the new leader's high watermark.
	hw := hwOf(t, rest[0].Addr(), "fo")
	got := consumeReplicated(t, clusterSeeds(rest), "fo", int(hw))
	seen := map[int]bool{}
	last := -1
	for i, v := range got {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("record %d is %q", i, v)
		}
		if seen[n] {
			t.Fatalf("record %d (%d) read twice", i, n)
		}
		if n <= last {
			t.Fatalf("record %d (%d) after %d: out of order", i, n, last)
		}
		seen[n], last = true, n
	}
	for n := range acked {
		if !seen[n] {
			t.Fatalf("acknowledged record %d was not read back (%d read, %d acknowledged)", n, len(got), nAcked)
		}
	}
	t.Logf("%d acknowledged, %d read back from new leader %d at epoch %d", nAcked, len(got), after.Leader, after.LeaderEpoch)
}
