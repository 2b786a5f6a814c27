package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Follower fetch sizes and waits (Kafka's replica.fetch.* defaults).
const (
	replicaFetchMaxWait       = 500 * time.Millisecond
	replicaFetchMaxBytes      = 10 << 20
	replicaFetchPartitionSize = 1 << 20
	replicaFetchBackoff       = 100 * time.Millisecond
)

// replicaFetcher copies the partitions this broker follows from one
// leader broker, many partitions per Fetch (Kafka's ReplicaFetcherThread).
// Its goroutine ends when it has no partitions left or the server quits.
type replicaFetcher struct {
	m      *replicaManager
	leader int32

	mu struct {
		sync.Mutex                      // leaf; no I/O
		parts      map[tpKey]*partition // nil: stop
		changed    chan struct{}        // closed when parts change
	}
}

func newReplicaFetcher(m *replicaManager, leader int32) *replicaFetcher {
	f := &replicaFetcher{m: m, leader: leader}
	f.mu.changed = make(chan struct{})
	return f
}

// setPartitions replaces what the fetcher copies; nil stops it.
func (f *replicaFetcher) setPartitions(parts map[tpKey]*partition) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.parts = parts
	close(f.mu.changed)
	f.mu.changed = make(chan struct{})
}

func (f *replicaFetcher) partitions() (map[tpKey]*partition, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.parts, f.mu.changed
}

func (f *replicaFetcher) run() {
	ctx := f.m.s.quitCtx
	log := f.m.s.log.With().Int32("leader", f.leader).Logger()
	var cl *kgo.Client
	var clAddr string
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	wait := func(d time.Duration, changed <-chan struct{}) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		case <-t.C:
		}
		return true
	}
	for ctx.Err() == nil {
		parts, changed := f.partitions()
		if parts == nil {
			return
		}
		addr := f.m.s.replicaAddr(f.leader)
		if addr == "" {
			if !wait(replicaFetchBackoff, changed) {
				return
			}
			continue
		}
		if cl == nil || addr != clAddr {
			if cl != nil {
				cl.Close()
			}
			var err error
			cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("skiff-replica-fetcher"))
			if err != nil {
				log.Warn().Err(err).Msg("replica fetcher client")
				cl = nil
				if !wait(replicaFetchBackoff, changed) {
					return
				}
				continue
			}
			clAddr = addr
		}
		req := f.request(parts)
		rctx, cancel := context.WithTimeout(ctx, replicaFetchMaxWait+10*time.Second)
		kresp, err := cl.SeedBrokers()[0].Request(rctx, req)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				log.Debug().Err(err).Msg("replica fetch failed")
			}
			if !wait(replicaFetchBackoff, changed) {
				return
			}
			continue
		}
		if backoff := f.handle(parts, kresp.(*kmsg.FetchResponse)); backoff {
			if !wait(replicaFetchBackoff, changed) {
				return
			}
		}
	}
}

