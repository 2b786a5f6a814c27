package storage

import "time"

// Observer receives storage events for metrics. Storage knows nothing of
// how they are exported (the server turns them into Prometheus series), so
// the hooks take plain numbers. They run on the append and flush paths,
// some under a log's lock: they must be cheap and must not block or call
// back into storage. Nil hooks are skipped.
type Observer struct {
	// FlushRound is called after each successful fsync round of a log
	// (group commit): how long its fdatasync calls took together, and how
	// many records the round made durable (the group-commit batch size).
	FlushRound func(fsync time.Duration, records int64)
}

// SegmentCount is the number of segments of the log, the active one
// included.
func (l *Log) SegmentCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.mu.segs)
}
