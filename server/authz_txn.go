package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/acl"
)

// Authorization of producer ids and transactions (KafkaApis'
// handleInitProducerIdRequest, handleAddPartitionsToTxnRequest, ...):
// WRITE on the transactional id, READ on a group whose offsets go into
// the transaction, WRITE (partitions) or READ (offsets) on its topics.
func init() {
	authzRegister(kmsg.InitProducerID, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.InitProducerIDRequest)
		if req.TransactionalID != nil {
			if !s.allowed(r, acl.OpWrite, acl.ResourceTransactionalID, *req.TransactionalID) {
				return topLevelError(r, txnIDAuthFailed)
			}
			return nil, nil
		}
		// KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on the
		// cluster or WRITE on any topic.
		if !s.allowedCluster(r, acl.OpIdempotentWrite) &&
			!s.authz.AuthorizeAny(r.who, r.from, acl.OpWrite, acl.ResourceTopic) {
			return topLevelError(r, clusterAuthFailed)
		}
		return nil, nil
	})
	authzRegister(kmsg.AddPartitionsToTxn, authorizeAddPartitionsToTxn)
	authzRegister(kmsg.AddOffsetsToTxn, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.AddOffsetsToTxnRequest)
		if !s.allowed(r, acl.OpWrite, acl.ResourceTransactionalID, req.TransactionalID) {
			return topLevelError(r, txnIDAuthFailed)
		}
		if !s.allowed(r, acl.OpRead, acl.ResourceGroup, req.Group) {
			return topLevelError(r, groupAuthFailed)
		}
		return nil, nil
	})
	authzRegister(kmsg.EndTxn, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if !s.allowed(r, acl.OpWrite, acl.ResourceTransactionalID, r.kreq.(*kmsg.EndTxnRequest).TransactionalID) {
			return topLevelError(r, txnIDAuthFailed)
		}
		return nil, nil
	})
	authzRegister(kmsg.TxnOffsetCommit, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.TxnOffsetCommitRequest)
		if !s.allowed(r, acl.OpWrite, acl.ResourceTransactionalID, req.TransactionalID) {
			return denyAll(r, txnIDAuthFailed)
		}
		if !s.allowed(r, acl.OpRead, acl.ResourceGroup, req.Group) {
			return denyAll(r, groupAuthFailed)
		}
		return nil, s.topicRule(r, "Topics", acl.OpRead)
	})
	authzRegister(kmsg.DescribeTransactions, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		return nil, func(resp kmsg.Response) {
			for i := range resp.(*kmsg.DescribeTransactionsResponse).TransactionStates {
				st := &resp.(*kmsg.DescribeTransactionsResponse).TransactionStates[i]
				if !s.allowed(r, acl.OpDescribe, acl.ResourceTransactionalID, st.TransactionalID) {
					id := st.TransactionalID
					*st = kmsg.NewDescribeTransactionsResponseTransactionState()
					st.TransactionalID, st.ErrorCode = id, txnIDAuthFailed
				}
			}
		}
	})
	authzRegister(kmsg.ListTransactions, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		return nil, func(resp kmsg.Response) {
			lr := resp.(*kmsg.ListTransactionsResponse)
			kept := lr.TransactionStates[:0]
			for _, st := range lr.TransactionStates {
				if s.allowed(r, acl.OpDescribe, acl.ResourceTransactionalID, st.TransactionalID) {
					kept = append(kept, st)
				}
			}
			lr.TransactionStates = kept
		}
	})
}

// authorizeAddPartitionsToTxn: v4+ batches are broker-to-broker and need
// CLUSTER_ACTION. Before, WRITE on the transactional id, then WRITE on
// every topic: if any topic is denied, nothing is added, the denied
// partitions answer TOPIC_AUTHORIZATION_FAILED and the others
// OPERATION_NOT_ATTEMPTED.
func authorizeAddPartitionsToTxn(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
	if req.Version >= 4 {
		if !s.allowedCluster(r, acl.OpClusterAction) {
			return topLevelError(r, clusterAuthFailed)
		}
		return nil, nil
	}
	if !s.allowed(r, acl.OpWrite, acl.ResourceTransactionalID, req.TransactionalID) {
		return denyAll(r, txnIDAuthFailed)
	}
	denied := map[string]bool{}
	for _, t := range req.Topics {
		if !s.allowed(r, acl.OpWrite, acl.ResourceTopic, t.Topic) {
			denied[t.Topic] = true
		}
	}
	if len(denied) == 0 {
		return nil, nil
	}
	resp := errorResponse(r.kreq, r.version, kerr.OperationNotAttempted.Code).(*kmsg.AddPartitionsToTxnResponse)
	for i := range resp.Topics {
		if denied[resp.Topics[i].Topic] {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = topicAuthFailed
			}
		}
	}
	return resp, nil
}
