package etcdstate

import (
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/clusterstate"
)

func TestElect(t *testing.T) {
	a := func(leader int32, isr ...int32) clusterstate.Assignment {
		return clusterstate.Assignment{Replicas: []int32{1, 2, 3}, ISR: isr, Leader: leader, LeaderEpoch: 4, PartitionEpoch: 9}
	}
	live := func(ids ...int32) map[int32]bool {
		m := map[int32]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	for _, tc := range []struct {
		name      string
		in        clusterstate.Assignment
		live      map[int32]bool
		unclean   bool
		leader    int32
		isr       []int32
		leaderEp  int32
		changed   bool
		partEpoch int32
	}{
		{"all alive", a(1, 1, 2, 3), live(1, 2, 3), false, 1, []int32{1, 2, 3}, 4, false, 9},
		{"leader dead: next ISR member in replica order", a(1, 1, 2, 3), live(2, 3), false, 2, []int32{2, 3}, 5, true, 10},
		{"leader dead, replica 2 not in ISR", a(1, 1, 3), live(2, 3), false, 3, []int32{3}, 5, true, 10},
		{"follower dead: ISR shrinks, same leader epoch", a(1, 1, 2, 3), live(1, 2), false, 1, []int32{1, 2}, 4, true, 10},
		{"last ISR member dead: no leader, ISR kept", a(1, 1), live(2, 3), false, clusterstate.NoLeader, []int32{1}, 5, true, 10},
		{"no leader stays none without unclean", a(clusterstate.NoLeader, 1), live(2, 3), false, clusterstate.NoLeader, []int32{1}, 4, false, 9},
		{"unclean election picks a live replica", a(clusterstate.NoLeader, 1), live(2, 3), true, 2, []int32{2}, 5, true, 10},
		{"last ISR member returns and leads", a(clusterstate.NoLeader, 1), live(1, 2), false, 1, []int32{1}, 5, true, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := elect(tc.in, tc.live, tc.unclean)
			if changed != tc.changed || got.Leader != tc.leader || !slices.Equal(got.ISR, tc.isr) ||
				got.LeaderEpoch != tc.leaderEp || got.PartitionEpoch != tc.partEpoch {
				t.Fatalf("elect = %+v changed=%v; want leader %d isr %v epochs %d/%d changed=%v",
					got, changed, tc.leader, tc.isr, tc.leaderEp, tc.partEpoch, tc.changed)
			}
		})
	}
}

func TestPlaceRackUnaware(t *testing.T) {
	brokers := []clusterstate.Broker{{NodeID: 1}, {NodeID: 2}, {NodeID: 3}}
	got, err := place(brokers, 0, 6, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	for _, r := range got {
		if len(r) != 3 || r[0] == r[1] || r[1] == r[2] || r[0] == r[2] {
			t.Fatalf("replicas %v not 3 distinct brokers", r)
		}
		leaders[r[0]]++
	}
	if leaders[1] != 2 || leaders[2] != 2 || leaders[3] != 2 {
		t.Fatalf("leaders not spread evenly: %v (%v)", leaders, got)
	}
	if _, err := place(brokers, 0, 1, 4, 0); err == nil {
		t.Fatal("rf 4 over 3 brokers was placed")
	}
}

func TestPlaceRackAware(t *testing.T) {
	brokers := []clusterstate.Broker{{NodeID: 1, Rack: "a"}, {NodeID: 2, Rack: "a"}, {NodeID: 3, Rack: "b"}, {NodeID: 4, Rack: "b"}, {NodeID: 5, Rack: "c"}, {NodeID: 6, Rack: "c"}}
	rack := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}
	for start := 0; start < 6; start++ {
		got, err := place(brokers, 0, 12, 3, start)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			seen := map[string]bool{}
			for _, b := range r {
				seen[rack[b]] = true
			}
			if len(seen) != 3 {
				t.Fatalf("start %d: replicas %v share a rack", start, r)
			}
		}
	}
}

// Three brokers on one etcd: a topic created on one is placed over all
// three, every broker learns who the controller is, and when the leader
// of a partition crashes (its lease is neither revoked nor renewed) the
// controller moves leadership to an ISR member once the lease expires,
// bumping the epochs.
func TestNodeFailoverAfterLeaseExpiry(t *testing.T) {
	t.Run("leader is not the controller", func(t *testing.T) { testNodeFailover(t, false) })
	// The controller's own death: a new one is elected when its lease
	// expires, and then moves the dead broker's leaderships.
	t.Run("leader is the controller", func(t *testing.T) { testNodeFailover(t, true) })
}

func testNodeFailover(t *testing.T, killController bool) {
	m, _ := startEtcd(t)
	nodes := make([]*Node, 3)
	states := make([]*clusterstate.State, 3)
	for i := range nodes {
		n, err := NewNode(NodeConfig{Endpoints: []string{m.ClientURL()}, Prefix: "/failover/", LeaseTTL: 2 * time.Second, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes[i] = n
		st := openStateOn(t, n.Backend(), int32(i+1), n)
		states[i] = st
		if err := n.Join(clusterstate.Broker{NodeID: int32(i + 1)}, st, 3); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		eventually(t, "3 live brokers and a controller", func() bool { return len(n.Brokers()) == 3 && n.Controller() > 0 })
	}
	res := states[0].CreateTopics([]clusterstate.NewTopic{{Name: "t", Partitions: 3}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	p := res[0].Topic.Partitions[0]
	if len(p.Replicas) != 3 {
		t.Fatalf("replicas %v, want 3 (default.replication.factor)", p.Replicas)
	}
	victim := p.Leader
	controller := nodes[0].Controller()
	for _, q := range res[0].Topic.Partitions {
		if (q.Leader == controller) == killController {
			p, victim = q, q.Leader
			break
		}
	}
	if (victim == controller) != killController {
		t.Fatalf("no partition led by the right broker: %+v", res[0].Topic.Partitions)
	}
	crashed := time.Now()
	nodes[victim-1].Crash()
	var survivor *clusterstate.State
	for i, st := range states {
		if int32(i+1) != victim {
			survivor = st
			eventually(t, "a live controller", func() bool {
				c := nodes[i].Controller()
				return c > 0 && c != victim
			})
		}
	}
	eventually(t, "a new leader from the ISR", func() bool {
		q := survivor.Partition("t", p.Index) // nil until its watch brings t
		return q != nil && q.Leader != victim && q.Leader != clusterstate.NoLeader && slices.Contains(p.ISR, q.Leader) &&
			q.LeaderEpoch == p.LeaderEpoch+1 && !slices.Contains(q.ISR, victim)
	})
	t.Logf("leader of t-%d moved %v after broker %d crashed (lease TTL 2s)", p.Index, time.Since(crashed).Round(10*time.Millisecond), victim)
}

func openStateOn(t testing.TB, b clusterstate.Backend, node int32, placer clusterstate.Placer) *clusterstate.State {
	t.Helper()
	store, err := openStore(t)
	if err != nil {
		t.Fatal(err)
	}
	st, err := clusterstate.Open(clusterstate.Options{Backend: b, Logs: store, Defaults: testDefaults, NodeID: node, Placer: placer, Logger: zerolog.Nop()})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		store.Close()
	})
	return st
}
