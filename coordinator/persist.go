package coordinator

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/skiffmq/skiff/coordinator/internal/logscan"
	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	errClosed = errors.New("coordinator: closed")
	errNoLogs = errors.New("coordinator: __consumer_offsets is not available")
)

// kv is one record the coordinator writes to __consumer_offsets: a key and
// a value, nil for a tombstone.
type kv struct {
	key, value []byte
}

// encodeBatch builds the uncompressed batch holding recs, all stamped with
// timestamp ts (ms), through the protocol package's batch encoder. The base
// offset is left 0 and the leader epoch -1 for the log to assign.
func encodeBatch(ts int64, recs []kv) ([]byte, error) {
	out := make([]protocol.Record, len(recs))
	for i, r := range recs {
		out[i] = protocol.Record{OffsetDelta: int32(i), Key: r.key, Value: r.value}
	}
	h := protocol.BatchHeader{
		PartitionLeaderEpoch: -1,
		BaseTimestamp:        ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
	}
	return protocol.BuildBatch(nil, h, protocol.CodecNone, out)
}

// pendingWrite is records bound for one __consumer_offsets partition and
// what to do once they are durable (or failed). apply runs under
// Groups.mu, in log order, with the offset of the write's first record.
type pendingWrite struct {
	records []kv
	apply   func(firstOffset int64, err error)
}

// logWriter serializes appends to one __consumer_offsets partition. Writes
// queued while an append is in flight are group-committed in the next
// append. Because results are applied in append order, the in-memory state
// always equals a replay of the log.
type logWriter struct {
	g   *Groups
	log Log

	mu    sync.Mutex // guards queue and busy; never held while taking Groups.mu
	cond  *sync.Cond // signalled when busy drops
	queue []*pendingWrite
	busy  bool // a goroutine is inside flush's append loop
}

func newLogWriter(g *Groups, l Log) *logWriter {
	w := &logWriter{g: g, log: l}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// flush appends everything queued, unless another goroutine already is
// flushing (it will pick the queue up before it stops).
func (w *logWriter) flush() {
	w.mu.Lock()
	if w.busy {
		w.mu.Unlock()
		return
	}
	w.busy = true
	for len(w.queue) > 0 {
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		w.write(batch)
		w.mu.Lock()
	}
	w.busy = false
	w.cond.Broadcast()
	w.mu.Unlock()
}

// drain waits for an in-flight flush and flushes what is left; Close uses
// it once no new writes can be queued.
func (w *logWriter) drain() {
	w.mu.Lock()
	for w.busy {
		w.cond.Wait()
	}
	w.mu.Unlock()
	w.flush()
}

func (w *logWriter) write(batch []*pendingWrite) {
	var recs []kv
	for _, pw := range batch {
		recs = append(recs, pw.records...)
	}
	base, err := int64(-1), error(nil)
	if len(recs) > 0 {
		var buf []byte
		if buf, err = encodeBatch(w.g.now().UnixMilli(), recs); err != nil {
			w.g.logger.Error().Err(err).Int("records", len(recs)).Msg("coordinator: encoding a __consumer_offsets batch failed")
		} else if base, err = w.log.AppendRecords(buf, true); err != nil {
			w.g.logger.Error().Err(err).Int("records", len(recs)).Msg("coordinator: appending to __consumer_offsets failed")
		}
	}
	w.g.lock()
	next := base
	for _, pw := range batch {
		pw.apply(next, err)
		next += int64(len(pw.records))
	}
	w.g.unlock()
}

// enqueueLocked queues records for the group's partition; apply runs once
// they are durable. With nothing to write, apply still waits for the
// writes queued before it (so an answer never reflects state that is not
// yet durable), or runs right away if there are none; it also runs right
// away when the write cannot even be queued.
func (g *Groups) enqueueLocked(groupID string, records []kv, apply func(firstOffset int64, err error)) {
	if g.mu.closed {
		apply(-1, errClosed)
		return
	}
	if len(records) == 0 && len(g.mu.writers) == 0 {
		apply(-1, nil)
		return
	}
	w, err := g.writerForLocked(groupID)
	if err != nil {
		apply(-1, err)
		return
	}
	w.mu.Lock()
	if len(records) == 0 && !w.busy && len(w.queue) == 0 {
		w.mu.Unlock()
		apply(-1, nil)
		return
	}
	w.queue = append(w.queue, &pendingWrite{records: records, apply: apply})
	w.mu.Unlock()
	if !slices.Contains(g.mu.dirty, w) {
		g.mu.dirty = append(g.mu.dirty, w)
	}
}

// ensureLogs creates __consumer_offsets, if it does not exist yet, before
// an operation that may be the first to write to it takes mu: creating it
// opens its logs and saves the cluster metadata (fsyncs), which must not
// stall every group operation. A failure is left for writerForLocked to
// retry and report.
func (g *Groups) ensureLogs() {
	if g.logsReady.Load() || g.createLogs == nil {
		return
	}
	g.createMu.Lock()
	defer g.createMu.Unlock()
	if g.logsReady.Load() {
		return
	}
	logs, err := g.createLogs()
	if err != nil || len(logs) == 0 {
		return
	}
	g.mu.Lock()
	if len(g.mu.writers) == 0 {
		for _, l := range logs {
			g.mu.writers = append(g.mu.writers, newLogWriter(g, l))
		}
	}
	g.mu.Unlock() // nothing queued: no flush needed, unlike unlock()
	g.logsReady.Store(true)
}

// writerForLocked returns the writer of the group's partition. The entry
// points that can write first call ensureLogs, so __consumer_offsets
// exists by then; only if that creation failed is it retried here, under
// mu, at the cost of holding every group operation for one topic
// creation.
func (g *Groups) writerForLocked(groupID string) (*logWriter, error) {
	if len(g.mu.writers) == 0 {
		if g.createLogs == nil {
			return nil, errNoLogs
		}
		logs, err := g.createLogs()
		if err != nil || len(logs) == 0 {
			g.logger.Error().Err(err).Msg("coordinator: creating __consumer_offsets failed")
			return nil, fmt.Errorf("%w: %v", errNoLogs, err)
		}
		for _, l := range logs {
			g.mu.writers = append(g.mu.writers, newLogWriter(g, l))
		}
		g.logsReady.Store(true)
	}
	return g.mu.writers[partitionFor(groupID, len(g.mu.writers))], nil
}

// appendErrorCode maps a failed append to the error Kafka's coordinator
// returns for it.
func appendErrorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.Is(err, errClosed):
		return errNotCoordinator
	case errors.Is(err, errNoLogs):
		return errCoordinatorNotAvailable
	case errors.As(err, &ke):
		switch ke {
		case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.RequestTimedOut:
			return errCoordinatorNotAvailable
		case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
			return errNotCoordinator
		case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
			return errUnknownServerError
		}
		return ke.Code
	}
	return errNotCoordinator // a storage failure: KAFKA_STORAGE_ERROR maps to NOT_COORDINATOR
}

