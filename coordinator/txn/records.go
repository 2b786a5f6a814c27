package txn

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/coordinator/internal/logscan"
	"github.com/skiffmq/skiff/protocol"
)

// encodeRecord builds the batch holding m's TxnMetadata record, keyed by
// its transactional id (a tombstone for Dead, which compaction then
// removes).
func encodeRecord(m *txnMeta, ts int64) ([]byte, error) {
	key := kmsg.NewTxnMetadataKey()
	key.TransactionalID = m.id
	rec := protocol.Record{Key: key.AppendTo(nil)}
	if m.state != Dead {
		v := kmsg.NewTxnMetadataValue()
		v.ProducerID = m.pid
		v.PreviousProducerID = m.prevPID
		v.ProducerEpoch = m.epoch
		v.TimeoutMillis = m.timeoutMs
		v.State = kmsg.TransactionState(m.state)
		v.LastUpdateTimestamp = m.lastUpdate
		v.StartTimestamp = m.start
		byTopic := map[string]int{}
		for _, tp := range m.parts {
			i, ok := byTopic[tp.Topic]
			if !ok {
				i = len(v.Topics)
				byTopic[tp.Topic] = i
				t := kmsg.NewTxnMetadataValueTopic()
				t.Topic = tp.Topic
				v.Topics = append(v.Topics, t)
			}
			v.Topics[i].Partitions = append(v.Topics[i].Partitions, tp.Partition)
		}
		// lastEpoch has no field of its own in version 0; it rides in the
		// (unused here) NextProducerEpoch tag of version 1.
		v.Version = 1
		v.NextProducerEpoch = m.lastEpoch
		rec.Value = v.AppendTo(nil)
	}
	h := protocol.BatchHeader{
		PartitionLeaderEpoch: -1,
		BaseTimestamp:        ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
	}
	return protocol.BuildBatch(nil, h, protocol.CodecNone, []protocol.Record{rec})
}

// replay rebuilds state from one partition of __transaction_state,
// whatever codec its batches use.
func (c *Coordinator) replay(part int, l Log) error {
	err := logscan.Batches(l, func(b []byte, h protocol.BatchHeader) error {
		if h.IsControl() {
			return nil
		}
		recs, err := protocol.DecodeRecords(b, nil)
		if err != nil {
			// Skipped, not fatal: one unreadable batch (written by a client
			// before produces to internal topics were refused, or damaged
			// on disk) must not keep the broker from starting.
			c.log.Error().Err(err).Str("topic", "__transaction_state").Int("partition", part).
				Int64("offset", h.BaseOffset).Msg("txn: skipping undecodable batch on replay")
			return nil
		}
		for _, r := range recs {
			c.replayRecord(r.Key, r.Value)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("txn: replaying __transaction_state-%d: %w", part, err)
	}
	return nil
}

func (c *Coordinator) replayRecord(key, value []byte) {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil || k.Version > 0 {
		return // not a transaction record this version knows
	}
	if value == nil {
		c.install(&txnMeta{id: k.TransactionalID, state: Dead})
		return
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		c.log.Warn().Err(err).Str("transactional_id", k.TransactionalID).Msg("txn: skipping undecodable transaction record")
		return
	}
	m := &txnMeta{
		id:         k.TransactionalID,
		pid:        v.ProducerID,
		prevPID:    v.PreviousProducerID,
		epoch:      v.ProducerEpoch,
		lastEpoch:  -1,
		timeoutMs:  v.TimeoutMillis,
		state:      State(v.State),
		start:      v.StartTimestamp,
		lastUpdate: v.LastUpdateTimestamp,
	}
	if v.Version >= 1 {
		m.lastEpoch = v.NextProducerEpoch
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.parts = append(m.parts, TopicPartition{t.Topic, p})
		}
	}
	c.install(m)
}
