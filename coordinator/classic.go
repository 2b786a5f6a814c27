package coordinator

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The classic group state machine: the transitions of Kafka's
// GroupMetadataManager for JoinGroup/SyncGroup groups. Every method here
// runs under Groups.mu, performs no I/O, and reports results by sending on
// the parked requests' buffered channels, arming timers and queueing
// records (flushed after mu is released).

// joinResult is a JoinGroup answer, independent of the request version.
type joinResult struct {
	code           int16
	memberID       string
	generation     int32
	protocolType   *string
	protocol       *string
	leader         string
	skipAssignment bool
	members        []kmsg.JoinGroupResponseMember
}

func joinError(memberID string, code int16) joinResult {
	return joinResult{code: code, memberID: memberID, generation: -1}
}

// syncResult is a SyncGroup answer.
type syncResult struct {
	code         int16
	protocolType *string
	protocol     *string
	assignment   []byte
}

// currentJoinResult answers a member from the current generation.
func (grp *group) currentJoinResult(memberID string, withMembers bool) joinResult {
	r := joinResult{
		memberID:     memberID,
		generation:   grp.generation,
		protocolType: strPtrOrNil(grp.protocolType),
		protocol:     strPtrOrNil(grp.protocol),
		leader:       grp.leader,
	}
	if withMembers {
		r.members = grp.leaderMembers()
	}
	return r
}

// completeJoin answers a parked JoinGroup, if any.
func (grp *group) completeJoin(m *member, r joinResult) bool {
	if m.join == nil {
		return false
	}
	m.join <- r
	m.join = nil
	grp.awaitingJoin--
	return true
}

func (m *member) completeSync(r syncResult) bool {
	if m.sync == nil {
		return false
	}
	m.sync <- r
	m.sync = nil
	return true
}

// updateMember records a rejoin: new protocols and timeouts, and the
// JoinGroup now parked (nil to unpark without answering).
func (grp *group) updateMember(m *member, ps []protocolMeta, rebalanceMs, sessionMs int32, join chan joinResult) {
	m.protocols = ps
	m.rebalanceTimeoutMs = rebalanceMs
	m.sessionTimeoutMs = sessionMs
	switch {
	case join != nil && m.join == nil:
		grp.awaitingJoin++
	case join == nil && m.join != nil:
		grp.awaitingJoin--
	case join != nil && m.join != nil:
		// A second JoinGroup replaced a parked one; Kafka drops the first
		// silently, we answer it so that its caller does not hang.
		m.join <- joinError(m.id, errRebalanceInProgress)
	}
	m.join = join
}

// replaceStaticMember hands a static member's identity, assignment and
// leadership to a new member id and fences the old one.
func (grp *group) replaceStaticMember(instanceID, oldID, newID string) *member {
	old := grp.byID[oldID]
	fenced := joinError(oldID, errFencedInstanceID)
	grp.completeJoin(old, fenced)
	old.completeSync(syncResult{code: errFencedInstanceID, assignment: []byte{}})
	old.hb.cancel()
	m := &member{
		id:                 newID,
		instanceID:         old.instanceID,
		clientID:           old.clientID,
		clientHost:         old.clientHost,
		rebalanceTimeoutMs: old.rebalanceTimeoutMs,
		sessionTimeoutMs:   old.sessionTimeoutMs,
		protocolType:       old.protocolType,
		protocols:          old.protocols,
		assignment:         old.assignment,
	}
	for i, x := range grp.members {
		if x == old {
			grp.members[i] = m
		}
	}
	delete(grp.byID, oldID)
	grp.byID[newID] = m
	if grp.leader == oldID {
		grp.leader = newID
	}
	grp.static[instanceID] = newID
	return m
}