// replayLocked rebuilds state from one partition of __consumer_offsets.
// Batches may use any codec (an older broker or Kafka itself may have
// compressed them). A batch that cannot be decoded is logged and skipped:
// losing the records of one unreadable batch is better than a broker that
// cannot start.
func (g *Groups) replayLocked(part int, l Log) error {
	err := logscan.Batches(l, func(b []byte, h protocol.BatchHeader) error {
		recs, err := protocol.DecodeRecords(b, nil)
		if err != nil {
			g.logger.Error().Err(err).Str("topic", "__consumer_offsets").Int("partition", part).
				Int64("offset", h.BaseOffset).Msg("coordinator: skipping undecodable batch on replay")
			return nil
		}
		g.replayed += int64(len(recs))
		g.replayBatchLocked(h, recs)
		return nil
	})
	if err != nil {
		return fmt.Errorf("coordinator: replaying __consumer_offsets-%d: %w", part, err)
	}
	return nil
}

func (g *Groups) replayBatchLocked(h protocol.BatchHeader, recs []protocol.Record) {
	if h.IsControl() {
		for _, r := range recs {
			var k kmsg.ControlRecordKey
			if err := k.ReadFrom(r.Key); err != nil {
				continue
			}
			switch k.Type {
			case kmsg.ControlRecordKeyTypeCommit:
				g.completeTxnLocked(h.ProducerID, true)
			case kmsg.ControlRecordKeyTypeAbort:
				g.completeTxnLocked(h.ProducerID, false)
			}
		}
		return
	}
	pid := int64(-1)
	if h.IsTransactional() {
		pid = h.ProducerID
	}
	for _, r := range recs {
		g.replayRecordLocked(r.Key, r.Value, pid, h.BaseOffset+int64(r.OffsetDelta))
	}
}

