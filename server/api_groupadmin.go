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
	return s.groups.DescribeGroups(groupContext(r), r.kreq.(*kmsg.DescribeGroupsRequest)), nil
}

func (s *Server) handleDeleteGroups(r *request) (kmsg.Response, error) {
	return s.groups.DeleteGroups(groupContext(r), r.kreq.(*kmsg.DeleteGroupsRequest)), nil
}
