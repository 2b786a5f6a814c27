package server

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Share group offsets administration (KIP-932) with Kafka 4.2's versions:
// DescribeShareGroupOffsets v0-v1 (v1 adds Lag, KIP-1226),
// AlterShareGroupOffsets v0 and DeleteShareGroupOffsets v0.
func init() {
	register(kmsg.DescribeShareGroupOffsets, 0, 1, (*Server).handleDescribeShareGroupOffsets)
	register(kmsg.AlterShareGroupOffsets, 0, 0, (*Server).handleAlterShareGroupOffsets)
	register(kmsg.DeleteShareGroupOffsets, 0, 0, (*Server).handleDeleteShareGroupOffsets)
}

func (s *Server) handleDescribeShareGroupOffsets(r *request) (kmsg.Response, error) {
	if resp := s.shareGroupsDisabled(r.kreq); resp != nil {
		return resp, nil
	}
	req := r.kreq.(*kmsg.DescribeShareGroupOffsetsRequest)
	resp := kmsg.NewPtrDescribeShareGroupOffsetsResponse()
	resp.Version = req.Version
	seen := map[string]bool{}
	for _, g := range req.Groups {
		if seen[g.GroupID] {
			continue
		}
		seen[g.GroupID] = true
		resp.Groups = append(resp.Groups, s.shares.DescribeOffsets(g))
	}
	return resp, nil
}

func (s *Server) handleAlterShareGroupOffsets(r *request) (kmsg.Response, error) {
	if resp := s.shareGroupsDisabled(r.kreq); resp != nil {
		return resp, nil
	}
	req := r.kreq.(*kmsg.AlterShareGroupOffsetsRequest)
	if req.GroupID == "" {
		resp := kmsg.NewPtrAlterShareGroupOffsetsResponse()
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	return s.shares.AlterOffsets(req), nil
}

func (s *Server) handleDeleteShareGroupOffsets(r *request) (kmsg.Response, error) {
	if resp := s.shareGroupsDisabled(r.kreq); resp != nil {
		return resp, nil
	}
	req := r.kreq.(*kmsg.DeleteShareGroupOffsetsRequest)
	if req.GroupID == "" {
		resp := kmsg.NewPtrDeleteShareGroupOffsetsResponse()
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	return s.shares.DeleteOffsets(req), nil
}

// listShareGroups adds the share groups to a ListGroups answer, honouring
// the request's state (v4+) and type (v5+) filters.
func (s *Server) listShareGroups(req *kmsg.ListGroupsRequest, resp *kmsg.ListGroupsResponse) {
	if len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, "share") {
		return
	}
	for _, g := range s.shares.List() {
		if len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, g.State) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.ID, "share", g.State, "share"
		resp.Groups = append(resp.Groups, lg)
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
