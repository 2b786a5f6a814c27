package server

import "github.com/twmb/franz-go/pkg/kmsg"

// Group administration: listing, describing and deleting groups.
func init() {
	register(kmsg.ListGroups, 0, 5, (*Server).handleListGroups)
	register(kmsg.DescribeGroups, 0, 6, (*Server).handleDescribeGroups)
	register(kmsg.DeleteGroups, 0, 2, (*Server).handleDeleteGroups)
}

func (s *Server) handleListGroups(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListGroupsRequest)
	resp := s.groups.ListGroups(groupContext(r), req)
	if resp.ErrorCode == 0 {
		s.listShareGroups(req, resp) // api_sharegroups.go
	}
	return resp, nil
}

func (s *Server) handleDescribeGroups(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	// A group is described with every member's metadata and assignment;
	// each distinct group is answered once (Kafka answers every copy).
	req.Groups = distinctStrings(req.Groups)
	return s.groups.DescribeGroups(groupContext(r), req), nil
}

// distinctStrings drops repeated strings, keeping first occurrences in
// order, so that a request naming one thing many times is answered once.
func distinctStrings(in []string) []string {
	if len(in) < 2 {
		return in
	}
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func (s *Server) handleDeleteGroups(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteGroupsRequest)
	// Share groups are deleted by the share coordinator, the others by
	// the group coordinator; the answer keeps the request's order.
	shareResults := map[string]int16{}
	others := req.Groups[:0:0]
	for _, g := range req.Groups {
		if s.shares.Has(g) {
			shareResults[g] = errCode(s.shares.DeleteGroup(g))
			if shareResults[g] == 0 {
				// The group's configs go with it; a failure to save
				// this is logged, the group is gone either way.
				if err := s.meta.setGroupConfigs(g, nil); err != nil {
					s.log.Error().Err(err).Str("group", g).Msg("deleting group configs")
				}
			}
			continue
		}
		others = append(others, g)
	}
	if len(shareResults) == 0 {
		return s.groups.DeleteGroups(groupContext(r), req), nil
	}
	all := req.Groups
	req.Groups = others
	resp := s.groups.DeleteGroups(groupContext(r), req)
	byID := map[string]kmsg.DeleteGroupsResponseGroup{}
	for _, g := range resp.Groups {
		byID[g.Group] = g
	}
	resp.Groups = resp.Groups[:0]
	for _, id := range all {
		if code, ok := shareResults[id]; ok {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
		} else if g, ok := byID[id]; ok {
			resp.Groups = append(resp.Groups, g)
		}
	}
	return resp, nil
}
