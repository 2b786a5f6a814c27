package server

import (
	"github.com/skiffmq/skiff/clusterstate"
	"github.com/skiffmq/skiff/protocol"
)

// topicStats are a topic's traffic counters; clusterstate keeps them with
// the topic (see clusterstate.TopicStats) and the produce and fetch paths
// count into the partition's pointer.
type topicStats = clusterstate.TopicStats

// countFetch counts the partitions of a fetch response as it is sent.
func countFetch(results []fetchResult) {
	for i := range results {
		res := &results[i]
		if res.stats == nil {
			continue
		}
		if res.err != 0 || res.file == nil || res.file.Size == 0 {
			res.stats.Fetched(res.err == 0, 0, 0)
			continue
		}
		// Records are sent from the segment files unread, so what is
		// counted is the offsets delivered from the fetch offset on (a
		// compacted topic's gaps count too).
		res.stats.Fetched(true, int(res.file.Size), max(res.file.NextOffset-res.from, 0))
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
