package etcdstate

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/skiffmq/skiff/clusterstate"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// reconcileInterval is how often the controller looks at every partition
// even when no broker came or went: a change it lost to a conflicting
// save is retried then at the latest.
const reconcileInterval = time.Second

// controllerLoop campaigns for the controller with the broker's lease
// (so a dead broker's controllership ends with its registration), and
// while elected, keeps every partition led by a live ISR member.
func (n *Node) controllerLoop() {
	var last *concurrency.Session
	for n.ctx.Err() == nil {
		s := n.currentSession(last)
		if s == nil {
			return
		}
		last = s
		ctx, cancel := sessionContext(n.ctx, s)
		e := concurrency.NewElection(s, n.cfg.Prefix+"controller")
		n.goTracked(func() { n.observe(ctx, e) })
		n.mu.Lock()
		id := n.mu.self.Self.NodeID
		n.mu.Unlock()
		err := e.Campaign(ctx, strconv.Itoa(int(id)))
		if err == nil {
			n.log.Info().Int32("node_id", id).Msg("elected controller")
			n.lead(ctx)
			rctx, rcancel := context.WithTimeout(context.Background(), opTimeout)
			_ = e.Resign(rctx)
			rcancel()
		} else if ctx.Err() == nil {
			// etcd failed the campaign (a member without a leader, a
			// timeout); the session lives on, so campaign again.
			n.log.Warn().Err(err).Msg("campaigning for the controller")
			last = nil
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		cancel()
	}
}

// currentSession waits for a session other than last (the membership
// loop makes a new one when the lease is lost), or returns the current
// one if last is nil; nil once the node stops.
func (n *Node) currentSession(last *concurrency.Session) *concurrency.Session {
	for {
		n.mu.Lock()
		s := n.mu.session
		n.mu.Unlock()
		if s != last {
			return s
		}
		select {
		case <-n.ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sessionContext ends with parent or when the session's lease is lost.
func sessionContext(parent context.Context, s *concurrency.Session) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-s.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// observe follows who the controller is: Election.Observe delivers each
// new one, and a read of the election every second covers what a watch
// can miss (Observe ends on any watch error, such as a member that has
// lost its leader, and is then started again).
func (n *Node) observe(ctx context.Context, e *concurrency.Election) {
	set := func(v []byte) {
		if id, err := strconv.Atoi(string(v)); err == nil {
			n.mu.Lock()
			changed := n.mu.controller != int32(id)
			n.mu.controller = int32(id)
			n.mu.Unlock()
			if changed {
				n.log.Info().Int("controller", id).Msg("controller changed")
			}
		}
	}
	ch := e.Observe(clientv3.WithRequireLeader(ctx))
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case resp, ok := <-ch:
			if !ok {
				ch = nil // started again at the next tick
				continue
			}
			if len(resp.Kvs) > 0 {
				set(resp.Kvs[0].Value)
			}
		case <-t.C:
			if ch == nil {
				ch = e.Observe(clientv3.WithRequireLeader(ctx))
			}
			rctx, cancel := context.WithTimeout(ctx, opTimeout)
			resp, err := e.Leader(rctx)
			cancel()
			switch {
			case err == nil && len(resp.Kvs) > 0:
				set(resp.Kvs[0].Value)
			case err != nil && !errors.Is(err, concurrency.ErrElectionNoLeader):
				n.log.Warn().Err(err).Msg("reading the controller election")
			}
		}
	}
}

// lead runs the controller's duties until ctx ends (the node stops or
// its lease is lost).
func (n *Node) lead(ctx context.Context) {
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		n.reconcile()
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-t.C:
		}
	}
}

// reconcile elects a leader for every partition whose leader is not a
// live broker and removes dead brokers from ISRs, one guarded save per
// topic. A save that conflicts (the topic changed meanwhile) is retried
// on the next round, on the newer state.
func (n *Node) reconcile() {
	n.mu.Lock()
	st := n.mu.self.State
	live := make(map[int32]bool, len(n.mu.brokers))
	for id := range n.mu.brokers {
		live[id] = true
	}
	n.mu.Unlock()
	if st == nil || len(live) == 0 {
		return
	}
	for _, t := range st.Topics() {
		changes := map[int32]clusterstate.Assignment{}
		for _, p := range t.Partitions {
			if a, ok := elect(p.Assignment, live, t.Config.UncleanLeaderElection); ok {
				changes[p.Index] = a
			}
		}
		if len(changes) == 0 {
			continue
		}
		err := st.UpdateAssignments(t.Name, t.ID, changes)
		switch {
		case err == nil:
			for i, a := range changes {
				n.log.Info().Str("topic", t.Name).Int32("partition", i).Int32("leader", a.Leader).
					Int32("leader_epoch", a.LeaderEpoch).Ints32("isr", a.ISR).Msg("partition leadership changed")
			}
		case errors.Is(err, clusterstate.ErrConflict), errors.Is(err, clusterstate.ErrUnknownTopic):
			n.log.Debug().Err(err).Str("topic", t.Name).Msg("leader election retried on newer metadata")
		default:
			n.log.Warn().Err(err).Str("topic", t.Name).Msg("leader election")
		}
	}
}

// elect returns a's next state given the live brokers, and whether it
// changed. Dead brokers leave the ISR, except the last member: an ISR is
// never emptied, so that the partition can only be led again by a broker
// that has every acknowledged record, once it returns (Kafka's KRaft
// controller keeps the last ISR member the same way). A partition whose
// leader is dead gets the first live replica, in replica order, that is
// in the ISR; with none, it has no leader (NoLeader) unless
// unclean.leader.election.enable lets any live replica lead, which may
// lose acknowledged records. A new leader bumps the leader epoch; any
// change bumps the partition epoch.
func elect(a clusterstate.Assignment, live map[int32]bool, unclean bool) (clusterstate.Assignment, bool) {
	var liveISR []int32
	for _, r := range a.ISR {
		if live[r] {
			liveISR = append(liveISR, r)
		}
	}
	leaderOK := a.Leader != clusterstate.NoLeader && live[a.Leader]
	if leaderOK && len(liveISR) == len(a.ISR) {
		return a, false
	}
	next := a
	next.ISR = slices.Clone(a.ISR)
	if len(liveISR) > 0 {
		next.ISR = liveISR
	}
	if !leaderOK {
		leader := clusterstate.NoLeader
		for _, r := range a.Replicas {
			if live[r] && slices.Contains(next.ISR, r) {
				leader = r
				break
			}
		}
		if leader == clusterstate.NoLeader && unclean {
			for _, r := range a.Replicas {
				if live[r] {
					leader, next.ISR = r, []int32{r}
					break
				}
			}
		}
		if leader != a.Leader {
			next.Leader = leader
			next.LeaderEpoch++
		}
	}
	if next.Equal(a) {
		return a, false
	}
	next.PartitionEpoch++
	return next, true
}
