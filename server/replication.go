package server

import (
	"context"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Replication, Kafka's design (Config.Cluster set): the partition
// assignments in the shared cluster metadata (etcd) say who leads and who
// follows. A follower runs one replicaFetcher per leader broker (Kafka's
// ReplicaFetcherThread), connected to the leader's registered endpoint on
// the inter-broker listener, which fetches many partitions per Fetch with its
// replica id, appends the batches as they are, fsyncs them, and only then
// asks for the next offset: the offset a follower fetches from is what it
// holds on disk. The leader (this file and api_fetch_replica.go) records
// each follower's fetch offset and last caught-up time; its high
// watermark is the smallest offset that every in-sync replica holds
// (itself: its own flushed end), and advances only while the ISR has at
// least min.insync.replicas members (KIP-966). A follower that has not
// caught up for replica.lag.time.max.ms leaves the ISR, one that catches
// up joins it again, through a revision-guarded save of the assignment
// (clusterstate.AlterPartition) that bumps the partition epoch.
//
// Goroutines: the manager's loop (reconciles with the assignments on
// every metadata change, checks ISR lag every lag/4, applies ISR
// changes) and one fetcher per leader broker; all tracked by the server
// and stopped by its quit context.
//
// Locks: replicaManager.mu (the leader and fetcher maps) before
// replicaFetcher.mu (a leaf); leaderState.mu (one partition's followers) is
// a leaf never taken under replicaManager.mu. See LOCKS.md.
// None is held across I/O: ISR saves and fsyncs run with no lock of the
// manager held.

// tpKey names a partition.
type tpKey struct {
	topic     string
	partition int32
}

// replicaManager runs replication for one broker.
type replicaManager struct {
	s      *Server
	lagMax time.Duration
	wake   chan struct{} // capacity 1: a reconcile is due

	mu struct {
		sync.Mutex // no I/O; before replicaFetcher.mu
		leaders    map[tpKey]*leaderState
		fetchers   map[int32]*replicaFetcher
	}
}

// leaderState is what a leader knows of its followers, for one leader
// epoch of one partition.
type leaderState struct {
	key        tpKey
	log        *storage.Log
	epoch      int32
	epochStart int64 // the log end when elected: a follower joins the ISR only past it

	mu struct {
		sync.Mutex // leaf; no I/O
		followers  map[int32]*followerState
	}
}

// followerState is one follower as its leader sees it (Kafka's Replica).
type followerState struct {
	fetchOffset        int64 // the offset it fetched last: it holds everything below; -1 unknown
	lastCaughtUp       time.Time
	lastFetch          time.Time
	lastFetchLeaderEnd int64 // the leader's end when it fetched last
}

func newReplicaManager(s *Server) *replicaManager {
	m := &replicaManager{s: s, lagMax: s.cfg.replicaLagMax, wake: make(chan struct{}, 1)}
	m.mu.leaders = map[tpKey]*leaderState{}
	m.mu.fetchers = map[int32]*replicaFetcher{}
	return m
}

// changed is clusterstate's OnChange: reconcile soon.
func (m *replicaManager) changed() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// run is the manager's loop, until the server quits.
func (m *replicaManager) run() {
	tick := time.NewTicker(max(m.lagMax/4, time.Millisecond))
	defer tick.Stop()
	m.reconcile()
	for {
		select {
		case <-m.s.quitCtx.Done():
			m.stopFetchers()
			return
		case <-m.wake:
			m.reconcile()
		case <-tick.C:
			m.maybeShrinkISR(time.Now())
		}
	}
}

// reconcile makes this broker lead what it leads and follow what it
// follows, as the published assignments say.
func (m *replicaManager) reconcile() {
	me := m.s.cfg.NodeID
	leading := map[tpKey]*partition{}
	following := map[int32]map[tpKey]*partition{}
	for _, t := range m.s.meta.Topics() {
		for _, p := range t.Partitions {
			k := tpKey{p.Topic, p.Index}
			switch {
			case p.Leader == me:
				leading[k] = p
			case p.Leader >= 0 && slices.Contains(p.Replicas, me):
				if following[p.Leader] == nil {
					following[p.Leader] = map[tpKey]*partition{}
				}
				following[p.Leader][k] = p
			}
		}
	}
	now := time.Now()
	m.mu.Lock()
	var lost []*storage.Log
	for k, ls := range m.mu.leaders {
		if p := leading[k]; p == nil || p.LeaderEpoch != ls.epoch || p.Log != ls.log {
			delete(m.mu.leaders, k)
			lost = append(lost, ls.log)
		}
	}
	var newLeaders []*partition
	for k, p := range leading {
		if m.mu.leaders[k] != nil {
			continue
		}
		ls := &leaderState{key: k, log: p.Log, epoch: p.LeaderEpoch, epochStart: p.Log.LogEndOffset()}
		ls.mu.followers = map[int32]*followerState{}
		for _, r := range p.Replicas {
			if r != me {
				// Kafka starts every follower as caught up at election.
				ls.mu.followers[r] = &followerState{fetchOffset: -1, lastCaughtUp: now, lastFetchLeaderEnd: -1}
			}
		}
		m.mu.leaders[k] = ls
		newLeaders = append(newLeaders, p)
	}
	for id, f := range m.mu.fetchers {
		if following[id] == nil {
			f.setPartitions(nil)
			delete(m.mu.fetchers, id)
		}
	}
	for id, parts := range following {
		f := m.mu.fetchers[id]
		if f == nil {
			f = newReplicaFetcher(m, id)
			m.mu.fetchers[id] = f
			m.s.goTracked(f.run)
		}
		f.setPartitions(parts)
	}
	m.mu.Unlock()

	for _, l := range lost {
		// Produce requests waiting for the high watermark answer
		// NOT_LEADER_OR_FOLLOWER now instead of timing out (Kafka
		// completes its delayed produces when it stops leading).
		l.WakeWaiters()
	}
	for _, p := range newLeaders {
		// A new leader places its epoch at its log end (KIP-101), and its
		// high watermark waits for its followers from here.
		p.Log.AssignEpoch(p.LeaderEpoch)
		m.updateHighWatermark(p)
		m.s.log.Info().Str("topic", p.Topic).Int32("partition", p.Index).Int32("leader_epoch", p.LeaderEpoch).
			Msg("became leader")
	}
	for _, parts := range following {
		for _, p := range parts {
			// The follower's high watermark is its leader's, learned from
			// fetch responses; its own flushes do not move it.
			p.Log.SetHighWatermarkCap(p.Log.HighWatermark(), false)
		}
	}
}

func (m *replicaManager) stopFetchers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, f := range m.mu.fetchers {
		f.setPartitions(nil)
		delete(m.mu.fetchers, id)
	}
}

