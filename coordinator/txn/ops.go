package txn

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Error codes the operations return; the server maps PRODUCER_FENCED to
// INVALID_PRODUCER_EPOCH for request versions older than KIP-588.
var (
	errNotCoordinator      = kerr.NotCoordinator.Code
	errConcurrent          = kerr.ConcurrentTransactions.Code
	errInvalidMapping      = kerr.InvalidProducerIDMapping.Code
	errFenced              = kerr.ProducerFenced.Code
	errInvalidTxnState     = kerr.InvalidTxnState.Code
	errInvalidTimeout      = kerr.InvalidTransactionTimeout.Code
	errUnknownPartition    = kerr.UnknownTopicOrPartition.Code
	errOperationNotAttempt = kerr.OperationNotAttempted.Code
)

func (c *Coordinator) closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.closed
}

// bumpEpoch moves m to the next epoch, or to a new producer id once the
// epoch is exhausted, as Kafka does.
func (c *Coordinator) bumpEpoch(m *txnMeta) bool {
	if m.epoch >= math.MaxInt16-1 {
		pid, err := c.allocatePID()
		if err != nil {
			c.log.Error().Err(err).Msg("txn: cannot allocate a producer id")
			return false
		}
		m.prevPID, m.pid, m.epoch = m.pid, pid, 0
		return true
	}
	m.epoch++
	return true
}

