package server

import (
	"errors"
	"path/filepath"
	"sync"
	"time"

	"github.com/skiffmq/skiff/clusterstate"
	"github.com/skiffmq/skiff/coordinator"
	"github.com/skiffmq/skiff/coordinator/txn"
	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
)

// txnStateTopic is the internal topic the transaction coordinator
// persists transaction state to.
const txnStateTopic = clusterstate.TxnStateTopic

// producerIDFile holds the end of the producer id block in use.
const producerIDFile = "producer-ids.json"

// newTxnCoordinator builds the transaction coordinator from the broker
// settings and the existing __transaction_state partitions.
func (s *Server) newTxnCoordinator() (*txn.Coordinator, error) {
	ms := func(name string) time.Duration {
		return time.Duration(parseLong(s.cfg.setting(name))) * time.Millisecond
	}
	var logs []txn.Log
	for _, l := range s.internalLogs(txnStateTopic) {
		logs = append(logs, l)
	}
	return txn.New(txn.Config{
		MaxTimeout:    ms("transaction.max.timeout.ms"),
		IDExpiration:  ms("transactional.id.expiration.ms"),
		AbortInterval: ms("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
	}, txn.Deps{
		Logger:       s.log.With().Str("component", "txn").Logger(),
		Logs:         logs,
		CreateLogs:   s.createTxnStateTopic,
		WriteMarkers: s.writeTxnMarkers,
		PartitionExists: func(topic string, partition int32) bool {
			return s.meta.partition(topic, partition) != nil
		},
		IDFile: filepath.Join(s.cfg.DataDir, producerIDFile),
		FS:     s.store.FS(),
		Now:    s.cfg.clock().Now,
	})
}

// createTxnStateTopic creates __transaction_state on the first
// transactional write, with transaction.state.log.num.partitions
// partitions.
func (s *Server) createTxnStateTopic() ([]txn.Log, error) {
	n := int32(parseLong(s.cfg.setting("transaction.state.log.num.partitions")))
	if _, err := s.meta.EnsureInternalTopic(txnStateTopic, n, parseLong(s.cfg.setting("transaction.state.log.segment.bytes"))); err != nil {
		return nil, err
	}
	var logs []txn.Log
	for _, l := range s.meta.InternalLogs(txnStateTopic) {
		logs = append(logs, l)
	}
	return logs, nil
}

// writeTxnMarkers appends a COMMIT or ABORT marker to every partition of a
// transaction, in parallel, each durably. __consumer_offsets partitions go
// through the group coordinator, which applies the pending offsets. A
// partition whose topic was deleted meanwhile is skipped; a marker older
// than the partition's producer epoch (the producer was fenced by a later
// marker already) is dropped, as Kafka does.
func (s *Server) writeTxnMarkers(pid int64, epoch int16, commit bool, parts []txn.TopicPartition) error {
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	now := s.cfg.clock().Now().UnixMilli()
	for i, tp := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tp.Topic == offsetsTopic {
				errs[i] = s.groups.WriteTxnMarker(tp.Partition, pid, epoch, commit)
				return
			}
			p := s.meta.partition(tp.Topic, tp.Partition)
			if p == nil {
				return
			}
			err := appendTxnMarker(p, now, pid, epoch, commit, 0)
			if err != nil && !errors.Is(err, storage.ErrInvalidProducerEpoch) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// appendTxnMarker appends one COMMIT or ABORT control batch for the
// producer to p, durably.
func appendTxnMarker(p *partition, now, pid int64, epoch int16, commit bool, coordinatorEpoch int32) error {
	batch, err := protocol.BuildControlBatch(nil, protocol.BatchHeader{
		BaseTimestamp: now, MaxTimestamp: now, ProducerID: pid, ProducerEpoch: epoch,
	}, commit, coordinatorEpoch)
	if err != nil {
		return err
	}
	// Stamped with the partition's leader epoch, as a produced batch is
	// (KIP-101): followers copy it, and their epoch caches must agree.
	_, err = p.Log.Append(batch, storage.AppendOptions{LeaderEpoch: p.LeaderEpoch, Sync: true})
	return err
}

// offsetsPartitionFor is the __consumer_offsets partition of a group.
func (s *Server) offsetsPartitionFor(group string) int32 {
	return coordinator.OffsetsPartitionFor(group, int(s.cfg.offsetsTopicPartitions))
}