// leader returns the leader state of p if this broker leads it at p's
// epoch.
func (m *replicaManager) leader(p *partition) *leaderState {
	m.mu.Lock()
	defer m.mu.Unlock()
	ls := m.mu.leaders[tpKey{p.Topic, p.Index}]
	if ls == nil || ls.epoch != p.LeaderEpoch || ls.log != p.Log {
		return nil
	}
	return ls
}

// minISR is the partition's min.insync.replicas.
func (m *replicaManager) minISR(p *partition) int {
	if t, ok := m.s.meta.Topic(p.Topic); ok {
		return int(max(t.Config.MinInsyncReplicas, 1))
	}
	return 1
}

// updateHighWatermark sets the leader's high watermark bound: the
// smallest fetch offset of the in-sync followers (the log adds its own
// flushed end). With fewer in-sync replicas than min.insync.replicas it
// does not advance at all (KIP-966's strict min ISR), so nothing becomes
// visible, or acknowledged, that fewer replicas hold.
func (m *replicaManager) updateHighWatermark(p *partition) {
	ls := m.leader(p)
	if ls == nil {
		return
	}
	limit := int64(math.MaxInt64)
	if len(p.ISR) < m.minISR(p) {
		limit = p.Log.HighWatermark()
	}
	ls.mu.Lock()
	for _, r := range p.ISR {
		if r == m.s.cfg.NodeID {
			continue
		}
		f := ls.mu.followers[r]
		if f == nil || f.fetchOffset < 0 {
			limit = min(limit, p.Log.HighWatermark()) // not heard from since the election
			continue
		}
		limit = min(limit, f.fetchOffset)
	}
	ls.mu.Unlock()
	p.Log.SetHighWatermarkCap(limit, false)
}

// followerFetched records a follower's fetch at offset (it holds
// everything below) and reports whether it has caught up enough to join
// the ISR.
// Kafka's rule for the caught-up time: a fetch at the leader's end is
// caught up now; one at the end the leader had at the previous fetch was
// caught up then.
func (m *replicaManager) followerFetched(ls *leaderState, replica int32, offset int64, now time.Time) (join bool) {
	leaderEnd := ls.log.DurableEnd()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	f := ls.mu.followers[replica]
	if f == nil {
		return false
	}
	switch {
	case offset >= leaderEnd:
		f.lastCaughtUp = now
	case f.lastFetchLeaderEnd >= 0 && offset >= f.lastFetchLeaderEnd && f.lastFetch.After(f.lastCaughtUp):
		f.lastCaughtUp = f.lastFetch
	}
	f.fetchOffset = offset
	f.lastFetch, f.lastFetchLeaderEnd = now, leaderEnd
	// Kafka's isFollowerInSync: caught up to the high watermark and into
	// this leader's epoch.
	return offset >= ls.log.HighWatermark() && offset >= ls.epochStart
}

