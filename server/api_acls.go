package server

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/acl"
)

// The ACL APIs (KIP-140, prefixed patterns KIP-290). Without an
// authorizer (authorizer.class.name unset) they answer SECURITY_DISABLED,
// as Kafka does. v0 was removed in Kafka 4.0 (KIP-896).
func init() {
	register(kmsg.DescribeACLs, 1, 3, (*Server).handleDescribeACLs)
	register(kmsg.CreateACLs, 1, 3, (*Server).handleCreateACLs)
	register(kmsg.DeleteACLs, 1, 3, (*Server).handleDeleteACLs)
	// Their authorization (DESCRIBE on the cluster to describe, ALTER
	// to change, as AclApis checks) is in the handlers, after the check
	// for UNKNOWN elements that Kafka makes while parsing.
	for _, k := range []kmsg.Key{kmsg.DescribeACLs, kmsg.CreateACLs, kmsg.DeleteACLs} {
		authzNone[int16(k)] = true
	}
}

const noAuthorizerMessage = "No Authorizer is configured on the broker"

// errUnknownACLElement closes the connection of an ACL request with an
// UNKNOWN (or undefined) resource type, pattern type, operation or
// permission: Kafka's request classes refuse to parse them
// (CreateAclsRequest.validate and its siblings), which closes it.
var errUnknownACLElement = errors.New("server: ACL request with UNKNOWN elements")

func unknownACLElement(rt, pt, op, perm int8) bool {
	return !acl.ResourceType(rt).Known() || !acl.PatternType(pt).Known() ||
		!acl.Operation(op).Known() || !acl.Permission(perm).Known()
}

func (s *Server) handleDescribeACLs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if s.authz == nil {
		resp.ErrorCode = kerr.SecurityDisabled.Code
		resp.ErrorMessage = kmsg.StringPtr(noAuthorizerMessage)
		return resp, nil
	}
	if unknownACLElement(int8(req.ResourceType), int8(req.ResourcePatternType), int8(req.Operation), int8(req.PermissionType)) {
		return nil, errUnknownACLElement
	}
	if !s.allowedCluster(r, acl.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	f := acl.Filter{
		ResourceType: acl.ResourceType(req.ResourceType),
		Name:         req.ResourceName,
		PatternType:  acl.PatternType(req.ResourcePatternType),
		Principal:    req.Principal,
		Host:         req.Host,
		Operation:    acl.Operation(req.Operation),
		Permission:   acl.Permission(req.PermissionType),
	}
	if err := f.Validate(); err != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ErrorMessage = kmsg.StringPtr(err.Error())
		return resp, nil
	}
	// Bindings come sorted by resource, so one pass groups them.
	for _, b := range s.meta.ACLs().Describe(f) {
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != kmsg.ACLResourceType(b.ResourceType) ||
			resp.Resources[n-1].ResourceName != b.Name ||
			resp.Resources[n-1].ResourcePatternType != kmsg.ACLResourcePatternType(b.PatternType) {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType = kmsg.ACLResourceType(b.ResourceType)
			res.ResourceName = b.Name
			res.ResourcePatternType = kmsg.ACLResourcePatternType(b.PatternType)
			resp.Resources = append(resp.Resources, res)
			n++
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host = b.Principal, b.Host
		a.Operation = kmsg.ACLOperation(b.Operation)
		a.PermissionType = kmsg.ACLPermissionType(b.Permission)
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, a)
	}
	return resp, nil
}

