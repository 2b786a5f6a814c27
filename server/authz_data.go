package server

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/acl"
)

// Authorization of the data path: Produce, Fetch, offsets lookups, record
// deletion, producer state and transaction markers (KafkaApis'
// handleProduceRequest, handleFetchRequest and friends).
func init() {
	authzRegister(kmsg.Produce, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.ProduceRequest)
		// Transactional records need WRITE on their transactional id;
		// KIP-679 moved the idempotence check to InitProducerId.
		if hasTransactionalRecords(req) &&
			(req.TransactionID == nil || !s.allowed(r, acl.OpWrite, acl.ResourceTransactionalID, *req.TransactionID)) {
			return denyAll(r, txnIDAuthFailed)
		}
		return nil, s.topicRule(r, "Topics", acl.OpWrite)
	})
	authzRegister(kmsg.Fetch, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.FetchRequest)
		if req.ReplicaID >= 0 || req.ReplicaState.ID >= 0 {
			// A follower's fetch needs CLUSTER_ACTION; without it every
			// partition answers TOPIC_AUTHORIZATION_FAILED, as in Kafka.
			if !s.allowedCluster(r, acl.OpClusterAction) {
				return denyAll(r, topicAuthFailed)
			}
			return nil, nil
		}
		after := s.topicRule(r, "Topics", acl.OpRead)
		if after != nil && len(req.Topics) == 0 {
			req.MaxWaitMillis = 0 // nothing left to wait for
		}
		return nil, after
	})
	authzRegister(kmsg.ListOffsets, topicsRule(acl.OpDescribe))
	authzRegister(kmsg.OffsetForLeaderEpoch, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest); req.ReplicaID >= 0 && !s.allowedCluster(r, acl.OpClusterAction) {
			return denyAll(r, clusterAuthFailed)
		}
		return nil, s.topicRule(r, "Topics", acl.OpDescribe)
	})
	authzRegister(kmsg.DeleteRecords, topicsRule(acl.OpDelete))
	authzRegister(kmsg.DescribeProducers, topicsRule(acl.OpRead))
	authzRegister(kmsg.WriteTxnMarkers, clusterRule(acl.OpClusterAction))
}

// hasTransactionalRecords reports whether any record batch of req has the
// transactional attribute (bit 4), as ProduceRequest.hasTransactionalRecords
// does. Batch header: baseOffset 8, length 4, leader epoch 4, magic 1,
// crc 4, attributes 2.
func hasTransactionalRecords(req *kmsg.ProduceRequest) bool {
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			b := req.Topics[i].Partitions[j].Records
			for len(b) >= 23 {
				if binary.BigEndian.Uint16(b[21:23])&0x10 != 0 {
					return true
				}
				n := int(int32(binary.BigEndian.Uint32(b[8:12])))
				if n <= 0 || 12+n > len(b) {
					break
				}
				b = b[12+n:]
			}
		}
	}
	return false
}