// maybeShrinkISR drops the followers that have not caught up for
// replica.lag.time.max.ms from the ISR of every partition this broker
// leads.
func (m *replicaManager) maybeShrinkISR(now time.Time) {
	m.mu.Lock()
	leaders := make([]*leaderState, 0, len(m.mu.leaders))
	for _, ls := range m.mu.leaders {
		leaders = append(leaders, ls)
	}
	m.mu.Unlock()
	for _, ls := range leaders {
		p := m.s.meta.Partition(ls.key.topic, ls.key.partition)
		if p == nil || p.LeaderEpoch != ls.epoch || p.Leader != m.s.cfg.NodeID {
			continue
		}
		var out []int32
		ls.mu.Lock()
		for _, r := range p.ISR {
			if f := ls.mu.followers[r]; r != m.s.cfg.NodeID && f != nil && now.Sub(f.lastCaughtUp) > m.lagMax {
				out = append(out, r)
			}
		}
		ls.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		isr := slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return slices.Contains(out, r) })
		m.alterISR(p, isr)
	}
}

// maybeExpandISR adds replica to p's ISR.
func (m *replicaManager) maybeExpandISR(p *partition, replica int32) {
	if slices.Contains(p.ISR, replica) {
		return
	}
	m.alterISR(p, append(slices.Clone(p.ISR), replica))
}

// alterISR saves a new ISR for a partition this broker leads (no lock of
// the manager is held: the save is I/O) and recomputes the high
// watermark under it. A conflict (another broker saved first) is left to
// the next check, with the assignments the watch brings.
func (m *replicaManager) alterISR(p *partition, isr []int32) {
	slices.Sort(isr)
	if _, err := m.s.meta.AlterPartition(p.Topic, p.Index, isr, p.PartitionEpoch); err != nil {
		m.s.log.Info().Err(err).Str("topic", p.Topic).Int32("partition", p.Index).Msg("ISR change not saved; retrying later")
		return
	}
	if np := m.s.meta.Partition(p.Topic, p.Index); np != nil {
		m.updateHighWatermark(np)
	}
}

// checkReplicatedProduce is the leader's check before an append: only the
// leader takes produce (NOT_LEADER_OR_FOLLOWER), and acks=all needs at
// least min.insync.replicas in the ISR (NOT_ENOUGH_REPLICAS), as Kafka's
// Partition.appendRecordsToLeader checks. Nil on a single node.
func (s *Server) checkReplicatedProduce(p *partition, acks int16) *kerr.Error {
	if s.repl == nil {
		return nil
	}
	if p.Leader != s.cfg.NodeID {
		return kerr.NotLeaderForPartition
	}
	if acks == -1 && len(p.ISR) < s.repl.minISR(p) {
		return kerr.NotEnoughReplicas
	}
	return nil
}

// waitProduce waits for what a replicated produce must wait for: acks=1,
// the leader's own fsync; acks=all, the high watermark passing the batch,
// and then still at least min.insync.replicas in the ISR (else
// NOT_ENOUGH_REPLICAS_AFTER_APPEND, as Kafka's DelayedProduce). A
// leadership change meanwhile answers NOT_LEADER_OR_FOLLOWER: the batch may
// have been truncated, and the client retries against the new leader.
func (m *replicaManager) waitProduce(ctx context.Context, w durableWait) *kerr.Error {
	target := func() int64 { return w.log.HighWatermark() }
	ch := w.log.Wait
	if w.acks == 1 {
		target, ch = w.log.DurableEnd, w.log.WaitDurable
	}
	for {
		c := ch()
		if cur := m.s.meta.Partition(w.part.Topic, w.part.Index); cur == nil || cur.LeaderEpoch != w.part.LeaderEpoch || cur.Leader != m.s.cfg.NodeID {
			return kerr.NotLeaderForPartition
		}
		if target() > w.lastOffset {
			break
		}
		if err := w.log.Err(); err != nil {
			return appendErrorCode(err)
		}
		select {
		case <-c:
		case <-ctx.Done():
			return kerr.RequestTimedOut
		}
	}
	if cur := m.s.meta.Partition(w.part.Topic, w.part.Index); w.acks == -1 && cur != nil && len(cur.ISR) < m.minISR(cur) {
		return kerr.NotEnoughReplicasAfterAppend
	}
	return nil
}

// replicaAddr is where a follower fetches from broker id: its registered
// endpoint on the inter-broker listener (inter.broker.listener.name, else
// this broker's first listener), as Kafka's followers connect to the
// leader's inter-broker endpoint. "" while id is not a live broker or
// has no such listener.
func (s *Server) replicaAddr(id int32) string {
	name := s.cfg.interBrokerListener
	if name == "" {
		name = s.cfg.listeners[0].name
	}
	for _, b := range s.cfg.Cluster.Brokers() {
		if b.NodeID != id {
			continue
		}
		if e, ok := b.Endpoint(name); ok {
			return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
		}
	}
	return ""
}
