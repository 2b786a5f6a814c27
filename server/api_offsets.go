package server

import "github.com/twmb/franz-go/pkg/kmsg"

// Committed offsets, stored by the group coordinator in __consumer_offsets.
func init() {
	register(kmsg.OffsetCommit, 2, 9, (*Server).handleOffsetCommit)
	register(kmsg.OffsetFetch, 1, 9, (*Server).handleOffsetFetch)
	register(kmsg.OffsetDelete, 0, 0, (*Server).handleOffsetDelete)
}

func (s *Server) handleOffsetCommit(r *request) (kmsg.Response, error) {
	return s.groups.OffsetCommit(groupContext(r), r.kreq.(*kmsg.OffsetCommitRequest)), nil
}

func (s *Server) handleOffsetFetch(r *request) (kmsg.Response, error) {
	return s.groups.OffsetFetch(groupContext(r), r.kreq.(*kmsg.OffsetFetchRequest)), nil
}

func (s *Server) handleOffsetDelete(r *request) (kmsg.Response, error) {
	return s.groups.OffsetDelete(groupContext(r), r.kreq.(*kmsg.OffsetDeleteRequest)), nil
}
