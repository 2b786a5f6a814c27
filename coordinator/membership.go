package coordinator

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup handles SyncGroup v0-v5. Followers block until the leader's
// assignment is durable; the leader blocks until then too.
func (g *Groups) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	ch := make(chan syncResult, 1)
	g.lock()
	g.syncLocked(req, ch)
	g.unlock()
	r, code := await(ctx, g.closing, ch)
	if code != 0 {
		r = syncResult{code: code}
	}
	resp.ErrorCode = r.code
	resp.ProtocolType = r.protocolType
	resp.Protocol = r.protocol
	resp.MemberAssignment = r.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

func (g *Groups) syncLocked(req *kmsg.SyncGroupRequest, ch chan syncResult) {
	fail := func(code int16) { ch <- syncResult{code: code} }
	if g.mu.closed {
		fail(errCoordinatorNotAvailable)
		return
	}
	if req.Group == "" {
		fail(errInvalidGroupID)
		return
	}
	grp := g.mu.groups[req.Group]
	if grp == nil || grp.isEmpty() || !grp.isClassic() {
		fail(errUnknownMemberID)
		return
	}
	if grp.state == stateDead {
		fail(errCoordinatorNotAvailable)
		return
	}
	if code := grp.validateMember(req.MemberID, req.InstanceID); code != 0 {
		fail(code)
		return
	}
	if req.Generation != grp.generation {
		fail(errIllegalGeneration)
		return
	}
	if inconsistent(req.ProtocolType, grp.protocolType) || inconsistent(req.Protocol, grp.protocol) {
		fail(errInconsistentProtocol)
		return
	}
	m := grp.byID[req.MemberID]
	switch grp.state {
	case statePreparingRebalance:
		fail(errRebalanceInProgress)
	case stateCompletingRebalance:
		if m.sync != nil {
			m.completeSync(syncResult{code: errRebalanceInProgress, assignment: []byte{}})
		}
		m.sync = ch
		g.removePendingSyncLocked(grp, m.id)
		if m.id == grp.leader {
			g.storeAssignmentLocked(grp, req)
		}
	case stateStable:
		g.removePendingSyncLocked(grp, m.id)
		ch <- syncResult{
			protocolType: strPtrOrNil(grp.protocolType),
			protocol:     strPtrOrNil(grp.protocol),
			assignment:   m.assignment,
		}
	}
}

// storeAssignmentLocked persists the leader's assignment with the new
// generation; only once it is durable does the group become Stable and the
// members get their assignments.
func (g *Groups) storeAssignmentLocked(grp *group, req *kmsg.SyncGroupRequest) {
	assignment := make(map[string][]byte, len(grp.members))
	for _, a := range req.GroupAssignment {
		assignment[a.MemberID] = a.MemberAssignment
	}
	for _, m := range grp.members {
		if assignment[m.id] == nil {
			assignment[m.id] = []byte{}
		}
	}
	gen := req.Generation
	rec := []kv{{groupMetadataKey(grp.id), groupMetadataValue(grp, assignment)}}
	g.enqueueLocked(grp.id, rec, func(_ int64, err error) {
		// A member may have joined (or the group been deleted) while we
		// were writing: then this generation is over and there is nothing
		// to do.
		if g.mu.groups[grp.id] != grp || grp.state != stateCompletingRebalance || grp.generation != gen {
			return
		}
		if err != nil {
			g.resetAndPropagateAssignmentLocked(grp, appendErrorCode(err))
			g.maybePrepareRebalanceOrCompleteJoinLocked(grp)
			return
		}
		g.setAndPropagateAssignmentLocked(grp, assignment)
		grp.transitionTo(stateStable, g.now())
	})
}

// inconsistent: SyncGroup v5+ may name the protocol type and protocol; when
// both sides know them they must agree.
func inconsistent(got *string, have string) bool {
	return got != nil && have != "" && *got != have
}

// Heartbeat handles Heartbeat v0-v4.
func (g *Groups) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	g.lock()
	resp.ErrorCode = g.heartbeatLocked(req)
	g.unlock()
	return resp
}

