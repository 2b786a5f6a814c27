package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
)

// OffsetsPartitionFor returns the __consumer_offsets partition that holds
// group's records, out of n (AddOffsetsToTxn adds it to the transaction).
func OffsetsPartitionFor(group string, n int) int32 { return int32(partitionFor(group, n)) }

// TxnOffsetCommit handles TxnOffsetCommit v0-v5 for a transaction whose
// producer id and epoch the transaction coordinator has already checked.
// The offsets are written in a transactional batch of the producer and
// stay pending (invisible to OffsetFetch, UNSTABLE_OFFSET_COMMIT with
// require_stable) until WriteTxnMarker commits or drops them.
func (g *Groups) TxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	type target struct {
		rp    *kmsg.TxnOffsetCommitResponseTopicPartition
		topic string
		e     *offsetEntry
	}
	resp.Topics = make([]kmsg.TxnOffsetCommitResponseTopic, len(req.Topics))
	now := g.now().UnixMilli()
	var targets []target
	var recs []protocol.Record
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(t.Partitions))
		count, ok := g.topics.PartitionCount(t.Topic)
		for j, p := range t.Partitions {
			rp := &rt.Partitions[j]
			*rp = kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			if !ok || p.Partition < 0 || p.Partition >= count {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			if utf16Len(md) > g.cfg.OffsetMetadataMaxBytes {
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			e := &offsetEntry{offset: p.Offset, leaderEpoch: -1, metadata: md, commitTime: now, expireTime: -1}
			if req.Version >= 2 {
				e.leaderEpoch = p.LeaderEpoch
			}
			recs = append(recs, protocol.Record{
				OffsetDelta: int32(len(recs)),
				Key:         offsetCommitKey(req.Group, t.Topic, p.Partition),
				Value:       offsetCommitValue(e),
			})
			targets = append(targets, target{rp, t.Topic, e})
		}
	}
	if len(targets) == 0 {
		return resp
	}
	fail := func(code int16) *kmsg.TxnOffsetCommitResponse {
		for _, t := range targets {
			t.rp.ErrorCode = code
		}
		return resp
	}

	g.ensureLogs()
	g.lock()
	code := int16(0)
	if g.mu.closed {
		code = errCoordinatorNotAvailable
	} else if req.Version >= 3 && (req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil) {
		// KIP-447: a member of the group's current generation commits.
		// Validated as an OffsetCommit v9 would be: transactional commits
		// from KIP-848 members are not bound to OffsetCommit's v9 minimum.
		code = g.validateCommitLocked(&kmsg.OffsetCommitRequest{
			Version: g.txnCommitVersionLocked(req.Group), Group: req.Group, Generation: req.Generation, MemberID: req.MemberID, InstanceID: req.InstanceID,
		})
	}
	var w *logWriter
	if code == 0 {
		var err error
		if w, err = g.writerForLocked(req.Group); err != nil {
			code = appendErrorCode(err)
		}
	}
	g.unlock()
	if code != 0 {
		return fail(code)
	}

	h := protocol.BatchHeader{
		PartitionLeaderEpoch: -1,
		Attributes:           protocol.AttrTransactional,
		BaseTimestamp:        now,
		MaxTimestamp:         now,
		ProducerID:           req.ProducerID,
		ProducerEpoch:        req.ProducerEpoch,
		BaseSequence:         -1, // coordinator writes carry no sequence
	}
	batch, err := protocol.BuildBatch(nil, h, protocol.CodecNone, recs)
	if err != nil {
		return fail(errUnknownServerError)
	}
	base, err := w.log.AppendRecords(batch, true)
	if err != nil {
		g.logger.Error().Err(err).Str("group", req.Group).Msg("coordinator: appending transactional offsets failed")
		if isEpochError(err) {
			return fail(kerr.ProducerFenced.Code)
		}
		return fail(appendErrorCode(err))
	}
	g.lock()
	for i, t := range targets {
		t.e.logOffset = base + int64(i)
		g.ensureGroupLocked(req.Group)
		g.mu.txn.add(req.ProducerID, req.Group, t.topic, t.rp.Partition, t.e)
	}
	g.unlock()
	return resp
}

// isEpochError recognises the log's fencing of a stale producer epoch.
func isEpochError(err error) bool { return errors.Is(err, storage.ErrInvalidProducerEpoch) }

// WriteTxnMarker appends a transaction marker for the producer to the
// __consumer_offsets partition and applies it: on commit the producer's
// pending offsets become committed, on abort they are dropped. A partition
// that does not exist yet holds nothing of the transaction.
func (g *Groups) WriteTxnMarker(partition int32, producerID int64, epoch int16, commit bool) error {
	g.lock()
	if g.mu.closed {
		g.unlock()
		return errClosed
	}
	if partition < 0 || int(partition) >= len(g.mu.writers) {
		g.unlock()
		return nil
	}
	w := g.mu.writers[partition]
	g.unlock()
	now := g.now().UnixMilli()
	batch, err := protocol.BuildControlBatch(nil, protocol.BatchHeader{
		PartitionLeaderEpoch: -1,
		BaseTimestamp:        now,
		MaxTimestamp:         now,
		ProducerID:           producerID,
		ProducerEpoch:        epoch,
	}, commit, 0)
	if err != nil {
		return fmt.Errorf("coordinator: building marker: %w", err)
	}
	if _, err := w.log.AppendRecords(batch, true); err != nil && !isEpochError(err) {
		return fmt.Errorf("coordinator: writing marker to __consumer_offsets-%d: %w", partition, err)
	}
	g.lock()
	g.completeTxnLocked(producerID, commit)
	g.unlock()
	return nil
}

// txnCommitVersionLocked is the OffsetCommit version a transactional commit
// is validated as: 9 for a KIP-848 consumer group (member epochs), 8 for a
// classic one (generations).
func (g *Groups) txnCommitVersionLocked(group string) int16 {
	if grp := g.mu.groups[group]; grp != nil && !grp.isClassic() {
		return 9
	}
	return 8
}
