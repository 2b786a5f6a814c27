package coordinator

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles JoinGroup v0-v9. It blocks until the join phase of the
// rebalance completes (or ctx ends), as Kafka does.
func (g *Groups) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	ch := make(chan joinResult, 1)
	g.ensureLogs()
	g.lock()
	g.joinLocked(req, clientInfoFrom(ctx), ch)
	g.unlock()
	r, code := await(ctx, g.closing, ch)
	if code != 0 {
		r = joinError(req.MemberID, code)
	}
	resp.ErrorCode = r.code
	resp.MemberID = r.memberID
	resp.Generation = r.generation
	resp.ProtocolType = r.protocolType
	resp.Protocol = r.protocol
	resp.LeaderID = r.leader
	resp.SkipAssignment = r.skipAssignment
	resp.Members = r.members
	return resp
}

func (g *Groups) joinLocked(req *kmsg.JoinGroupRequest, ci ClientInfo, ch chan joinResult) {
	fail := func(memberID string, code int16) { ch <- joinError(memberID, code) }
	if g.mu.closed {
		fail(req.MemberID, errCoordinatorNotAvailable)
		return
	}
	if req.Group == "" {
		fail(req.MemberID, errInvalidGroupID)
		return
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < g.cfg.MinSessionTimeout || session > g.cfg.MaxSessionTimeout {
		fail(req.MemberID, kerr.InvalidSessionTimeout.Code)
		return
	}
	if req.Version == 0 {
		req.RebalanceTimeoutMillis = req.SessionTimeoutMillis // v0 has none; Kafka uses the session timeout
	}

	grp := g.mu.groups[req.Group]
	if grp != nil && !grp.isClassic() {
		if !grp.isEmpty() {
			// Classic members cannot join a KIP-848 group here (Kafka's
			// online migration is not implemented).
			fail("", errInconsistentProtocol)
			return
		}
		g.deleteEmptyConsumerGroupLocked(grp) // an empty consumer group converts to classic
		grp = nil
	}
	unknown := req.MemberID == ""
	if grp == nil {
		if !unknown {
			fail(req.MemberID, errUnknownMemberID)
			return
		}
		grp = newClassicGroup(req.Group, g.now())
		g.mu.groups[req.Group] = grp
	}

	if !g.acceptJoiningMemberLocked(grp, req.MemberID) {
		if m := grp.byID[req.MemberID]; m != nil {
			m.hb.cancel()
			grp.remove(m.id)
		}
		fail("", kerr.GroupMaxSizeReached.Code)
		return
	}
	if unknown {
		g.joinNewMemberLocked(grp, req, ci, ch)
	} else {
		g.joinExistingMemberLocked(grp, req, ci, ch)
	}
}

// acceptJoiningMemberLocked enforces group.max.size. During a rebalance it counts
// members that already rejoined, so the last ones to rejoin of an
// oversized group are the ones refused.
func (g *Groups) acceptJoiningMemberLocked(grp *group, id string) bool {
	switch grp.state {
	case statePreparingRebalance:
		m := grp.byID[id]
		return (m != nil && m.join != nil) || grp.awaitingJoin < g.cfg.MaxGroupSize
	case stateCompletingRebalance, stateStable:
		return grp.byID[id] != nil || len(grp.members) < g.cfg.MaxGroupSize
	}
	return true
}

func (g *Groups) joinNewMemberLocked(grp *group, req *kmsg.JoinGroupRequest, ci ClientInfo, ch chan joinResult) {
	ps := protocolsOf(req.Protocols)
	if grp.state == stateDead {
		ch <- joinError("", errCoordinatorNotAvailable)
		return
	}
	if !grp.supportsProtocols(req.ProtocolType, ps) {
		ch <- joinError("", errInconsistentProtocol)
		return
	}
	if req.InstanceID != nil {
		newID := newMemberID(*req.InstanceID)
		if oldID, ok := grp.static[*req.InstanceID]; ok {
			g.rejoinStaticMemberLocked(grp, req, oldID, newID, ch)
			return
		}
		g.addMemberLocked(grp, req, ci, newID, ch)
		return
	}
	newID := newMemberID(ci.ClientID)
	if req.Version >= 4 {
		// KIP-394: hand out the id and make the client come back with it,
		// so that clients that never complete a join cost nothing.
		t := &timerSlot{}
		grp.pendingJoin[newID] = t
		g.setGroupTimerLocked(grp, t, msDuration(req.SessionTimeoutMillis), func() {
			g.expireHeartbeatLocked(grp, newID)
		})
		ch <- joinError(newID, kerr.MemberIDRequired.Code)
		return
	}
	g.addMemberLocked(grp, req, ci, newID, ch)
}

func (g *Groups) joinExistingMemberLocked(grp *group, req *kmsg.JoinGroupRequest, ci ClientInfo, ch chan joinResult) {
	id := req.MemberID
	ps := protocolsOf(req.Protocols)
	if grp.state == stateDead {
		ch <- joinError(id, errCoordinatorNotAvailable)
		return
	}
	if !grp.supportsProtocols(req.ProtocolType, ps) {
		ch <- joinError(id, errInconsistentProtocol)
		return
	}
	if _, pending := grp.pendingJoin[id]; pending {
		if req.InstanceID != nil { // pending ids are only handed to dynamic members
			ch <- joinError(id, errUnknownServerError)
			return
		}
		// The rejoin KIP-394 asked for: the member now really joins.
		g.addMemberLocked(grp, req, ci, id, ch)
		return
	}
	if code := grp.validateMember(id, req.InstanceID); code != 0 {
		ch <- joinError(id, code)
		return
	}
	m := grp.byID[id]
	switch grp.state {
	case statePreparingRebalance:
		g.updateMemberAndRebalanceLocked(grp, m, req, ch)
	case stateCompletingRebalance:
		if m.matches(ps) {
			// The member probably lost our answer: repeat it.
			ch <- grp.currentJoinResult(id, id == grp.leader)
			return
		}
		g.updateMemberAndRebalanceLocked(grp, m, req, ch)
	case stateStable:
		// A rejoining leader forces a rebalance (it may have seen metadata
		// changes); a follower only if its subscription changed.
		if id == grp.leader || !m.matches(ps) {
			g.updateMemberAndRebalanceLocked(grp, m, req, ch)
			return
		}
		ch <- grp.currentJoinResult(id, false)
	default:
		ch <- joinError(id, errUnknownMemberID)
	}
}

func (g *Groups) addMemberLocked(grp *group, req *kmsg.JoinGroupRequest, ci ClientInfo, id string, ch chan joinResult) {
	m := &member{
		id:                 id,
		instanceID:         req.InstanceID,
		clientID:           ci.ClientID,
		clientHost:         ci.Host,
		rebalanceTimeoutMs: req.RebalanceTimeoutMillis,
		sessionTimeoutMs:   req.SessionTimeoutMillis,
		protocolType:       req.ProtocolType,
		protocols:          protocolsOf(req.Protocols),
		isNew:              true,
		join:               ch,
	}
	if grp.state == statePreparingRebalance && grp.prevState == stateEmpty {
		grp.newMemberAdded = true
	}
	grp.add(m)
	// A parked new member cannot heartbeat and a closed connection goes
	// unnoticed, so bound its wait.
	g.rescheduleHeartbeatLocked(grp, m, g.cfg.NewMemberJoinTimeout)
	g.maybePrepareRebalanceOrCompleteJoinLocked(grp)
}

func (g *Groups) updateMemberAndRebalanceLocked(grp *group, m *member, req *kmsg.JoinGroupRequest, ch chan joinResult) {
	grp.updateMember(m, protocolsOf(req.Protocols), req.RebalanceTimeoutMillis, req.SessionTimeoutMillis, ch)
	g.maybePrepareRebalanceOrCompleteJoinLocked(grp)
}

// rejoinStaticMemberLocked handles a static member that restarted (it
// joins with its instance id but no member id): it takes over the old
// member's place. In a Stable group whose selected protocol would not
// change, that needs no rebalance: the member gets the current generation
// and, through SyncGroup, its previous assignment.
func (g *Groups) rejoinStaticMemberLocked(grp *group, req *kmsg.JoinGroupRequest, oldID, newID string, ch chan joinResult) {
	instanceID := *req.InstanceID
	prevLeader := grp.leader
	m := grp.replaceStaticMember(instanceID, oldID, newID)
	g.rescheduleHeartbeatLocked(grp, m, msDuration(m.sessionTimeoutMs))
	oldProtocols, oldRebalance, oldSession := m.protocols, m.rebalanceTimeoutMs, m.sessionTimeoutMs
	grp.updateMember(m, protocolsOf(req.Protocols), req.RebalanceTimeoutMillis, req.SessionTimeoutMillis, ch)

	switch grp.state {
	case stateStable:
		if grp.selectProtocol() != grp.protocol {
			g.maybePrepareRebalanceOrCompleteJoinLocked(grp)
			return
		}
		assignment := make(map[string][]byte, len(grp.members))
		for _, x := range grp.members {
			assignment[x.id] = x.assignment
		}
		rec := []kv{{groupMetadataKey(grp.id), groupMetadataValue(grp, assignment)}}
		version := req.Version
		g.enqueueLocked(grp.id, rec, func(_ int64, err error) {
			if grp.byID[newID] != m {
				return // replaced or removed meanwhile; its join was answered then
			}
			if err != nil {
				// Undo the replacement so the old member id stays valid.
				join := m.join
				grp.updateMember(m, oldProtocols, oldRebalance, oldSession, nil)
				old := grp.replaceStaticMember(instanceID, newID, oldID)
				g.rescheduleHeartbeatLocked(grp, old, msDuration(old.sessionTimeoutMs))
				if join != nil {
					r := grp.currentJoinResult("", false)
					r.code, r.leader = appendErrorCode(err), prevLeader
					join <- r
				}
				return
			}
			if version >= 9 {
				// KIP-814: a returning leader gets the members but must not
				// reassign.
				isLeader := grp.leader == newID
				r := grp.currentJoinResult(newID, isLeader)
				r.skipAssignment = isLeader
				grp.completeJoin(m, r)
				return
			}
			// Older clients would run the assignor if told they lead, so
			// they are told the previous leader id instead.
			r := grp.currentJoinResult(newID, false)
			r.leader = prevLeader
			grp.completeJoin(m, r)
		})
	case stateCompletingRebalance:
		// The leader may be assigning with the old member id: start over.
		g.prepareRebalanceLocked(grp)
	case statePreparingRebalance:
		g.maybeCompleteJoinPhaseLocked(grp)
	default:
		grp.completeJoin(m, joinError("", errUnknownServerError))
	}
}