// replayRecordLocked applies one __consumer_offsets record. Records it
// cannot decode are skipped with a warning rather than failing the start:
// the topic may hold record types of newer Kafka versions.
func (g *Groups) replayRecordLocked(key, value []byte, producerID, logOffset int64) {
	ver, ok := keyVersion(key)
	if !ok {
		return
	}
	switch {
	case ver == 0 || ver == 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			g.logger.Warn().Err(err).Int64("offset", logOffset).Msg("coordinator: skipping undecodable offset commit key")
			return
		}
		if value == nil {
			g.deleteOffsetLocked(k.Group, k.Topic, k.Partition)
			return
		}
		e, err := decodeOffsetCommitValue(value)
		if err != nil {
			g.logger.Warn().Err(err).Int64("offset", logOffset).Msg("coordinator: skipping undecodable offset commit value")
			return
		}
		e.logOffset = logOffset
		if producerID >= 0 {
			g.ensureGroupLocked(k.Group)
			g.mu.txn.add(producerID, k.Group, k.Topic, k.Partition, e)
			return
		}
		g.putOffsetLocked(k.Group, k.Topic, k.Partition, e)
	case ver == 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			g.logger.Warn().Err(err).Int64("offset", logOffset).Msg("coordinator: skipping undecodable group metadata key")
			return
		}
		if value == nil {
			g.removeGroupLocked(k.Group)
			return
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			g.logger.Warn().Err(err).Str("group", k.Group).Msg("coordinator: skipping undecodable group metadata")
			return
		}
		g.loadClassicGroupLocked(k.Group, &v)
	case ver >= keyStreamsGroupMetadata && ver <= keyStreamsGroupTopology:
		g.replayStreamsRecordLocked(ver, key, value)
	default:
		g.replayConsumerRecordLocked(ver, key, value)
	}
}

func decodeOffsetCommitValue(value []byte) (*offsetEntry, error) {
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return nil, err
	}
	e := &offsetEntry{
		offset:      v.Offset,
		leaderEpoch: -1,
		metadata:    v.Metadata,
		commitTime:  v.CommitTimestamp,
		expireTime:  -1,
	}
	if v.Version >= 3 {
		e.leaderEpoch = v.LeaderEpoch
	}
	if v.Version == 1 {
		e.expireTime = v.ExpireTimestamp
	}
	return e, nil
}

// loadClassicGroupLocked restores a classic group from its last
// GroupMetadataValue. Members come back with only the selected protocol,
// as in Kafka; the group is Stable if it has members.
func (g *Groups) loadClassicGroupLocked(id string, v *kmsg.GroupMetadataValue) {
	var stateTime time.Time
	if v.CurrentStateTimestamp >= 0 {
		stateTime = time.UnixMilli(v.CurrentStateTimestamp)
	}
	grp := newClassicGroup(id, stateTime)
	grp.protocolType = v.ProtocolType
	grp.generation = v.Generation
	if v.Protocol != nil {
		grp.protocol = *v.Protocol
	}
	if v.Leader != nil {
		grp.leader = *v.Leader
	}
	for _, vm := range v.Members {
		rt := vm.RebalanceTimeoutMillis
		if rt == -1 {
			rt = vm.SessionTimeoutMillis
		}
		grp.add(&member{
			id:                 vm.MemberID,
			instanceID:         vm.InstanceID,
			clientID:           vm.ClientID,
			clientHost:         vm.ClientHost,
			rebalanceTimeoutMs: rt,
			sessionTimeoutMs:   vm.SessionTimeoutMillis,
			protocolType:       v.ProtocolType,
			protocols:          []protocolMeta{{name: grp.protocol, metadata: vm.Subscription}},
			assignment:         vm.Assignment,
		})
	}
	grp.protocolType = v.ProtocolType
	if len(grp.members) > 0 {
		grp.state, grp.prevState = stateStable, stateStable
		if grp.byID[grp.leader] == nil {
			grp.leader = grp.members[0].id
		}
	}
	grp.subscribed = grp.computeSubscribed()
	g.replaceGroupLocked(grp)
}

// replaceGroupLocked installs grp under its id, retiring any previous group
// object (whose timers then become no-ops).
func (g *Groups) replaceGroupLocked(grp *group) {
	if old := g.mu.groups[grp.id]; old != nil {
		old.stopTimers()
	}
	g.mu.groups[grp.id] = grp
}

func (g *Groups) removeGroupLocked(id string) {
	if grp := g.mu.groups[id]; grp != nil {
		grp.stopTimers()
		grp.state = stateDead
		delete(g.mu.groups, id)
	}
}

// onLoadedLocked restarts what a replay cannot restore: every member's
// session starts afresh (members must heartbeat or rejoin), as in Kafka.
func (g *Groups) onLoadedLocked() {
	for _, id := range g.sortedGroupIDsLocked() {
		grp := g.mu.groups[id]
		if grp.kind == kindConsumer {
			g.consumerOnLoadedLocked(grp)
			continue
		}
		if grp.kind == kindStreams {
			g.streamsOnLoadedLocked(grp)
			continue
		}
		for _, m := range grp.members {
			g.rescheduleHeartbeatLocked(grp, m, msDuration(m.sessionTimeoutMs))
		}
		if len(grp.members) > g.cfg.MaxGroupSize {
			// group.max.size shrank: rebalance so extra members get refused.
			g.prepareRebalanceLocked(grp)
		}
	}
}
