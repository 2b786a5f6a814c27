package server

import (
	"github.com/skiffmq/skiff/coordinator/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The transactional producer's APIs: AddPartitionsToTxn v0-v5 (v4+ the
// batched form with verify-only checks, KIP-890), AddOffsetsToTxn v0-v4,
// EndTxn v0-v5 (v5 bumps the epoch at every transaction, KIP-890 part 2)
// and TxnOffsetCommit v0-v5.
func init() {
	register(kmsg.AddPartitionsToTxn, 0, 5, (*Server).handleAddPartitionsToTxn)
	register(kmsg.AddOffsetsToTxn, 0, 4, (*Server).handleAddOffsetsToTxn)
	register(kmsg.EndTxn, 0, 5, (*Server).handleEndTxn)
	register(kmsg.TxnOffsetCommit, 0, 5, (*Server).handleTxnOffsetCommit)
}

func (s *Server) handleAddPartitionsToTxn(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		parts := flattenTopics(len(req.Topics), func(i int) (string, []int32) { return req.Topics[i].Topic, req.Topics[i].Partitions })
		codes := s.txn.AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, parts, false, false)
		k := 0
		for _, t := range req.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, fencedCode(codes[k], req.Version, 2)
				k++
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	for _, tx := range req.Transactions {
		parts := flattenTopics(len(tx.Topics), func(i int) (string, []int32) { return tx.Topics[i].Topic, tx.Topics[i].Partitions })
		codes := s.txn.AddPartitions(tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, parts, false, tx.VerifyOnly)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		k := 0
		for _, t := range tx.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[k]
				k++
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp, nil
}

func flattenTopics(n int, topic func(int) (string, []int32)) []txn.TopicPartition {
	var out []txn.TopicPartition
	for i := range n {
		name, ps := topic(i)
		for _, p := range ps {
			out = append(out, txn.TopicPartition{Topic: name, Partition: p})
		}
	}
	return out
}

func (s *Server) handleAddOffsetsToTxn(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	tp := txn.TopicPartition{Topic: offsetsTopic, Partition: s.offsetsPartitionFor(req.Group)}
	codes := s.txn.AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, []txn.TopicPartition{tp}, true, false)
	resp.ErrorCode = fencedCode(codes[0], req.Version, 2)
	return resp, nil
}

func (s *Server) handleEndTxn(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	if req.TransactionalID == "" {
		// As Kafka's TransactionCoordinator: no id is a malformed request.
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp, nil
	}
	pid, epoch, code := s.txn.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, req.Version >= 5)
	resp.ErrorCode = fencedCode(code, req.Version, 2)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if code == 0 && req.Version >= 5 {
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
	}
	return resp, nil
}

func (s *Server) handleTxnOffsetCommit(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.TxnOffsetCommitRequest)
	code := int16(0)
	if req.Version >= 5 {
		// KIP-890 part 2: the client sends no AddOffsetsToTxn; the commit
		// adds the group's __consumer_offsets partition itself.
		tp := txn.TopicPartition{Topic: offsetsTopic, Partition: s.offsetsPartitionFor(req.Group)}
		code = s.txn.AddImplicit(req.TransactionalID, req.ProducerID, req.ProducerEpoch, tp, true)
	}
	if code == 0 {
		code = s.txn.CheckProducer(req.TransactionalID, req.ProducerID, req.ProducerEpoch)
	}
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		if code == kerr.ProducerFenced.Code {
			// An epoch the coordinator does not hold: Kafka's group
			// coordinator answers INVALID_PRODUCER_EPOCH, older or newer.
			code = kerr.InvalidProducerEpoch.Code
		}
		code = fencedCode(code, req.Version, 3)
		for _, t := range req.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	resp := s.groups.TxnOffsetCommit(groupContext(r), req)
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			p.ErrorCode = fencedCode(p.ErrorCode, req.Version, 3)
		}
	}
	return resp, nil
}