func (g *Groups) prepareRebalanceLocked(grp *group) {
	if grp.state == stateCompletingRebalance {
		g.resetAndPropagateAssignmentLocked(grp, errRebalanceInProgress)
	}
	clear(grp.pendingSync)
	grp.syncTimer.cancel()

	initial := grp.state == stateEmpty
	if initial {
		// A new group waits group.initial.rebalance.delay.ms for more
		// members, extended per new member up to the rebalance timeout.
		delay := g.cfg.InitialRebalanceDelay
		remaining := max(grp.rebalanceTimeout()-delay, 0)
		g.setGroupTimerLocked(grp, &grp.joinTimer, delay, func() {
			g.tryCompleteInitialRebalanceLocked(grp, delay, remaining)
		})
	}
	grp.transitionTo(statePreparingRebalance, g.now())
	if !initial {
		g.maybeCompleteJoinElseScheduleLocked(grp)
	}
}

func (g *Groups) maybeCompleteJoinElseScheduleLocked(grp *group) {
	if grp.hasAllMembersJoined() {
		g.completeJoinLocked(grp)
		return
	}
	g.setGroupTimerLocked(grp, &grp.joinTimer, grp.rebalanceTimeout(), func() { g.completeJoinLocked(grp) })
}

func (g *Groups) tryCompleteInitialRebalanceLocked(grp *group, delay, remaining time.Duration) {
	if grp.newMemberAdded && remaining != 0 {
		grp.newMemberAdded = false
		newDelay := min(g.cfg.InitialRebalanceDelay, remaining)
		newRemaining := max(remaining-delay, 0)
		g.setGroupTimerLocked(grp, &grp.joinTimer, newDelay, func() {
			g.tryCompleteInitialRebalanceLocked(grp, newDelay, newRemaining)
		})
		return
	}
	g.completeJoinLocked(grp)
}

func (g *Groups) maybePrepareRebalanceOrCompleteJoinLocked(grp *group) {
	if grp.canRebalance() {
		g.prepareRebalanceLocked(grp)
	} else {
		g.maybeCompleteJoinPhaseLocked(grp)
	}
}

// maybeCompleteJoinPhaseLocked ends the join phase early once everyone
// rejoined, except for a group's first rebalance, which always waits for
// the initial delay.
func (g *Groups) maybeCompleteJoinPhaseLocked(grp *group) {
	if grp.state != statePreparingRebalance || grp.prevState == stateEmpty || !grp.hasAllMembersJoined() {
		return
	}
	g.completeJoinLocked(grp)
}

// completeJoinLocked ends the join phase: dynamic members that did not
// rejoin are dropped (static ones are kept, Kafka gives them until the
// sync deadline), the generation advances and every parked member gets its
// JoinGroup answer, the leader with all members' metadata.
func (g *Groups) completeJoinLocked(grp *group) {
	grp.joinTimer.cancel()
	for _, m := range append([]*member(nil), grp.members...) {
		if m.join == nil && m.instanceID == nil {
			m.hb.cancel()
			m.completeSync(syncResult{code: errUnknownMemberID, assignment: []byte{}})
			grp.remove(m.id)
		}
	}
	if grp.state == stateDead {
		return
	}
	if !grp.maybeElectNewJoinedLeader() && len(grp.members) > 0 {
		// Nobody rejoined: wait for the sessions of the silent static
		// members to expire.
		g.setGroupTimerLocked(grp, &grp.joinTimer, grp.rebalanceTimeout(), func() { g.completeJoinLocked(grp) })
		return
	}
	grp.initNextGeneration(g.now())
	if grp.state == stateEmpty {
		// Persist the new, empty generation; a failure only means an older
		// generation comes back after a restart, which is harmless.
		rec := []kv{{groupMetadataKey(grp.id), groupMetadataValue(grp, nil)}}
		g.enqueueLocked(grp.id, rec, func(_ int64, err error) {
			if err != nil {
				g.logger.Warn().Err(err).Str("group", grp.id).Msg("coordinator: persisting empty group failed")
			}
		})
		return
	}
	for _, m := range grp.members {
		grp.completeJoin(m, grp.currentJoinResult(m.id, m.id == grp.leader))
		g.rescheduleHeartbeatLocked(grp, m, msDuration(m.sessionTimeoutMs))
		m.isNew = false
		grp.pendingSync[m.id] = true
	}
	gen := grp.generation
	g.setGroupTimerLocked(grp, &grp.syncTimer, grp.rebalanceTimeout(), func() { g.expirePendingSyncLocked(grp, gen) })
}

