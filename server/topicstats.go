package server

import (
	"sync/atomic"

	"github.com/skiffmq/skiff/protocol"
)

// topicStats are a topic's traffic counters (Kafka's BrokerTopicMetrics).
// Each partition holds a pointer to its topic's, resolved when the
// partition opens, so the produce and fetch paths update them with atomic
// adds: no lock, no label lookup, no allocation. The collector reads them
// at scrape time. A nil *topicStats (metrics off) ignores updates.
type topicStats struct {
	bytesIn, recordsIn, produceRequests, failedProduce atomic.Uint64
	bytesOut, recordsOut, fetchRequests, failedFetch   atomic.Uint64
}

// statsFor is what a new partition of t points at.
func (c *cluster) statsFor(t *topic) *topicStats {
	if c.cfg.DisableMetrics {
		return nil
	}
	return &t.stats
}

// produced counts one partition of a produce request: appended (ok) with
// its bytes and records, or failed.
func (ts *topicStats) produced(ok bool, bytes int, records int64) {
	if ts == nil {
		return
	}
	ts.produceRequests.Add(1)
	if !ok {
		ts.failedProduce.Add(1)
		return
	}
	ts.bytesIn.Add(uint64(bytes))
	ts.recordsIn.Add(uint64(records))
}

// used reports whether the topic has seen traffic: like Kafka, which
// creates a topic's meters on its first request, idle topics have no
// series.
func (ts *topicStats) used() bool {
	return ts.produceRequests.Load() > 0 || ts.fetchRequests.Load() > 0
}

// countFetch counts the partitions of a fetch response as it is sent.
func countFetch(results []fetchResult) {
	for i := range results {
		res := &results[i]
		ts := res.stats
		if ts == nil {
			continue
		}
		ts.fetchRequests.Add(1)
		if res.err != 0 {
			ts.failedFetch.Add(1)
			continue
		}
		if res.file == nil || res.file.Size == 0 {
			continue
		}
		ts.bytesOut.Add(uint64(res.file.Size))
		// Records are sent from the segment files unread, so what is
		// counted is the offsets delivered from the fetch offset on (a
		// compacted topic's gaps count too).
		if n := res.file.NextOffset - res.from; n > 0 {
			ts.recordsOut.Add(uint64(n))
		}
	}
}

// countRecords adds up the record counts of the batches in records.
func countRecords(records []byte) int64 {
	var n int64
	for off := 0; off < len(records); {
		h, err := protocol.ParseBatchHeader(records[off:])
		if err != nil || h.Size() > len(records)-off {
			break
		}
		n += int64(h.NumRecords)
		off += h.Size()
	}
	return n
}