// request builds one Fetch for every partition: from the durable end
// (what this replica holds, fsynced), with the epoch of the last batch it holds
// (KIP-320) and the leader epoch it believes in.
func (f *replicaFetcher) request(parts map[tpKey]*partition) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	me := f.m.s.cfg.NodeID
	req.ReplicaID = me
	req.ReplicaState.ID, req.ReplicaState.Epoch = me, -1
	req.MaxWaitMillis = int32(replicaFetchMaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = replicaFetchMaxBytes
	req.SessionID, req.SessionEpoch = 0, -1 // full fetches, no session
	byTopic := map[string]int{}
	for _, p := range parts {
		i, ok := byTopic[p.Topic]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = p.Topic
			if tp, ok := f.m.s.meta.Topic(p.Topic); ok {
				t.TopicID = tp.ID
			}
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[p.Topic] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.Index
		rp.CurrentLeaderEpoch = p.LeaderEpoch
		// What is on this replica's disk, not its log end: the leader
		// counts the fetch offset as held, and a failed fsync must not
		// make it count what the page cache may have lost.
		rp.FetchOffset = p.Log.DurableEnd()
		rp.LastFetchedEpoch = p.Log.LatestEpoch()
		rp.LogStartOffset = p.Log.LogStartOffset()
		rp.PartitionMaxBytes = replicaFetchPartitionSize
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	return req
}

// handle applies a fetch response: truncation where the leader says the
// logs diverge, appends, then one fsync per appended partition before the
// next fetch asks past them, then the leader's high watermark. It reports
// whether the fetcher should pause (errors only).
func (f *replicaFetcher) handle(parts map[tpKey]*partition, resp *kmsg.FetchResponse) (backoff bool) {
	log := f.m.s.log
	if resp.ErrorCode != 0 {
		log.Debug().Int32("leader", f.leader).Str("error", kerr.ErrorForCode(resp.ErrorCode).Error()).Msg("replica fetch refused")
		return true
	}
	byID := map[[16]byte]string{}
	for k := range parts {
		if t, ok := f.m.s.meta.Topic(k.topic); ok {
			byID[t.ID] = k.topic
		}
	}
	type appended struct {
		p  *partition
		hw int64
	}
	var done []appended
	for _, rt := range resp.Topics {
		name := rt.Topic
		if name == "" {
			name = byID[rt.TopicID]
		}
		for _, rp := range rt.Partitions {
			p := parts[tpKey{name, rp.Partition}]
			if p == nil || !f.stillFollowing(p) {
				// The answer to a fetch sent before this broker stopped
				// following (it may lead now): applying it could lower a
				// leader's high watermark or append a stale leader's data.
				continue
			}
			if rp.ErrorCode == kerr.OffsetOutOfRange.Code && rp.LogStartOffset > p.Log.LogEndOffset() {
				// The leader no longer has what this replica lacks
				// (retention, DeleteRecords): start over at its log start,
				// as Kafka's truncateFullyAndStartAt.
				if err := p.Log.ResetTo(rp.LogStartOffset); err != nil {
					log.Warn().Err(err).Str("topic", name).Int32("partition", rp.Partition).Msg("restarting a replica at its leader's log start")
					backoff = true
				}
				continue
			}
			if rp.ErrorCode != 0 {
				// NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH: the
				// assignments here or there are behind; the watch brings
				// the new ones.
				log.Debug().Str("topic", name).Int32("partition", rp.Partition).
					Str("error", kerr.ErrorForCode(rp.ErrorCode).Error()).Msg("replica fetch error")
				backoff = true
				continue
			}
			if rp.DivergingEpoch.EndOffset >= 0 || rp.DivergingEpoch.Epoch >= 0 {
				f.truncate(p, rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset)
				continue
			}
			if recs := wholeBatches(rp.RecordBatches); len(recs) > 0 {
				if _, err := p.Log.AppendReplicated(recs); err != nil {
					// ErrReplicaOffset: an answer overtaken by a truncation,
					// or a batch that begins below this log's start (a
					// leader's log start inside a batch); either way, not
					// at once again.
					lvl := log.Warn()
					if errors.Is(err, storage.ErrReplicaOffset) {
						lvl = log.Debug()
					}
					lvl.Err(err).Str("topic", name).Int32("partition", rp.Partition).Msg("appending replicated batches")
					backoff = true
					continue
				}
			}
			done = append(done, appended{p, rp.HighWatermark})
		}
	}
	for _, a := range done {
		if !f.stillFollowing(a.p) {
			continue
		}
		// On disk before the next Fetch tells the leader we hold it.
		if err := a.p.Log.Flush(a.p.Log.LogEndOffset()); err != nil {
			log.Warn().Err(err).Str("topic", a.p.Topic).Int32("partition", a.p.Index).Msg("flushing replicated batches")
			backoff = true
			continue
		}
		a.p.Log.SetHighWatermarkCap(a.hw, true)
	}
	return backoff
}

// stillFollowing reports whether p's published assignment is still the
// one the fetch was sent for: same leader, same leader epoch.
func (f *replicaFetcher) stillFollowing(p *partition) bool {
	cur := f.m.s.meta.Partition(p.Topic, p.Index)
	return cur != nil && cur.Leader == f.leader && cur.LeaderEpoch == p.LeaderEpoch && cur.Log == p.Log
}

// truncate cuts the follower's log where it diverges from the leader's
// (KIP-320), as Kafka's AbstractFetcherThread does with the leader's
// answer for the last epoch this replica fetched: if the follower knows
// the leader's epoch, both logs agree up to the smaller of the two ends of
// it; if not, up to the end of the follower's largest epoch below it (the
// next fetch asks again from there).
func (f *replicaFetcher) truncate(p *partition, leaderEpoch int32, leaderEnd int64) {
	to := leaderEnd
	switch {
	case leaderEnd < 0:
		to = p.Log.HighWatermark()
	case leaderEpoch >= 0:
		if fe, fo := p.Log.EndOffsetForEpoch(leaderEpoch); fe != storage.UndefinedEpoch {
			to = min(leaderEnd, fo)
		}
	}
	leo, err := p.Log.TruncateTo(to)
	if err != nil {
		f.m.s.log.Warn().Err(err).Str("topic", p.Topic).Int32("partition", p.Index).Msg("truncating a diverged replica")
		return
	}
	f.m.s.log.Info().Str("topic", p.Topic).Int32("partition", p.Index).Int32("leader_epoch", leaderEpoch).
		Int64("leader_end_offset", leaderEnd).Int64("log_end_offset", leo).Msg("truncated the diverging tail")
}

// wholeBatches cuts a trailing partial batch off a fetched record set.
func wholeBatches(b []byte) []byte {
	p := 0
	for p < len(b) {
		h, err := protocol.ParseBatchHeader(b[p:])
		if err != nil || p+h.Size() > len(b) {
			break
		}
		p += h.Size()
	}
	return b[:p]
}
