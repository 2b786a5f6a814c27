package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The ACL APIs, answered as Kafka answers them without an authorizer
// (authorizer.class.name unset): SECURITY_DISABLED. v0 was removed in
// Kafka 4.0 (KIP-896).
func init() {
	register(kmsg.DescribeACLs, 1, 3, (*Server).handleDescribeACLs)
	register(kmsg.CreateACLs, 1, 3, (*Server).handleCreateACLs)
	register(kmsg.DeleteACLs, 1, 3, (*Server).handleDeleteACLs)
}

const noAuthorizerMessage = "No Authorizer is configured on the broker"

func (s *Server) handleDescribeACLs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	resp.ErrorCode = kerr.SecurityDisabled.Code
	resp.ErrorMessage = kmsg.StringPtr(noAuthorizerMessage)
	return resp, nil
}

func (s *Server) handleCreateACLs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for range req.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode = kerr.SecurityDisabled.Code
		res.ErrorMessage = kmsg.StringPtr(noAuthorizerMessage)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

func (s *Server) handleDeleteACLs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range req.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode = kerr.SecurityDisabled.Code
		res.ErrorMessage = kmsg.StringPtr(noAuthorizerMessage)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
