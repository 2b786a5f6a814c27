package server

import "github.com/twmb/franz-go/pkg/kmsg"

// Group administration: listing, describing and deleting groups.
func init() {
	register(kmsg.ListGroups, 0, 5, (*Server).handleListGroups)
	register(kmsg.DescribeGroups, 0, 6, (*Server).handleDescribeGroups)
	register(kmsg.DeleteGroups, 0, 2, (*Server).handleDeleteGroups)
}

func (s *Server) handleListGroups(r *request) (kmsg.Response, error) {
	return s.groups.ListGroups(groupContext(r), r.kreq.(*kmsg.ListGroupsRequest)), nil
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
	return s.groups.DeleteGroups(groupContext(r), r.kreq.(*kmsg.DeleteGroupsRequest)), nil
}
