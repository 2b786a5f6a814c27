package server

import (
	"github.com/skiffmq/skiff/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.FindCoordinator, 0, 6, (*Server).handleFindCoordinator) }

// Coordinator key types.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

// handleFindCoordinator answers with the broker that coordinates a group
// or transactional id: the leader of its partition of the internal topic
// (a single node coordinates everything).
func (s *Server) handleFindCoordinator(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)

	// v4+ batch keys (KIP-699); earlier versions carry a single key.
	if req.Version < 4 {
		code := s.coordinatorKeyError(req.CoordinatorType, req.CoordinatorKey)
		if code == 0 {
			resp.NodeID, resp.Host, resp.Port, code = s.coordinatorFor(r, req.CoordinatorType, req.CoordinatorKey)
		}
		resp.ErrorCode = code
		if code != 0 {
			resp.NodeID, resp.Host, resp.Port = -1, "", -1
		}
		return resp, nil
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.ErrorCode = s.coordinatorKeyError(req.CoordinatorType, key)
		if c.ErrorCode == 0 {
			c.NodeID, c.Host, c.Port, c.ErrorCode = s.coordinatorFor(r, req.CoordinatorType, key)
		}
		if c.ErrorCode != 0 {
			c.NodeID, c.Host, c.Port = -1, "", -1
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp, nil
}

// coordinatorKeyError checks a coordinator key and, as Kafka does, makes
// sure the internal topic behind that coordinator exists, so that tools
// see __consumer_offsets once a group has looked up its coordinator.
func (s *Server) coordinatorKeyError(keyType int8, key string) int16 {
	if key == "" || (keyType != coordinatorGroup && keyType != coordinatorTransaction) {
		return kerr.InvalidRequest.Code
	}
	if _, exists := s.meta.view(internalTopicFor(keyType)); exists {
		return 0
	}
	var err error
	if keyType == coordinatorGroup {
		_, err = s.createOffsetsTopic()
	} else {
		_, err = s.createTxnStateTopic()
	}
	if err != nil {
		s.log.Error().Err(err).Msg("creating an internal topic")
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// coordinatorFor is the coordinator of a key whose internal topic exists:
// the leader of the key's partition of it, as Kafka places coordinators
// (abs(hashCode(key)) % partitions; the same rule for groups and
// transactional ids). A partition without a live leader is
// COORDINATOR_NOT_AVAILABLE, which clients retry.
func (s *Server) coordinatorFor(r *request, keyType int8, key string) (int32, string, int32, int16) {
	if s.cfg.Cluster == nil {
		h, p := s.advertisedFor(r)
		return s.cfg.NodeID, h, p, 0
	}
	parts := s.meta.partitions(internalTopicFor(keyType))
	if len(parts) == 0 {
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code
	}
	leader := parts[coordinator.OffsetsPartitionFor(key, len(parts))].Leader
	h, p, ok := s.brokerAddrFor(r, leader)
	if !ok {
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code
	}
	return leader, h, p, 0
}

func internalTopicFor(keyType int8) string {
	if keyType == coordinatorGroup {
		return offsetsTopic
	}
	return txnStateTopic
}