// InitProducerID handles InitProducerId for a transactional id: it
// registers the id or bumps its epoch, fencing any older producer; an open
// transaction is aborted first. expectedPID/expectedEpoch (v3+, -1 if not
// given) let a producer recover its own id after an error (KIP-360).
func (c *Coordinator) InitProducerID(id string, timeoutMs int32, expectedPID int64, expectedEpoch int16) (int64, int16, int16) {
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > c.cfg.MaxTimeout {
		return -1, -1, errInvalidTimeout
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if c.closed() {
		return -1, -1, errNotCoordinator
	}
	m := c.get(id)
	if m == nil {
		pid, err := c.allocatePID()
		if err != nil {
			c.log.Error().Err(err).Msg("txn: cannot allocate a producer id")
			return -1, -1, kerr.CoordinatorNotAvailable.Code
		}
		m = &txnMeta{id: id, pid: pid, prevPID: -1, epoch: 0, lastEpoch: -1, timeoutMs: timeoutMs, state: Empty, start: -1}
		if err := c.persist(m); err != nil {
			c.log.Error().Err(err).Msg("txn: init producer id")
			return -1, -1, errNotCoordinator
		}
		return m.pid, m.epoch, 0
	}
	if expectedPID >= 0 {
		if expectedPID != m.pid && expectedPID != m.prevPID {
			// Kafka fences a producer re-initialising (KIP-360) with an
			// id the coordinator does not hold for this transactional id.
			return -1, -1, errFenced
		}
		if expectedEpoch != m.epoch && expectedEpoch != m.lastEpoch {
			return -1, -1, errFenced
		}
	}
	switch m.state {
	case PrepareCommit, PrepareAbort:
		// A crash or a failed marker write left it half done: finish it.
		if code := c.finish(m); code != 0 {
			return -1, -1, errConcurrent
		}
	case Ongoing:
		// A new producer fences the old one, or the producer recovers
		// from an error: either way the open transaction is aborted, with
		// an epoch bump that fences its batches out of every partition.
		if code := c.end(m, false, true); code != 0 {
			return -1, -1, code
		}
	}
	m = c.get(id)
	if m.state == PrepareCommit || m.state == PrepareAbort {
		return -1, -1, errConcurrent // markers not all written yet; the client retries
	}
	if expectedPID >= 0 && expectedEpoch == m.lastEpoch && expectedEpoch != m.epoch {
		// A retry after a bump the producer did not hear about, or the
		// producer recovering after the coordinator fenced its timed-out
		// transaction: the current epoch is its own.
		m.lastEpoch = -1
		m.timeoutMs = timeoutMs
		m.state, m.parts, m.start = Empty, nil, -1
		if err := c.persist(m); err != nil {
			return -1, -1, errNotCoordinator
		}
		return m.pid, m.epoch, 0
	}
	old := m.epoch
	if !c.bumpEpoch(m) {
		return -1, -1, kerr.CoordinatorNotAvailable.Code
	}
	m.lastEpoch = -1
	if expectedPID >= 0 {
		m.lastEpoch = old
	}
	m.timeoutMs = timeoutMs
	m.state, m.parts, m.start = Empty, nil, -1
	if err := c.persist(m); err != nil {
		c.log.Error().Err(err).Msg("txn: init producer id")
		return -1, -1, errNotCoordinator
	}
	return m.pid, m.epoch, 0
}

// check validates a request's producer id and epoch against id's state.
func (c *Coordinator) check(id string, pid int64, epoch int16) (*txnMeta, int16) {
	m := c.get(id)
	switch {
	case m == nil || m.pid != pid:
		return nil, errInvalidMapping
	case m.epoch != epoch:
		return nil, errFenced
	}
	return m, 0
}

// AddPartitions handles AddPartitionsToTxn (and AddOffsetsToTxn, with
// skipCheck for the __consumer_offsets partition, which may not exist
// yet). It returns one error code per partition. With verifyOnly (v4+) it
// only reports, per partition, whether it is already in the transaction.
func (c *Coordinator) AddPartitions(id string, pid int64, epoch int16, parts []TopicPartition, skipCheck, verifyOnly bool) []int16 {
	codes := make([]int16, len(parts))
	fill := func(code int16) []int16 {
		for i := range codes {
			codes[i] = code
		}
		return codes
	}
	if verifyOnly {
		m, code := c.check(id, pid, epoch)
		if code != 0 {
			return fill(code)
		}
		for i, tp := range parts {
			if m.state != Ongoing || !m.has(tp) {
				codes[i] = errInvalidTxnState
			}
		}
		return codes
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if c.closed() {
		return fill(errNotCoordinator)
	}
	m, code := c.check(id, pid, epoch)
	if code != 0 {
		return fill(code)
	}
	if m.state == PrepareCommit || m.state == PrepareAbort {
		c.finish(m)
		return fill(errConcurrent)
	}
	if !skipCheck {
		bad := false
		for i, tp := range parts {
			if !c.deps.PartitionExists(tp.Topic, tp.Partition) {
				codes[i], bad = errUnknownPartition, true
			}
		}
		if bad {
			for i := range codes {
				if codes[i] == 0 {
					codes[i] = errOperationNotAttempt
				}
			}
			return codes
		}
	}
	if m.state != Ongoing {
		m.state, m.parts, m.start = Ongoing, nil, c.now()
	}
	added := false
	for _, tp := range parts {
		if !m.has(tp) {
			m.parts = append(m.parts, tp)
			added = true
		}
	}
	if !added && c.get(id).state == Ongoing {
		return codes
	}
	if err := c.persist(m); err != nil {
		c.log.Error().Err(err).Msg("txn: add partitions")
		return fill(errNotCoordinator)
	}
	return codes
}

// EndTxn handles EndTxn: it commits or aborts the open transaction. With
// bumpEpoch (v5+, KIP-890 part 2; see v2.go) the epoch moves on with every
// transaction and the new id and epoch are returned.
func (c *Coordinator) EndTxn(id string, pid int64, epoch int16, commit, bumpEpoch bool) (int64, int16, int16) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if c.closed() {
		return -1, -1, errNotCoordinator
	}
	if bumpEpoch {
		return c.endTxnV2(id, pid, epoch, commit)
	}
	m, code := c.check(id, pid, epoch)
	if code != 0 {
		return -1, -1, code
	}
	switch m.state {
	case Ongoing:
		if code := c.end(m, commit, false); code != 0 {
			return -1, -1, code
		}
		m = c.get(id)
		return m.pid, m.epoch, 0
	case CompleteCommit:
		if commit {
			return m.pid, m.epoch, 0 // a retry
		}
	case CompleteAbort:
		if !commit {
			return m.pid, m.epoch, 0
		}
	case PrepareCommit, PrepareAbort:
		c.finish(m)
		return -1, -1, errConcurrent
	}
	return -1, -1, errInvalidTxnState
}

// end moves an Ongoing transaction through Prepare and Complete, writing
// the markers in between. With fence the epoch is bumped first, so the
// markers fence the producer out of every partition. Called with opMu.
func (c *Coordinator) end(m *txnMeta, commit, fence bool) int16 {
	if fence {
		old := m.epoch
		if !c.bumpEpoch(m) {
			return kerr.CoordinatorNotAvailable.Code
		}
		m.lastEpoch = old
	}
	m.state = PrepareAbort
	if commit {
		m.state = PrepareCommit
	}
	if err := c.persist(m); err != nil {
		c.log.Error().Err(err).Str("transactional_id", m.id).Msg("txn: writing prepare record")
		return errNotCoordinator
	}
	c.finish(m.clone())
	return 0 // the outcome is decided; markers are retried if they failed
}

// finish writes the markers of a prepared transaction and its Complete
// record. It returns non-zero if it must be retried.
func (c *Coordinator) finish(m *txnMeta) int16 {
	commit := m.state == PrepareCommit
	if len(m.parts) > 0 {
		if err := c.deps.WriteMarkers(m.pid, m.epoch, commit, m.parts); err != nil {
			c.log.Error().Err(err).Str("transactional_id", m.id).Msg("txn: writing transaction markers; will retry")
			return errConcurrent
		}
	}
	m.state = CompleteAbort
	if commit {
		m.state = CompleteCommit
	}
	m.parts, m.start = nil, -1
	if err := c.persist(m); err != nil {
		c.log.Error().Err(err).Str("transactional_id", m.id).Msg("txn: writing complete record; will retry")
		return errConcurrent
	}
	if commit {
		c.outcomes.committed.Add(1)
	} else {
		c.outcomes.aborted.Add(1)
	}
	return 0
}

// completePrepared finishes every transaction left in a Prepare state.
func (c *Coordinator) completePrepared() {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	for _, m := range c.snapshot() {
		if m.state == PrepareCommit || m.state == PrepareAbort {
			c.finish(m)
		}
	}
}

func (c *Coordinator) snapshot() []*txnMeta {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*txnMeta, 0, len(c.mu.txns))
	for _, m := range c.mu.txns {
		out = append(out, m.clone())
	}
	return out
}