func (g *Groups) heartbeatLocked(req *kmsg.HeartbeatRequest) int16 {
	if g.mu.closed {
		return errCoordinatorNotAvailable
	}
	if req.Group == "" {
		return errInvalidGroupID
	}
	grp := g.mu.groups[req.Group]
	if grp == nil || !grp.isClassic() {
		return errUnknownMemberID
	}
	if grp.state == stateDead {
		return errCoordinatorNotAvailable
	}
	if code := grp.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return code
	}
	if req.Generation != grp.generation {
		return errIllegalGeneration
	}
	m := grp.byID[req.MemberID]
	switch grp.state {
	case stateEmpty:
		return errUnknownMemberID
	case statePreparingRebalance:
		g.rescheduleHeartbeatLocked(grp, m, msDuration(m.sessionTimeoutMs))
		return errRebalanceInProgress
	default:
		// Members may heartbeat between their JoinGroup and SyncGroup.
		g.rescheduleHeartbeatLocked(grp, m, msDuration(m.sessionTimeoutMs))
		return 0
	}
}

// LeaveGroup handles LeaveGroup v0-v5: one member (v0-v2) or a batch of
// members by member id or group.instance.id (v3+).
func (g *Groups) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g.lock()
	code, members := g.leaveLocked(req.Group, leaving)
	g.unlock()
	if req.Version >= 3 {
		resp.ErrorCode = code
		resp.Members = members
		return resp
	}
	// v0-v2 carry one error: the group's, else the member's.
	resp.ErrorCode = code
	for _, m := range members {
		if resp.ErrorCode == 0 {
			resp.ErrorCode = m.ErrorCode
		}
	}
	return resp
}

func (g *Groups) leaveLocked(groupID string, leaving []kmsg.LeaveGroupRequestMember) (int16, []kmsg.LeaveGroupResponseMember) {
	if g.mu.closed {
		return errCoordinatorNotAvailable, nil
	}
	if groupID == "" {
		return errInvalidGroupID, nil
	}
	grp := g.mu.groups[groupID]
	if grp == nil || !grp.isClassic() {
		// No classic group: every member is unknown, each said so in
		// its own entry, as Kafka's group coordinator answers.
		out := make([]kmsg.LeaveGroupResponseMember, 0, len(leaving))
		for _, l := range leaving {
			r := kmsg.NewLeaveGroupResponseMember()
			r.MemberID, r.InstanceID, r.ErrorCode = l.MemberID, l.InstanceID, errUnknownMemberID
			out = append(out, r)
		}
		return 0, out
	}
	if grp.state == stateDead {
		return errCoordinatorNotAvailable, nil
	}
	out := make([]kmsg.LeaveGroupResponseMember, 0, len(leaving))
	left := 0
	for _, l := range leaving {
		r := kmsg.NewLeaveGroupResponseMember()
		r.MemberID, r.InstanceID = l.MemberID, l.InstanceID
		switch {
		case l.MemberID == "":
			// Admin removal of a static member by instance id alone.
			id, ok := "", false
			if l.InstanceID != nil {
				id, ok = grp.static[*l.InstanceID]
			}
			if !ok {
				r.ErrorCode = errUnknownMemberID
				break
			}
			g.removeMemberLocked(grp, grp.byID[id])
		case grp.pendingJoin[l.MemberID] != nil:
			grp.remove(l.MemberID)
		default:
			if r.ErrorCode = grp.validateMember(l.MemberID, l.InstanceID); r.ErrorCode == 0 {
				g.removeMemberLocked(grp, grp.byID[l.MemberID])
			}
		}
		if r.ErrorCode == 0 {
			left++
		}
		out = append(out, r)
	}
	if left > 0 {
		switch grp.state {
		case stateStable, stateCompletingRebalance:
			g.maybePrepareRebalanceOrCompleteJoinLocked(grp)
		case statePreparingRebalance:
			g.maybeCompleteJoinPhaseLocked(grp)
		}
	}
	return 0, out
}
