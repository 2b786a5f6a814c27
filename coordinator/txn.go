package coordinator

// Transactional offset commits (KIP-98/KIP-447), as far as the group
// coordinator is concerned (see txn_offsets.go):
//
//   - TxnOffsetCommit writes OffsetCommit records in a transactional batch
//     (producer id/epoch set) and, once durable, calls
//     g.mu.txn.add(producerID, group, topic, partition, entry);
//   - the transaction coordinator's COMMIT/ABORT marker on the
//     __consumer_offsets partition (WriteTxnMarker) ends in
//     completeTxnLocked.
//
// Until then, OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT
// for the partitions involved, offset expiry spares them, and a group with
// an open transaction is not deleted for being empty. Replay already
// handles transactional batches and markers.

// txnOffsets holds offsets committed inside transactions that have not
// completed yet. Guarded by Groups.mu.
type txnOffsets struct {
	byProducer map[int64]map[string]map[string]map[int32]*offsetEntry // producer -> group -> topic -> partition
	openGroups map[string]map[int64]bool                              // group -> producers with pending offsets
}

func (t *txnOffsets) init() {
	t.byProducer = make(map[int64]map[string]map[string]map[int32]*offsetEntry)
	t.openGroups = make(map[string]map[int64]bool)
}

func (t *txnOffsets) add(producerID int64, groupID, topic string, partition int32, e *offsetEntry) {
	groups := t.byProducer[producerID]
	if groups == nil {
		groups = make(map[string]map[string]map[int32]*offsetEntry)
		t.byProducer[producerID] = groups
	}
	topics := groups[groupID]
	if topics == nil {
		topics = make(map[string]map[int32]*offsetEntry)
		groups[groupID] = topics
	}
	parts := topics[topic]
	if parts == nil {
		parts = make(map[int32]*offsetEntry)
		topics[topic] = parts
	}
	parts[partition] = e
	if t.openGroups[groupID] == nil {
		t.openGroups[groupID] = make(map[int64]bool)
	}
	t.openGroups[groupID][producerID] = true
}

func (t *txnOffsets) hasPending(groupID, topic string, partition int32) bool {
	for pid := range t.openGroups[groupID] {
		if _, ok := t.byProducer[pid][groupID][topic][partition]; ok {
			return true
		}
	}
	return false
}

func (t *txnOffsets) hasOpen(groupID string) bool { return len(t.openGroups[groupID]) > 0 }

// removePartition drops pending commits of a partition whose offset was
// deleted (a tombstone wins over an unfinished transaction).
func (t *txnOffsets) removePartition(groupID, topic string, partition int32) {
	for pid := range t.openGroups[groupID] {
		if parts := t.byProducer[pid][groupID][topic]; parts != nil {
			delete(parts, partition)
		}
	}
}

// take removes and returns a producer's pending commits.
func (t *txnOffsets) take(producerID int64) map[string]map[string]map[int32]*offsetEntry {
	groups := t.byProducer[producerID]
	delete(t.byProducer, producerID)
	for groupID := range groups {
		delete(t.openGroups[groupID], producerID)
		if len(t.openGroups[groupID]) == 0 {
			delete(t.openGroups, groupID)
		}
	}
	return groups
}

// completeTxnLocked applies a transaction marker: on commit the pending
// offsets become committed, unless a later plain commit of the same
// partition is already in the log (Kafka keeps the one written last).
func (g *Groups) completeTxnLocked(producerID int64, commit bool) {
	groups := g.mu.txn.take(producerID)
	if !commit {
		return
	}
	for groupID, topics := range groups {
		for topic, parts := range topics {
			for p, e := range parts {
				if cur := g.offsetLocked(groupID, topic, p); cur == nil || e.logOffset > cur.logOffset {
					g.putOffsetLocked(groupID, topic, p, e)
				}
			}
		}
	}
}
