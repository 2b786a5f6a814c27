package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skiffmq/skiff/clusterstate"
	"github.com/skiffmq/skiff/coordinator/txn"
	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce is advertised from v0 (see refusedVersion) but served from v3,
// the first version that carries magic-2 record batches only.
func init() { register(kmsg.Produce, 0, 13, (*Server).handleProduce) }

func (s *Server) handleProduce(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	validAcks := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	// waits collects, per appended partition, what the response must wait
	// for before it is sent: the batch becoming durable (and visible).
	var waits []durableWait
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name, topicCode := s.produceTopicName(req.Version, rt)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			switch {
			case !validAcks:
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
			case topicCode != 0:
				sp.ErrorCode = topicCode
			case isInternalTopic(name):
				// Only the coordinators write there, and not through
				// Produce. Checked before the lookup, as Kafka's
				// ReplicaManager does, so a client gets the same answer
				// before the topic exists.
				sp.ErrorCode = clusterstate.ClientWriteError(name).Code
			default:
				p := s.meta.partition(name, rp.Partition)
				if p == nil {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					break
				}
				if code := s.checkReplicatedProduce(p, req.Acks); code != nil {
					sp.ErrorCode = code.Code
					break
				}
				w, ok := s.producePartition(p, rp.Records, produceTxn{req.Version, req.TransactionID}, &sp)
				w.part, w.acks = p, req.Acks
				p.Stats.Produced(ok, len(rp.Records), w.lastOffset-sp.BaseOffset+1)
				if ok && req.Acks != 0 {
					w.topicIdx, w.partIdx = len(resp.Topics), len(st.Partitions)
					waits = append(waits, w)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// Counted whatever became of the batches, as Kafka records the
	// request's size once it is handled.
	r.throttle = max(r.throttle, s.quotas.record(quotaProduce, r.auth.principal, r.clientID, float64(r.size), time.Now()))
	if req.Acks == 0 {
		return nil, nil
	}
	if len(waits) == 0 {
		return resp, nil
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	return &deferredResponse{Response: resp, wait: func() {
		// Not r.ctx: a produce already appended is still acknowledged when
		// the server begins a graceful stop.
		ctx, cancel := context.WithTimeout(r.connCtx, max(timeout, time.Millisecond))
		defer cancel()
		for _, w := range waits {
			if s.repl != nil {
				if code := s.repl.waitProduce(ctx, w); code != nil {
					resp.Topics[w.topicIdx].Partitions[w.partIdx].ErrorCode = code.Code
				}
				continue
			}
			if err := waitHighWatermark(ctx, w.log, w.lastOffset); err != nil {
				code := kerr.RequestTimedOut
				if ctx.Err() == nil {
					code = appendErrorCode(err) // the log failed: KAFKA_STORAGE_ERROR
				}
				resp.Topics[w.topicIdx].Partitions[w.partIdx].ErrorCode = code.Code
			}
		}
	}}, nil
}

type durableWait struct {
	log        *storage.Log
	lastOffset int64
	part       *partition // as published when appended (its leader epoch)
	acks       int16
	// where the partition's answer sits in the response
	topicIdx, partIdx int
}

// produceTopicName resolves the topic of a produce request: by name before
// v13, by topic id from v13 (KIP-516).
func (s *Server) produceTopicName(version int16, rt kmsg.ProduceRequestTopic) (string, int16) {
	if version < 13 {
		return rt.Topic, 0
	}
	t, ok := s.meta.topicByID(rt.TopicID)
	if !ok {
		return "", kerr.UnknownTopicID.Code
	}
	return t.Name, 0
}

// producePartition validates and appends one partition's records, filling
// sp. It reports whether the append happened (and so must be waited for).
func (s *Server) producePartition(p *partition, records []byte, tx produceTxn, sp *kmsg.ProduceResponseTopicPartition) (durableWait, bool) {
	cfg := s.meta.produceConfig(p.Topic)
	if len(records) == 0 {
		sp.ErrorCode = kerr.InvalidRecord.Code
		return durableWait{}, false
	}
	now := time.Now().UnixMilli()
	h, code, msg, nullKeys := checkBatches(records, cfg, now)
	if code != nil {
		sp.ErrorCode = code.Code
		if nullKeys > 0 {
			msg = s.nullKeyErrors(records, p, nullKeys, sp)
		}
		if msg != "" {
			sp.ErrorMessage = kmsg.StringPtr(msg)
		}
		return durableWait{}, false
	}
	guard, code := s.checkProducer(p, &h, tx)
	if code != nil {
		s.metrics.rejectedBatch(code.Code)
		sp.ErrorCode = code.Code
		return durableWait{}, false
	}
	// checkBatches ran protocol.ValidateBatch (CRC included): storage need
	// not checksum the batch a second time.
	// The leader epoch goes into the batch (KIP-101): 0 on a single node.
	opts := storage.AppendOptions{Validated: true, Guard: guard, LeaderEpoch: p.LeaderEpoch}
	if cfg.logAppendTime {
		opts.LogAppendTime = now
	}
	res, err := p.Log.Append(records, opts)
	if err != nil {
		code := appendErrorCode(err)
		sp.ErrorCode = code.Code
		if h.HasProducerID() {
			s.metrics.rejectedBatch(sp.ErrorCode)
		}
		if code == kerr.OutOfOrderSequenceNumber || code == kerr.InvalidProducerEpoch {
			// Kafka's ReplicaManager reports the log start offset with
			// the errors the log itself raises on append (the producer
			// state checks), and -1 only for those found before it.
			sp.LogStartOffset = p.Log.LogStartOffset()
		}
		if !errors.Is(err, storage.ErrWriteFailed) && !errors.Is(err, storage.ErrLogFailed) {
			// Disk faults are logged once by the partition, not per request.
			s.log.Warn().Err(err).Str("topic", p.Topic).Int32("partition", p.Index).Msg("append rejected")
		}
		return durableWait{}, false
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogStartOffset = res.LogStartOffset
	if cfg.logAppendTime && !res.Duplicate {
		sp.LogAppendTime = now
	}
	return durableWait{log: p.Log, lastOffset: res.LastOffset}, true
}

// produceConfig is the subset of topic configs that produce validation needs.
type produceConfig struct {
	maxMessageBytes   int64
	logAppendTime     bool
	compacted         bool // cleanup.policy includes compact
	timestampAfterMs  int64
	timestampBeforeMs int64
}

// produceConfig reads the produce settings from the topic's config, which
// clusterstate parsed once.
func (c *cluster) produceConfig(topicName string) produceConfig {
	t, ok := c.Topic(topicName)
	if !ok {
		return produceConfig{}
	}
	tc := &t.Config
	return produceConfig{
		maxMessageBytes:   tc.MaxMessageBytes,
		logAppendTime:     tc.LogAppendTime,
		compacted:         tc.CleanupCompact,
		timestampAfterMs:  tc.TimestampAfterMs,
		timestampBeforeMs: tc.TimestampBeforeMs,
	}
}

// checkBatches applies the checks Kafka makes before appending: from
// Produce v3 a partition carries exactly one magic-2 batch (else
// INVALID_RECORD), with a valid CRC, no larger than max.message.bytes, and
// CreateTime timestamps within the allowed window, and for a compacted
// topic a key on every record (nullKeys > 0 counts the records without).
func checkBatches(records []byte, cfg produceConfig, now int64) (_ protocol.BatchHeader, _ *kerr.Error, msg string, nullKeys int) {
	var none protocol.BatchHeader
	size, err := protocol.PeekBatchSize(records)
	switch {
	case errors.Is(err, protocol.ErrBatchLength):
		return none, kerr.CorruptMessage, "record batch length is below the minimum", 0
	case err != nil || size > len(records):
		return none, kerr.InvalidRecord, "Produce requests must have at least one complete record batch per partition", 0
	case size < len(records):
		return none, kerr.InvalidRecord, "Produce requests are only allowed to contain exactly one record batch per partition", 0
	}
	h, err := protocol.ValidateBatch(records)
	if errors.Is(err, protocol.ErrBatchOffsetDelta) {
		// An offset range that ends before it starts: Kafka's
		// LogValidator.validateBatch throws InvalidRecordException.
		return none, kerr.InvalidRecord, "", 0
	}
	if err != nil {
		return none, appendErrorCode(err), "", 0
	}
	if int64(h.Size()) > cfg.maxMessageBytes {
		return none, kerr.MessageTooLarge, fmt.Sprintf("The record batch size %d exceeds max.message.bytes %d", h.Size(), cfg.maxMessageBytes), 0
	}
	if h.NumRecords <= 0 {
		return none, kerr.InvalidRecord, "record batch has no records", 0
	}
	// Walk the records as Kafka's LogValidator does, so that a batch whose
	// header lies about its records (count, offsets, lengths) is refused
	// rather than stored for consumers to trip over. Kafka answers these
	// without an error message.
	info, err := protocol.ValidateRecords(records[:h.Size()], protocol.DefaultMaxDecompressedSize)
	if err != nil {
		return none, recordsErrorCode(err), "", 0
	}
	if cfg.compacted && info.NullKeys > 0 {
		return none, kerr.InvalidRecord, "", info.NullKeys
	}
	if !cfg.logAppendTime && info.MaxTimestamp != h.MaxTimestamp {
		// Kafka sets the batch's max timestamp from its records; a wrong
		// one would misdirect the time index and ListOffsets.
		protocol.SetMaxTimestamp(records[:h.Size()], info.MaxTimestamp)
		h.MaxTimestamp = info.MaxTimestamp
	}
	if !cfg.logAppendTime {
		if h.MaxTimestamp > now && h.MaxTimestamp-now > cfg.timestampAfterMs {
			return none, kerr.InvalidTimestamp, fmt.Sprintf("timestamp %d is more than message.timestamp.after.max.ms ahead of broker time", h.MaxTimestamp), 0
		}
		// Kafka checks every record's timestamp, and a record may be older
		// than the batch's first one.
		if oldest := info.MinTimestamp; oldest >= 0 && oldest < now && now-oldest > cfg.timestampBeforeMs {
			return none, kerr.InvalidTimestamp, fmt.Sprintf("timestamp %d is more than message.timestamp.before.max.ms behind broker time", oldest), 0
		}
	}
	return h, nil, "", 0
}

// recordsErrorCode maps a protocol.ValidateRecords error to Kafka's code:
// records that contradict their batch or framing are INVALID_RECORD (Kafka's
// InvalidRecordException); compressed bytes that do not decompress, or
// decompress past the limit, are CORRUPT_MESSAGE. (Kafka itself answers
// UNKNOWN_SERVER_ERROR for undecodable compressed bytes, its decompressor's
// exception having no error code.)
func recordsErrorCode(err error) *kerr.Error {
	if errors.Is(err, protocol.ErrRecordsCorrupt) {
		return kerr.InvalidRecord
	}
	return kerr.CorruptMessage
}

// appendErrorCode maps a storage or batch error to its Kafka error code.
func appendErrorCode(err error) *kerr.Error {
	switch {
	case errors.Is(err, protocol.ErrBatchMagic):
		return kerr.InvalidRecord
	case errors.Is(err, protocol.ErrBatchTruncated), errors.Is(err, protocol.ErrBatchLength),
		errors.Is(err, protocol.ErrBatchCRC), errors.Is(err, protocol.ErrBatchCodec),
		errors.Is(err, protocol.ErrBatchOffsetDelta):
		return kerr.CorruptMessage
	case errors.Is(err, storage.ErrClosed):
		return kerr.NotLeaderForPartition
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch
	case errors.Is(err, storage.ErrInvalidTxnState):
		return kerr.InvalidTxnState
	}
	return kerr.KafkaStorageError
}

// waitHighWatermark blocks until the log's high watermark passes offset,
// that is, until the record at offset is durable and visible to readers.
func waitHighWatermark(ctx context.Context, l *storage.Log, offset int64) error {
	for {
		ch := l.Wait()
		if l.HighWatermark() > offset {
			return nil
		}
		if err := l.Err(); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// produceTxn is what the transaction checks need from the request.
type produceTxn struct {
	version int16
	id      *string // transactional_id
}

// firstImplicitAddProduce is the first Produce version whose transactional
// batches add their partition to the transaction (KIP-890 part 2; Kafka's
// produceRequestVersionToTransactionSupportedOperation).
const firstImplicitAddProduce = 12

// checkProducer applies the producer rules that need more than the log:
// clients may not write control batches (INVALID_RECORD), an idempotent
// batch must carry a sequence, and a transactional batch must belong to an
// open transaction that holds the partition: verified with the coordinator
// before v12 (KIP-890 part 1), added to it from v12 (part 2). The
// coordinator's answer is bound to the append by a verification guard
// (storage/verification.go), so a batch whose transaction ended meanwhile
// is refused under the partition's lock instead of landing after the
// marker. Sequence and epoch checks against the partition's producer
// state happen in storage.Log.Append, under the same lock.
func (s *Server) checkProducer(p *partition, h *protocol.BatchHeader, tx produceTxn) (storage.VerificationGuard, *kerr.Error) {
	var none storage.VerificationGuard
	if !h.HasProducerID() && !h.IsTransactional() && !h.IsControl() {
		return none, nil
	}
	switch {
	case h.IsControl():
		return none, kerr.InvalidRecord
	case !h.HasProducerID():
		return none, kerr.InvalidRecord // transactional without a producer id
	case h.BaseSequence < 0:
		return none, kerr.OutOfOrderSequenceNumber
	case !h.IsTransactional():
		return none, nil
	}
	guard, ongoing := p.Log.StartVerification(h.ProducerID, h.ProducerEpoch)
	if ongoing {
		return guard, nil // open here; Append checks it still is
	}
	tp := txn.TopicPartition{Topic: p.Topic, Partition: p.Index}
	var code int16
	if tx.version >= firstImplicitAddProduce {
		id := ""
		if tx.id != nil {
			id = *tx.id
		}
		code = s.txn.AddImplicit(id, h.ProducerID, h.ProducerEpoch, tp, false)
		if code == kerr.ProducerFenced.Code {
			// As Kafka's AddPartitionsToTxnManager answers a produce.
			code = kerr.InvalidProducerEpoch.Code
		}
	} else {
		code = s.txn.VerifyProduce(h.ProducerID, h.ProducerEpoch, tp)
	}
	if code != 0 {
		return none, kerr.ErrorForCode(code).(*kerr.Error)
	}
	if s.afterTxnVerify != nil {
		s.afterTxnVerify(p.Topic, p.Index)
	}
	return guard, nil
}
