package txn

import "sync/atomic"

// Stats are the coordinator's transaction counters, for metrics.
type Stats struct {
	Open      int    // transactions begun and not yet completed
	Committed uint64 // transactions completed by commit since start
	Aborted   uint64 // transactions completed by abort (client or timeout) since start
}

// outcomes counts completed transactions; updated after the Complete
// record is written, read at scrape time.
type outcomes struct {
	committed, aborted atomic.Uint64
}

// Stats returns the current counters.
func (c *Coordinator) Stats() Stats {
	c.mu.Lock()
	open := 0
	for _, m := range c.mu.txns {
		switch m.state {
		case Ongoing, PrepareCommit, PrepareAbort:
			open++
		}
	}
	c.mu.Unlock()
	return Stats{Open: open, Committed: c.outcomes.committed.Load(), Aborted: c.outcomes.aborted.Load()}
}
