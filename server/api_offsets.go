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
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	// A group asked for with no topics (v8+) is answered with all its
	// committed offsets; such a group is answered once however often it is
	// named (Kafka answers every copy).
	if len(req.Groups) > 1 {
		all := make(map[string]bool, len(req.Groups))
		groups := req.Groups[:0]
		for _, g := range req.Groups {
			if g.Topics == nil {
				if all[g.Group] {
					continue
				}
				all[g.Group] = true
			}
			groups = append(groups, g)
		}
		req.Groups = groups
	}
	return s.groups.OffsetFetch(groupContext(r), req), nil
}

func (s *Server) handleOffsetDelete(r *request) (kmsg.Response, error) {
	return s.groups.OffsetDelete(groupContext(r), r.kreq.(*kmsg.OffsetDeleteRequest)), nil
}