func (s *Server) handleCreateACLs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
	}
	if s.authz == nil {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.SecurityDisabled.Code
			resp.Results[i].ErrorMessage = kmsg.StringPtr(noAuthorizerMessage)
		}
		return resp, nil
	}
	for _, c := range req.Creations {
		if unknownACLElement(int8(c.ResourceType), int8(c.ResourcePatternType), int8(c.Operation), int8(c.PermissionType)) {
			return nil, errUnknownACLElement
		}
	}
	if !s.allowedCluster(r, acl.OpAlter) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		return resp, nil
	}
	// A filter value (ANY, MATCH) where a binding needs a concrete one
	// makes Kafka's conversion of the request to AclBindings throw, and
	// every creation answers UNKNOWN_SERVER_ERROR.
	for _, c := range req.Creations {
		if c.ResourceType == kmsg.ACLResourceTypeAny || c.Operation == kmsg.ACLOperationAny ||
			c.PermissionType == kmsg.ACLPermissionTypeAny ||
			c.ResourcePatternType == kmsg.ACLResourcePatternTypeAny || c.ResourcePatternType == kmsg.ACLResourcePatternTypeMatch {
			for i := range resp.Results {
				resp.Results[i].ErrorCode = kerr.UnknownServerError.Code
				resp.Results[i].ErrorMessage = kmsg.StringPtr("creation with a filter value (ANY or MATCH): " + acl.Binding{
					ResourceType: acl.ResourceType(c.ResourceType), PatternType: acl.PatternType(c.ResourcePatternType),
					Operation: acl.Operation(c.Operation), Permission: acl.Permission(c.PermissionType),
				}.String())
			}
			return resp, nil
		}
	}
	var valid []acl.Binding
	var validIdx []int
	for i, c := range req.Creations {
		b := acl.Binding{
			ResourceType: acl.ResourceType(c.ResourceType),
			Name:         c.ResourceName,
			PatternType:  acl.PatternType(c.ResourcePatternType),
			Principal:    c.Principal,
			Host:         c.Host,
			Operation:    acl.Operation(c.Operation),
			Permission:   acl.Permission(c.PermissionType),
		}
		if err := b.Validate(); err != nil {
			resp.Results[i].ErrorCode = kerr.InvalidRequest.Code
			resp.Results[i].ErrorMessage = kmsg.StringPtr(err.Error())
			continue
		}
		valid = append(valid, b)
		validIdx = append(validIdx, i)
	}
	if len(valid) == 0 {
		return resp, nil
	}
	if err := s.meta.CreateACLs(valid); err != nil {
		s.log.Error().Err(err).Msg("saving acls")
		for _, i := range validIdx {
			resp.Results[i].ErrorCode = kerr.UnknownServerError.Code
			resp.Results[i].ErrorMessage = kmsg.StringPtr(err.Error())
		}
	}
	return resp, nil
}

func (s *Server) handleDeleteACLs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
	}
	if s.authz == nil {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.SecurityDisabled.Code
			resp.Results[i].ErrorMessage = kmsg.StringPtr(noAuthorizerMessage)
		}
		return resp, nil
	}
	for _, f := range req.Filters {
		if unknownACLElement(int8(f.ResourceType), int8(f.ResourcePatternType), int8(f.Operation), int8(f.PermissionType)) {
			return nil, errUnknownACLElement
		}
	}
	if !s.allowedCluster(r, acl.OpAlter) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		return resp, nil
	}
	var filters []acl.Filter
	var idx []int
	for i, f := range req.Filters {
		af := acl.Filter{
			ResourceType: acl.ResourceType(f.ResourceType),
			Name:         f.ResourceName,
			PatternType:  acl.PatternType(f.ResourcePatternType),
			Principal:    f.Principal,
			Host:         f.Host,
			Operation:    acl.Operation(f.Operation),
			Permission:   acl.Permission(f.PermissionType),
		}
		if err := af.Validate(); err != nil {
			resp.Results[i].ErrorCode = kerr.InvalidRequest.Code
			resp.Results[i].ErrorMessage = kmsg.StringPtr(err.Error())
			continue
		}
		filters = append(filters, af)
		idx = append(idx, i)
	}
	if len(filters) == 0 {
		return resp, nil
	}
	deleted, err := s.meta.DeleteACLs(filters)
	if err != nil {
		s.log.Error().Err(err).Msg("saving acls")
		for _, i := range idx {
			resp.Results[i].ErrorCode = kerr.UnknownServerError.Code
			resp.Results[i].ErrorMessage = kmsg.StringPtr(err.Error())
		}
		return resp, nil
	}
	for j, i := range idx {
		for _, b := range deleted[j] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType = kmsg.ACLResourceType(b.ResourceType)
			m.ResourceName = b.Name
			m.ResourcePatternType = kmsg.ACLResourcePatternType(b.PatternType)
			m.Principal, m.Host = b.Principal, b.Host
			m.Operation = kmsg.ACLOperation(b.Operation)
			m.PermissionType = kmsg.ACLPermissionType(b.Permission)
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
		}
	}
	return resp, nil
}
