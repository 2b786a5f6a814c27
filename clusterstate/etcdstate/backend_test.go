package etcdstate

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/acl"
	"github.com/skiffmq/skiff/clusterstate"
	"github.com/skiffmq/skiff/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// startEtcd runs a one-member etcd on 127.0.0.1 port 0 in a temporary
// directory and returns a client of it.
func startEtcd(t testing.TB) (*Embedded, *clientv3.Client) {
	t.Helper()
	m, err := StartEmbedded(EmbedConfig{Dir: t.TempDir(), PeerURL: "http://127.0.0.1:0", ClientURL: "http://127.0.0.1:0", Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second, Logger: quietZap()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return m, cli
}

var testDefaults = clusterstate.ConfigDefaults{Values: map[string]string{
	"cleanup.policy":         "delete",
	"segment.bytes":          "1073741824",
	"segment.ms":             "604800000",
	"index.interval.bytes":   "4096",
	"retention.ms":           "604800000",
	"retention.bytes":        "-1",
	"flush.messages":         "9223372036854775807",
	"flush.ms":               "9223372036854775807",
	"max.message.bytes":      "1048588",
	"message.timestamp.type": "CreateTime",
}}

// openState opens a State on its own store over an etcd backend.
func openState(t testing.TB, cli *clientv3.Client, node int32, placer clusterstate.Placer) *clusterstate.State {
	t.Helper()
	return openStateOn(t, NewBackend(cli, "/skiff-test/", zerolog.Nop()), node, placer)
}

func openStore(t testing.TB) (*storage.Store, error) {
	return storage.OpenStore(t.TempDir(), zerolog.Nop())
}

// fixedPlacer puts every partition on the same replicas.
type fixedPlacer []int32

func (p fixedPlacer) Place(_ string, _, count int32, _ int16) ([][]int32, error) {
	out := make([][]int32, count)
	for i := range out {
		out[i] = p
	}
	return out, nil
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A topic created, reconfigured, grown, re-led and deleted on one broker
// is seen the same way by another, through the watch.
func TestEtcdBackendChangesReachOtherBrokers(t *testing.T) {
	_, cli := startEtcd(t)
	p := fixedPlacer{1, 2}
	a := openState(t, cli, 1, p)
	b := openState(t, cli, 2, p)
	if a.ClusterID() != b.ClusterID() {
		t.Fatalf("cluster ids differ: %s vs %s", a.ClusterID(), b.ClusterID())
	}
	res := a.CreateTopics([]clusterstate.NewTopic{{Name: "orders", Partitions: 2, Configs: map[string]string{"retention.ms": "1000"}}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	eventually(t, "b to see orders", func() bool {
		tp, ok := b.Topic("orders")
		return ok && tp.ID == res[0].Topic.ID && len(tp.Partitions) == 2 && tp.Partitions[1].Leader == 1 &&
			tp.Partitions[1].Log != nil && tp.Overrides["retention.ms"] == "1000"
	})
	if err := b.AddPartitions("orders", 3); err != nil {
		t.Fatal(err)
	}
	if err := b.SetTopicConfigs("orders", map[string]string{"retention.ms": "2000"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to see 3 partitions and the new config", func() bool {
		tp, _ := a.Topic("orders")
		return len(tp.Partitions) == 3 && tp.Overrides["retention.ms"] == "2000"
	})
	moved := clusterstate.Assignment{Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1}
	if err := a.UpdateAssignments("orders", res[0].Topic.ID, map[int32]clusterstate.Assignment{0: moved}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to see the new leader", func() bool {
		return b.Partition("orders", 0).Assignment.Equal(moved)
	})
	if err := b.DeleteTopic("orders"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to forget orders", func() bool {
		_, ok := a.Topic("orders")
		return !ok
	})
	// ACLs are cluster metadata too: one created on a reaches b's
	// authorizer.
	read := acl.Binding{ResourceType: acl.ResourceTopic, Name: "orders", PatternType: acl.PatternLiteral,
		Principal: "User:alice", Host: "*", Operation: acl.OpRead, Permission: acl.PermAllow}
	if err := a.CreateACLs([]acl.Binding{read}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b to see the ACL", func() bool {
		bs := b.ACLs().Bindings()
		return len(bs) == 1 && bs[0] == read
	})
}

// Two brokers changing the same topic from the same revision: one save
// wins, the other gets ErrConflict and publishes nothing; brokers
// changing different topics do not conflict.
func TestEtcdBackendGuardsConcurrentChanges(t *testing.T) {
	_, cli := startEtcd(t)
	ctx := context.Background()
	b1 := NewBackend(cli, "/g/", zerolog.Nop())
	b2 := NewBackend(cli, "/g/", zerolog.Nop())
	img := clusterstate.Image{ClusterID: "c", Topics: []clusterstate.ImageTopic{{Name: "x", ID: "AAAAAAAAAAAAAAAAAAAAAA", Partitions: 1}}}
	if _, err := b1.Save(ctx, img, 0); err != nil {
		t.Fatal(err)
	}
	_, r1, err := b1.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, r2, err := b2.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Different topics, same base: both succeed.
	withY := img
	withY.Topics = append(append([]clusterstate.ImageTopic{}, img.Topics...), clusterstate.ImageTopic{Name: "y", ID: "AQAAAAAAAAAAAAAAAAAAAA", Partitions: 1})
	withZ := img
	withZ.Topics = append(append([]clusterstate.ImageTopic{}, img.Topics...), clusterstate.ImageTopic{Name: "z", ID: "AgAAAAAAAAAAAAAAAAAAAA", Partitions: 1})
	r1, err = b1.Save(ctx, withY, r1)
	if err != nil {
		t.Fatal(err)
	}
	if r2, err = b2.Save(ctx, withZ, r2); err != nil {
		t.Fatalf("a change of another topic conflicted: %v", err)
	}
	// Same topic: the second writer loses.
	a1 := withY
	a1.Topics = []clusterstate.ImageTopic{{Name: "x", ID: "AAAAAAAAAAAAAAAAAAAAAA", Partitions: 2}, withY.Topics[1]}
	if _, err := b1.Save(ctx, a1, r1); err != nil {
		t.Fatal(err)
	}
	a2 := withZ
	a2.Topics = []clusterstate.ImageTopic{{Name: "x", ID: "AAAAAAAAAAAAAAAAAAAAAA", Partitions: 3}, withZ.Topics[1]}
	if _, err := b2.Save(ctx, a2, r2); !errors.Is(err, clusterstate.ErrConflict) {
		t.Fatalf("stale save of x: %v, want ErrConflict", err)
	}
	got, _, err := b2.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Topics) != 3 || got.Topics[0].Partitions != 2 {
		t.Fatalf("stored %+v, want x with 2 partitions, y and z", got.Topics)
	}
}

// Two brokers creating the same topic at once: one creates it, the other
// is told it exists (not a storage error), and both end with the same
// topic id.
func TestEtcdConcurrentCreateOfOneTopicIsTopicExists(t *testing.T) {
	_, cli := startEtcd(t)
	p := fixedPlacer{1, 2}
	a := openState(t, cli, 1, p)
	b := openState(t, cli, 2, p)
	for round := range 5 {
		name := "same-" + strconv.Itoa(round)
		var ra, rb []clusterstate.CreateResult
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ra = a.CreateTopics([]clusterstate.NewTopic{{Name: name, Partitions: 1}}) }()
		go func() { defer wg.Done(); rb = b.CreateTopics([]clusterstate.NewTopic{{Name: name, Partitions: 1}}) }()
		wg.Wait()
		ok := 0
		for _, r := range []clusterstate.CreateResult{ra[0], rb[0]} {
			switch {
			case r.Err == nil:
				ok++
			case errors.Is(r.Err, clusterstate.ErrTopicExists):
			default:
				t.Fatalf("round %d: %v, want success or ErrTopicExists", round, r.Err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d creations succeeded, want 1", round, ok)
		}
		eventually(t, "both brokers to agree on the topic id", func() bool {
			ta, okA := a.Topic(name)
			tb, okB := b.Topic(name)
			return okA && okB && ta.ID == tb.ID
		})
	}
}
