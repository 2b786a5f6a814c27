package server

import (
	"time"

	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchReplicaID is the follower id of a Fetch: ReplicaState.ID from v15
// (KIP-903), ReplicaID before; -1 for a consumer.
func fetchReplicaID(req *kmsg.FetchRequest) int32 {
	if req.Version >= 15 {
		return req.ReplicaState.ID
	}
	return req.ReplicaID
}

// handleReplicaFetch serves a follower, as Kafka's leader does: epoch and
// leadership checks, divergence (KIP-320: the follower's last fetched epoch
// ends before its fetch offset here, so it must truncate first), then the
// follower's fetch offset is recorded (it holds everything below, on
// disk), the ISR may grow and the high watermark move, and batches are
// read up to this leader's durable end, not the high watermark. With
// nothing to send it waits (MaxWaitMillis) for this leader's durable end
// to move.
func (m *replicaManager) handleReplicaFetch(r *request, req *kmsg.FetchRequest, replica int32) (kmsg.Response, error) {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	useIDs := req.Version >= 13
	first := true
	for {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		var waits []<-chan struct{}
		total := 0
		for _, rt := range req.Topics {
			name := m.s.fetchTopicName(useIDs, rt.Topic, rt.TopicID)
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				sp.PreferredReadReplica = -1
				sp.RecordBatches = []byte{}
				n, wait := m.replicaFetchPartition(name, rp, replica, first, &sp, req.MaxBytes-int32(total))
				total += n
				if wait != nil {
					waits = append(waits, wait)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		first = false
		remaining := time.Until(deadline)
		if total >= int(max(req.MinBytes, 1)) || len(waits) == 0 || remaining <= 0 {
			return resp, nil
		}
		if !waitAny(r.ctx, waits, remaining) {
			return resp, nil
		}
	}
}

// replicaFetchPartition answers one partition of a follower's fetch and
// returns the bytes it put in sp, and a channel to wait on when it sent
// none (nil after an error). The follower's offset is recorded only on the
// first pass: a re-read after a wait asks for the same offset.
func (m *replicaManager) replicaFetchPartition(topic string, rp kmsg.FetchRequestTopicPartition, replica int32, record bool,
	sp *kmsg.FetchResponseTopicPartition, budget int32) (int, <-chan struct{}) {
	p := m.s.meta.partition(topic, rp.Partition)
	if p == nil {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return 0, nil
	}
	if code := m.s.checkLeaderEpoch(p, rp.CurrentLeaderEpoch, true); code != nil {
		sp.ErrorCode = code.Code
		return 0, nil
	}
	ls := m.leader(p)
	if ls == nil {
		m.changed() // the assignment is published, the manager not there yet
		sp.ErrorCode = kerr.NotLeaderForPartition.Code
		return 0, nil
	}
	if rp.LastFetchedEpoch >= 0 {
		e, end := p.Log.EndOffsetForEpoch(rp.LastFetchedEpoch)
		if e < rp.LastFetchedEpoch || end < rp.FetchOffset {
			sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = e, end
			sp.HighWatermark, sp.LogStartOffset = p.Log.HighWatermark(), p.Log.LogStartOffset()
			sp.LastStableOffset = min(p.Log.LastStableOffset(), sp.HighWatermark)
			return 0, nil
		}
	}
	if record {
		if join := m.followerFetched(ls, replica, rp.FetchOffset, time.Now()); join {
			m.maybeExpandISR(p, replica)
			p = m.s.meta.partition(topic, rp.Partition)
		}
		m.updateHighWatermark(p)
	}
	wait := p.Log.WaitDurable()
	fr, err := p.Log.ReadFileReplica(rp.FetchOffset, int(min(rp.PartitionMaxBytes, max(budget, 0))))
	sp.HighWatermark, sp.LogStartOffset = p.Log.HighWatermark(), p.Log.LogStartOffset()
	sp.LastStableOffset = min(p.Log.LastStableOffset(), sp.HighWatermark)
	if err != nil {
		sp.ErrorCode = fetchErrorCode(err)
		return 0, nil
	}
	defer fr.Release()
	if fr.Size == 0 {
		return 0, wait
	}
	sp.RecordBatches = readRanges(fr)
	if sp.RecordBatches == nil {
		sp.ErrorCode = kerr.KafkaStorageError.Code
		return 0, nil
	}
	return len(sp.RecordBatches), nil
}

// readRanges copies a read's batches (follower fetches are copied, not
// sent with sendfile: they are few and bounded by replica fetch sizes).
func readRanges(fr storage.FileRead) []byte {
	out := make([]byte, 0, fr.Size)
	for _, rg := range fr.Ranges {
		b := make([]byte, rg.Len)
		if _, err := rg.File.ReadAt(b, rg.Offset); err != nil {
			return nil
		}
		out = append(out, b...)
	}
	return out
}
