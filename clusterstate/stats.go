package clusterstate

import "sync/atomic"

// TopicStats are a topic's traffic counters (Kafka's BrokerTopicMetrics).
// They live here, beside the Topic whose lifetime they share, because a
// topic is republished as a new value by every change: each partition
// holds the pointer, resolved when it opens, so the produce and fetch
// paths count with atomic adds (no lock, no label lookup, no allocation)
// and a metrics collector reads them at scrape time. A nil *TopicStats
// (traffic not counted) ignores updates.
type TopicStats struct {
	BytesIn, RecordsIn, ProduceRequests, FailedProduce atomic.Uint64
	BytesOut, RecordsOut, FetchRequests, FailedFetch   atomic.Uint64
}

// Produced counts one partition of a produce request: appended (ok) with
// its bytes and records, or failed.
func (ts *TopicStats) Produced(ok bool, bytes int, records int64) {
	if ts == nil {
		return
	}
	ts.ProduceRequests.Add(1)
	if !ok {
		ts.FailedProduce.Add(1)
		return
	}
	ts.BytesIn.Add(uint64(bytes))
	ts.RecordsIn.Add(uint64(records))
}

// Fetched counts one partition of a fetch response: failed, or read with
// its bytes and records (both 0 when it had nothing new).
func (ts *TopicStats) Fetched(ok bool, bytes int, records int64) {
	if ts == nil {
		return
	}
	ts.FetchRequests.Add(1)
	if !ok {
		ts.FailedFetch.Add(1)
		return
	}
	ts.BytesOut.Add(uint64(bytes))
	ts.RecordsOut.Add(uint64(records))
}

// Used reports whether the topic has seen traffic: like Kafka, which
// creates a topic's meters on its first request, a collector exports no
// series for an idle topic.
func (ts *TopicStats) Used() bool {
	return ts != nil && (ts.ProduceRequests.Load() > 0 || ts.FetchRequests.Load() > 0)
}
