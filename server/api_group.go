package server

import "github.com/twmb/franz-go/pkg/kmsg"

// The classic group membership protocol: the coordinator package holds the
// state machine; these handlers only pass requests to it.
func init() {
	register(kmsg.JoinGroup, 0, 9, (*Server).handleJoinGroup)
	register(kmsg.SyncGroup, 0, 5, (*Server).handleSyncGroup)
	register(kmsg.Heartbeat, 0, 4, (*Server).handleHeartbeat)
	register(kmsg.LeaveGroup, 0, 5, (*Server).handleLeaveGroup)
}

func (s *Server) handleJoinGroup(r *request) (kmsg.Response, error) {
	return s.groups.JoinGroup(groupContext(r), r.kreq.(*kmsg.JoinGroupRequest)), nil
}

func (s *Server) handleSyncGroup(r *request) (kmsg.Response, error) {
	return s.groups.SyncGroup(groupContext(r), r.kreq.(*kmsg.SyncGroupRequest)), nil
}

func (s *Server) handleHeartbeat(r *request) (kmsg.Response, error) {
	return s.groups.Heartbeat(groupContext(r), r.kreq.(*kmsg.HeartbeatRequest)), nil
}

func (s *Server) handleLeaveGroup(r *request) (kmsg.Response, error) {
	return s.groups.LeaveGroup(groupContext(r), r.kreq.(*kmsg.LeaveGroupRequest)), nil
}
