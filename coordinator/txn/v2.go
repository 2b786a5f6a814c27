package txn

import "math"

// Transactions v2 (KIP-890 part 2), used by clients once transaction.version
// 2 is finalized:
//
//   - EndTxn v5 bumps the producer epoch at every transaction end (the
//     markers carry the new epoch, so a late batch of the old epoch is
//     fenced in every partition) and returns the new id and epoch; a retry
//     of it arrives with the epoch before the bump;
//   - Produce v12 and TxnOffsetCommit v5 add their partition to the
//     transaction themselves instead of the client's AddPartitionsToTxn /
//     AddOffsetsToTxn (AddImplicit);
//   - an abort with no open transaction is legal and only bumps the epoch.

// endTxnV2 is EndTxn v5+, after Kafka's TransactionCoordinator.endTransaction
// for clients of transaction version 2. Called with opMu held.
func (c *Coordinator) endTxnV2(id string, pid int64, epoch int16, commit bool) (int64, int16, int16) {
	m := c.get(id)
	if m == nil {
		return -1, -1, errInvalidMapping
	}
	// A retry of an EndTxn whose bump the client did not hear about: the
	// epoch moved one on, or past its maximum to a new producer id.
	retryOnOverflow := m.prevPID == pid && epoch == math.MaxInt16-1 && m.epoch == 0
	retryOnBump := m.pid == pid && m.epoch == epoch+1
	if m.pid != pid && !retryOnOverflow {
		return -1, -1, errInvalidMapping
	}
	var valid bool
	switch m.state {
	case PrepareCommit, PrepareAbort:
		valid = retryOnBump
	case CompleteCommit, CompleteAbort:
		valid = retryOnBump || retryOnOverflow || epoch == m.epoch
	default: // Empty, Ongoing
		valid = epoch == m.epoch
	}
	if !valid {
		return -1, -1, errFenced
	}
	retry := retryOnBump || retryOnOverflow
	switch m.state {
	case Ongoing:
		if code := c.end(m, commit, true); code != 0 {
			return -1, -1, code
		}
		m = c.get(id)
		return m.pid, m.epoch, 0
	case CompleteCommit, CompleteAbort, Empty:
		done := (m.state == CompleteCommit && commit) || (m.state == CompleteAbort && !commit)
		switch {
		case retry && done:
			return m.pid, m.epoch, 0
		case !retry && !commit:
			// An abort with nothing open: the producer wants a fresh
			// epoch (it does so after an abortable error), which the
			// empty abort gives it.
			if code := c.end(m, false, true); code != 0 {
				return -1, -1, code
			}
			m = c.get(id)
			return m.pid, m.epoch, 0
		}
	case PrepareCommit, PrepareAbort:
		if (m.state == PrepareCommit) == commit {
			c.finish(m)
			return -1, -1, errConcurrent
		}
	}
	return -1, -1, errInvalidTxnState
}

// AddImplicit adds a partition to the open transaction of producer pid, or
// opens one, for a Produce v12+ or TxnOffsetCommit v5+ request (Kafka's
// ADD_PARTITION operation of AddPartitionsToTxnManager). offsets marks the
// __consumer_offsets partition, which may not exist yet. The codes are
// those AddPartitionsToTxn would answer.
func (c *Coordinator) AddImplicit(id string, pid int64, epoch int16, tp TopicPartition, offsets bool) int16 {
	if id == "" {
		c.mu.Lock()
		if m := c.mu.byPID[pid]; m != nil {
			id = m.id
		}
		c.mu.Unlock()
		if id == "" {
			return errInvalidMapping
		}
	}
	return c.AddPartitions(id, pid, epoch, []TopicPartition{tp}, offsets, false)[0]
}