// expirePendingSyncLocked drops members that got their JoinGroup answer
// but never sent SyncGroup within the rebalance timeout.
func (g *Groups) expirePendingSyncLocked(grp *group, gen int32) {
	if gen != grp.generation || (grp.state != stateCompletingRebalance && grp.state != stateStable) {
		return
	}
	if len(grp.pendingSync) == 0 {
		return
	}
	for _, m := range append([]*member(nil), grp.members...) {
		if grp.pendingSync[m.id] {
			m.hb.cancel()
			grp.completeJoin(m, joinError("", errUnknownMemberID))
			grp.remove(m.id)
		}
	}
	g.prepareRebalanceLocked(grp)
}

func (g *Groups) removePendingSyncLocked(grp *group, id string) {
	delete(grp.pendingSync, id)
	switch grp.state {
	case stateCompletingRebalance, stateStable:
		if len(grp.pendingSync) == 0 {
			grp.syncTimer.cancel()
		}
	default:
		grp.syncTimer.cancel()
	}
}

func (g *Groups) resetAndPropagateAssignmentLocked(grp *group, code int16) {
	for _, m := range grp.members {
		m.assignment = []byte{}
	}
	g.propagateAssignmentLocked(grp, code)
}

func (g *Groups) setAndPropagateAssignmentLocked(grp *group, assignment map[string][]byte) {
	for _, m := range grp.members {
		m.assignment = assignment[m.id]
		if m.assignment == nil {
			m.assignment = []byte{}
		}
	}
	g.propagateAssignmentLocked(grp, 0)
}

// propagateAssignmentLocked answers every parked SyncGroup. Sessions restart
// then: an expiry that fired while they were parked was ignored.
func (g *Groups) propagateAssignmentLocked(grp *group, code int16) {
	var ptype, proto *string
	if code == 0 {
		ptype, proto = strPtrOrNil(grp.protocolType), strPtrOrNil(grp.protocol)
	}
	for _, m := range grp.members {
		if m.completeSync(syncResult{code: code, protocolType: ptype, protocol: proto, assignment: m.assignment}) {
			g.rescheduleHeartbeatLocked(grp, m, msDuration(m.sessionTimeoutMs))
		}
	}
}

func (g *Groups) rescheduleHeartbeatLocked(grp *group, m *member, d time.Duration) {
	id := m.id
	g.setGroupTimerLocked(grp, &m.hb, d, func() { g.expireHeartbeatLocked(grp, id) })
}

// expireHeartbeatLocked handles a session (or pending member id) timeout.
func (g *Groups) expireHeartbeatLocked(grp *group, id string) {
	if grp.state == stateDead {
		return
	}
	if _, ok := grp.pendingJoin[id]; ok {
		grp.remove(id)
		if grp.state == statePreparingRebalance && grp.hasAllMembersJoined() {
			g.completeJoinLocked(grp)
		}
		return
	}
	m := grp.byID[id]
	if m == nil || m.satisfiedHeartbeat() {
		return
	}
	g.logger.Info().Str("group", grp.id).Str("member", id).Msg("coordinator: member session expired")
	g.removeMemberAndUpdateLocked(grp, m)
}

// removeMemberAndUpdateLocked removes a member and rebalances the rest.
func (g *Groups) removeMemberAndUpdateLocked(grp *group, m *member) {
	g.removeMemberLocked(grp, m)
	switch grp.state {
	case stateStable, stateCompletingRebalance:
		g.maybePrepareRebalanceOrCompleteJoinLocked(grp)
	case statePreparingRebalance:
		if grp.hasAllMembersJoined() {
			g.completeJoinLocked(grp)
		}
	}
}

// removeMemberLocked drops a member, answering its parked requests with
// UNKNOWN_MEMBER_ID so that a live client rejoins.
func (g *Groups) removeMemberLocked(grp *group, m *member) {
	m.hb.cancel()
	grp.completeJoin(m, joinError("", errUnknownMemberID))
	m.completeSync(syncResult{code: errUnknownMemberID, assignment: []byte{}})
	grp.remove(m.id)
}
