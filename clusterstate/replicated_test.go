package clusterstate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/storage"
)

// openShared opens a State of node id on its own store, on a backend
// shared with other States (several brokers in one process).
func openShared(t *testing.T, b Backend, id int32, changed chan<- struct{}) *State {
	t.Helper()
	store, err := storage.OpenStore(t.TempDir(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(Options{Backend: b, Logs: store, Defaults: testDefaults, NodeID: id, Logger: zerolog.Nop(),
		Placer: soloPlacer(id), OnChange: func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		_ = store.Close()
	})
	return st
}

// soloPlacer places every replica on one broker: it makes a State a
// cluster member (assignments stored, Watch applied) without etcd.
type soloPlacer int32

func (p soloPlacer) Place(_ string, _, count int32, _ int16) ([][]int32, error) {
	out := make([][]int32, count)
	for i := range out {
		out[i] = []int32{int32(p)}
	}
	return out, nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSharedBackendFollowsOtherBrokers: a topic created on one broker is
// opened on another through Watch, with the same id and cluster id; an
// assignment set in the backend reaches both; AlterPartition refuses a
// stale partition epoch, bumps it otherwise, and a broker that saves on
// an old revision gets ErrConflict until the watch brings it up to date.
func TestSharedBackendFollowsOtherBrokers(t *testing.T) {
	mem := NewMemBackend()
	changed := make(chan struct{}, 1)
	a := openShared(t, mem, 1, changed)
	b := openShared(t, mem, 2, changed)
	if a.ClusterID() != b.ClusterID() {
		t.Fatalf("cluster ids %s and %s", a.ClusterID(), b.ClusterID())
	}
	ta := mustCreate(t, a, "orders", 2, nil)
	waitFor(t, "broker 2 to open the topic", func() bool {
		tb, ok := b.Topic("orders")
		return ok && tb.ID == ta.ID && len(tb.Partitions) == 2 && tb.Partitions[1].Log != nil
	})

	as := Assignment{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 3, PartitionEpoch: 5}
	if _, err := mem.Update(context.Background(), func(img *Image) {
		img.Topics[0].Assignments = []Assignment{as, as}
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*State{a, b} {
		waitFor(t, "the assignment", func() bool { return s.Partition("orders", 1).LeaderEpoch == 3 })
	}
	if _, err := a.AlterPartition("orders", 0, []int32{1}, 4); !errors.Is(err, ErrStalePartitionEpoch) {
		t.Fatalf("stale partition epoch: %v", err)
	}
	got, err := a.AlterPartition("orders", 0, []int32{1}, 5)
	if err != nil || got.PartitionEpoch != 6 || !slices.Equal(got.ISR, []int32{1}) {
		t.Fatalf("AlterPartition = %+v, %v", got, err)
	}
	waitFor(t, "broker 2 to see the ISR change", func() bool {
		p := b.Partition("orders", 0)
		return p.PartitionEpoch == 6 && slices.Equal(p.ISR, []int32{1})
	})
	if p := b.Partition("orders", 1); p.PartitionEpoch != 5 || len(p.ISR) != 2 {
		t.Fatalf("the other partition changed: %+v", p.Assignment)
	}
}

// TestAlterPartitionConflictLeavesStateUnchanged: a save based on an old
// revision (another broker saved first, its image not applied yet) fails
// with ErrConflict and publishes nothing.
func TestAlterPartitionConflictLeavesStateUnchanged(t *testing.T) {
	mem := NewMemBackend()
	a := openShared(t, mem, 1, nil)
	mustCreate(t, a, "t", 1, nil)
	a.Close() // no watch: a's revision stays old
	if _, err := mem.Update(context.Background(), func(img *Image) { img.Quotas = nil }); err != nil {
		t.Fatal(err)
	}
	p := a.Partition("t", 0)
	if _, err := a.AlterPartition("t", 0, nil, p.PartitionEpoch); !errors.Is(err, ErrConflict) {
		t.Fatalf("AlterPartition on an old revision: %v, want ErrConflict", err)
	}
	if a.Partition("t", 0) != p {
		t.Fatal("a failed save published a change")
	}
}

// TestApplyUpdateLeavesPublishedPartitionsAlone is the regression test
// for applying another broker's image by rewriting the published
// partition slice in place, which readers holding the old Topic saw
// change under them (a data race).
func TestApplyUpdateLeavesPublishedPartitionsAlone(t *testing.T) {
	mem := NewMemBackend()
	a := openShared(t, mem, 1, nil)
	mustCreate(t, a, "t", 2, nil)
	old, _ := a.Topic("t")
	before := slices.Clone(old.Partitions)
	if _, err := mem.Update(context.Background(), func(img *Image) {
		img.Topics[0].Assignments = []Assignment{
			{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 9},
			{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 9},
		}
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new epoch", func() bool { return a.Partition("t", 0).LeaderEpoch == 9 })
	for i, p := range old.Partitions {
		if p != before[i] || p.LeaderEpoch != 0 {
			t.Fatalf("published partition %d changed in place: %+v", i, p.Assignment)
		}
	}
}
