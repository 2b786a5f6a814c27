package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeCluster, 0, 2, (*Server).handleDescribeCluster) }

// DescribeCluster endpoint types (KIP-919).
const (
	endpointTypeBroker     = 1
	endpointTypeController = 2
)

// clusterOperations are the ACL operations Kafka supports on the cluster
// resource; without an authorizer every one of them is allowed.
var clusterOperations = []kmsg.ACLOperation{
	kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
	kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter,
	kmsg.ACLOperationDescribe,
}

// topicOperations are the ACL operations Kafka supports on a topic
// (AclEntry.supportedOperations); without an authorizer all are allowed.
var topicOperations = []kmsg.ACLOperation{
	kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
	kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter,
	kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
}

func operationsBitfield(ops []kmsg.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		bits |= 1 << uint(op)
	}
	return bits
}

// handleDescribeCluster answers with the live brokers (this node alone on
// a single node) and the controller, at their addresses on the listener
// the request came in on.
func (s *Server) handleDescribeCluster(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = endpointTypeBroker
	resp.ClusterAuthorizedOperations = authorizedOperationsOmitted
	if req.Version >= 1 && req.EndpointType != endpointTypeBroker {
		resp.ErrorCode = kerr.MismatchedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER")
		resp.ControllerID = -1
		return resp, nil
	}
	resp.ClusterID = s.meta.clusterID()
	resp.ControllerID = s.controllerID()
	for _, ba := range s.brokersFor(r) {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = ba.id, ba.host, ba.port, ba.rack
		resp.Brokers = append(resp.Brokers, b)
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = operationsBitfield(clusterOperations)
	}
	return resp, nil
}
