package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0-v5: producer ids for idempotent producers, and id plus
// epoch (fencing older instances) for transactional ones.
func init() { register(kmsg.InitProducerID, 0, 5, (*Server).handleInitProducerID) }

func (s *Server) handleInitProducerID(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID == nil:
		// Idempotent producer: a fresh id every time, as Kafka does.
		resp.ProducerID, resp.ErrorCode = s.txn.AllocateProducerID()
		if resp.ErrorCode == 0 {
			resp.ProducerEpoch = 0
		}
	case *req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
	default:
		expectedPID, expectedEpoch := int64(-1), int16(-1)
		if req.Version >= 3 {
			expectedPID, expectedEpoch = req.ProducerID, req.ProducerEpoch
		}
		resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode = s.txn.InitProducerID(*req.TransactionalID, req.TransactionTimeoutMillis, expectedPID, expectedEpoch)
		resp.ErrorCode = fencedCode(resp.ErrorCode, req.Version, 4)
	}
	return resp, nil
}

// fencedCode maps PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for request
// versions older than since, which predate KIP-588's new code.
func fencedCode(code, version, since int16) int16 {
	if code == kerr.ProducerFenced.Code && version < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}
