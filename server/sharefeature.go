package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// shareVersionFeature is KIP-932's feature: level 1 enables share groups.
// Kafka 4.2 finalizes it at 1; UpdateFeatures can take it to 0, and then
// every share group API answers UNSUPPORTED_VERSION as Kafka's KafkaApis
// does (isShareGroupProtocolEnabled). The APIs stay in ApiVersions, as in
// Kafka, which does not filter its API table by share.version.
const shareVersionFeature = "share.version"

// shareGroupsEnabled reports whether share.version enables share groups.
func (s *Server) shareGroupsEnabled() bool {
	return s.meta.featureLevel(shareVersionFeature) >= 1
}

// shareGroupsDisabled answers a share group request with Kafka's
// UNSUPPORTED_VERSION error response for its API when share.version is 0,
// or returns nil.
func (s *Server) shareGroupsDisabled(req kmsg.Request) kmsg.Response {
	if s.shareGroupsEnabled() {
		return nil
	}
	code := kerr.UnsupportedVersion.Code
	switch req := req.(type) {
	case *kmsg.ShareGroupHeartbeatRequest:
		resp := kmsg.NewPtrShareGroupHeartbeatResponse()
		resp.Version, resp.ErrorCode = req.Version, code
		return resp
	case *kmsg.ShareGroupDescribeRequest:
		// One error per group, as ShareGroupDescribeRequest.getErrorResponse.
		resp := kmsg.NewPtrShareGroupDescribeResponse()
		resp.Version = req.Version
		for _, id := range req.GroupIDs {
			g := kmsg.NewShareGroupDescribeResponseGroup()
			g.GroupID, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	case *kmsg.ShareFetchRequest:
		resp := kmsg.NewPtrShareFetchResponse()
		resp.Version, resp.ErrorCode = req.Version, code
		return resp
	case *kmsg.ShareAcknowledgeRequest:
		resp := kmsg.NewPtrShareAcknowledgeResponse()
		resp.Version, resp.ErrorCode = req.Version, code
		return resp
	case *kmsg.DescribeShareGroupOffsetsRequest:
		// Per group, as KafkaApis.handleDescribeShareGroupOffsetsRequest.
		resp := kmsg.NewPtrDescribeShareGroupOffsetsResponse()
		resp.Version = req.Version
		for _, g := range req.Groups {
			rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			rg.GroupID, rg.ErrorCode = g.GroupID, code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	case *kmsg.AlterShareGroupOffsetsRequest:
		resp := kmsg.NewPtrAlterShareGroupOffsetsResponse()
		resp.Version, resp.ErrorCode = req.Version, code
		resp.ErrorMessage = kmsg.StringPtr(kerr.UnsupportedVersion.Description)
		return resp
	case *kmsg.DeleteShareGroupOffsetsRequest:
		resp := kmsg.NewPtrDeleteShareGroupOffsetsResponse()
		resp.Version, resp.ErrorCode = req.Version, code
		resp.ErrorMessage = kmsg.StringPtr(kerr.UnsupportedVersion.Description)
		return resp
	}
	return nil
}