// Tick aborts transactions open longer than their timeout (bumping the
// epoch, which fences the producer as Kafka does), retries unfinished
// completions and expires transactional ids idle longer than
// transactional.id.expiration.ms. Start calls it periodically; tests may
// call it directly.
func (c *Coordinator) Tick() {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	now := c.now()
	for _, m := range c.snapshot() {
		if c.closed() {
			return
		}
		switch m.state {
		case Ongoing:
			if m.start >= 0 && now-m.start > int64(m.timeoutMs) {
				c.log.Info().Str("transactional_id", m.id).Int64("producer_id", m.pid).Msg("txn: aborting timed-out transaction")
				c.end(m, false, true)
			}
		case PrepareCommit, PrepareAbort:
			c.finish(m)
		case Empty, CompleteCommit, CompleteAbort:
			if now-m.lastUpdate > c.cfg.IDExpiration.Milliseconds() {
				m.state = Dead
				if err := c.persist(m); err != nil {
					c.log.Warn().Err(err).Str("transactional_id", m.id).Msg("txn: expiring transactional id")
				}
			}
		}
	}
}

// VerifyProduce checks a transactional produce (KIP-890 part 1): the
// producer must have an open transaction that holds the partition.
func (c *Coordinator) VerifyProduce(pid int64, epoch int16, tp TopicPartition) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.mu.byPID[pid]
	switch {
	case m == nil:
		return errInvalidMapping
	case epoch != m.epoch:
		// An epoch the coordinator does not hold, older or newer, is
		// INVALID_PRODUCER_EPOCH in Kafka's produce verification.
		return kerr.InvalidProducerEpoch.Code
	case m.state != Ongoing || !m.has(tp):
		return errInvalidTxnState
	}
	return 0
}

// CheckProducer validates a TxnOffsetCommit's transactional id, producer
// id and epoch, and that the transaction is open.
func (c *Coordinator) CheckProducer(id string, pid int64, epoch int16) int16 {
	m, code := c.check(id, pid, epoch)
	if code != 0 {
		return code
	}
	if m.state != Ongoing {
		return errInvalidTxnState
	}
	return 0
}

// Description is a transaction as DescribeTransactions and
// ListTransactions report it.
type Description struct {
	TransactionalID string
	State           State
	TimeoutMs       int32
	StartTimestamp  int64
	ProducerID      int64
	ProducerEpoch   int16
	Partitions      []TopicPartition
}

// Describe returns id's transaction, or ok=false if the id is unknown.
func (c *Coordinator) Describe(id string) (Description, bool) {
	m := c.get(id)
	if m == nil {
		return Description{}, false
	}
	return describe(m), true
}

func describe(m *txnMeta) Description {
	return Description{
		TransactionalID: m.id, State: m.state, TimeoutMs: m.timeoutMs, StartTimestamp: m.start,
		ProducerID: m.pid, ProducerEpoch: m.epoch, Partitions: m.parts,
	}
}

// List returns every transaction.
func (c *Coordinator) List() []Description {
	ms := c.snapshot()
	out := make([]Description, len(ms))
	for i, m := range ms {
		out[i] = describe(m)
	}
	return out
}

// NowMs is the coordinator clock in milliseconds (ListTransactions'
// duration filter).
func (c *Coordinator) NowMs() int64 { return c.now() }
