package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// heartbeatResult is a ConsumerGroupHeartbeat answer.
type heartbeatResult struct {
	code       int16
	message    *string
	memberID   *string
	epoch      int32
	interval   int32
	assignment *kmsg.ConsumerGroupHeartbeatResponseAssignment
}

func hbError(code int16, format string, args ...any) heartbeatResult {
	var msg *string
	if format != "" {
		s := fmt.Sprintf(format, args...)
		msg = &s
	}
	return heartbeatResult{code: code, message: msg}
}

// ConsumerGroupHeartbeat handles ConsumerGroupHeartbeat v0-v1 (KIP-848):
// joining (epoch 0), heartbeating with the current epoch, and leaving
// (epoch -1, or -2 for a static member that will come back). It answers
// once the resulting group changes are durable.
func (g *Groups) ConsumerGroupHeartbeat(ctx context.Context, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	ch := make(chan heartbeatResult, 1)
	g.ensureLogs()
	g.lock()
	g.consumerHeartbeatLocked(req, clientInfoFrom(ctx), ch)
	g.unlock()
	r, code := await(ctx, g.closing, ch)
	if code != 0 {
		r = heartbeatResult{code: code}
	}
	resp.ErrorCode = r.code
	resp.ErrorMessage = r.message
	resp.MemberID = r.memberID
	resp.MemberEpoch = r.epoch
	resp.HeartbeatIntervalMillis = r.interval
	resp.Assignment = r.assignment
	return resp
}

func (g *Groups) validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) heartbeatResult {
	invalid := func(msg string) heartbeatResult { return hbError(kerr.InvalidRequest.Code, "%s", msg) }
	switch {
	case req.Group == "":
		return invalid("GroupId can't be empty.")
	case req.InstanceID != nil && *req.InstanceID == "":
		return invalid("InstanceId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return invalid("RackId can't be empty.")
	case req.Version >= 1 && req.MemberID == "":
		return invalid("MemberId can't be empty.") // KIP-1082: clients pick their member id
	}
	switch {
	case req.MemberEpoch > 0 || req.MemberEpoch == epochLeave:
		if req.MemberID == "" {
			return invalid("MemberId can't be empty.")
		}
	case req.MemberEpoch == epochJoin:
		if req.RebalanceTimeoutMillis == -1 {
			return invalid("RebalanceTimeoutMs must be provided in first request.")
		}
		if req.Topics == nil || len(req.Topics) > 0 {
			return invalid("TopicPartitions must be empty when (re-)joining.")
		}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return invalid("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	case req.MemberEpoch == epochStaticLeave:
		if req.MemberID == "" {
			return invalid("MemberId can't be empty.")
		}
		if req.InstanceID == nil {
			return invalid("InstanceId can't be null.")
		}
	default:
		return invalid("MemberEpoch is invalid.")
	}
	if req.ServerAssignor != nil && !slices.Contains(g.cfg.ConsumerAssignors, *req.ServerAssignor) {
		return hbError(kerr.UnsupportedAssignor.Code, "ServerAssignor %s is not supported. Supported assignors: %v.", *req.ServerAssignor, g.cfg.ConsumerAssignors)
	}
	if req.SubscribedTopicRegex != nil {
		if _, err := compileSubscriptionRegex(*req.SubscribedTopicRegex); err != nil {
			return hbError(kerr.InvalidRegularExpression.Code, "SubscribedTopicRegex %s is invalid: %v", *req.SubscribedTopicRegex, err)
		}
	}
	return heartbeatResult{}
}

func (g *Groups) consumerHeartbeatLocked(req *kmsg.ConsumerGroupHeartbeatRequest, ci ClientInfo, ch chan heartbeatResult) {
	if g.mu.closed {
		ch <- hbError(errCoordinatorNotAvailable, "")
		return
	}
	if r := g.validateHeartbeat(req); r.code != 0 {
		ch <- r
		return
	}
	if req.MemberEpoch == epochLeave || req.MemberEpoch == epochStaticLeave {
		g.consumerLeaveLocked(req, ch)
		return
	}

	var recs []kv
	join := req.MemberEpoch == epochJoin
	grp := g.mu.groups[req.Group]
	created := false
	switch {
	case grp == nil && !join:
		ch <- hbError(errGroupIDNotFound, "Consumer group %s not found.", req.Group)
		return
	case grp != nil && grp.state == stateDead:
		ch <- hbError(errCoordinatorNotAvailable, "")
		return
	case grp != nil && grp.kind == kindStreams && !(join && grp.isEmpty()):
		ch <- hbError(errGroupIDNotFound, "Group %s is not a consumer group.", req.Group)
		return
	case grp != nil && grp.kind == kindClassic && !(join && grp.isEmpty()):
		// Kafka's online upgrade of a live classic group is not done here.
		ch <- hbError(errGroupIDNotFound, "Group %s is not a consumer group.", req.Group)
		return
	case grp == nil || grp.kind != kindConsumer:
		if grp != nil { // an empty classic or streams group (maybe only offsets) becomes a consumer group
			recs = append(recs, g.groupTombstonesLocked(grp)...)
		}
		grp = &group{id: req.Group, kind: kindConsumer, cg: newConsumerGroup()}
		created = true
	}
	cg := grp.cg
	if len(cg.members) >= g.cfg.ConsumerMaxGroupSize && (req.MemberID == "" || cg.members[req.MemberID] == nil) {
		ch <- hbError(kerr.GroupMaxSizeReached.Code, "The consumer group has reached its maximum capacity of %d members.", g.cfg.ConsumerMaxGroupSize)
		return
	}
	memberID := req.MemberID
	if memberID == "" {
		memberID = newUUIDString() // v0: the coordinator picks the id
	}

	// Find the member, or create it on join.
	var m *cmember
	var replaced *cmember // a static member's previous incarnation
	if req.InstanceID == nil {
		m = cg.members[memberID]
		if m == nil {
			if !join {
				ch <- hbError(errUnknownMemberID, "Member %s is not a member of group %s.", memberID, req.Group)
				return
			}
			m = &cmember{id: memberID, rebalanceMs: -1, assigned: topicParts{}, pendingRevocation: topicParts{}}
		}
		if code := checkMemberEpoch(m, req); code != 0 {
			ch <- hbError(code, "")
			return
		}
	} else {
		var existing *cmember
		if id, ok := cg.static[*req.InstanceID]; ok {
			existing = cg.members[id]
		}
		switch {
		case join && existing == nil:
			if m = cg.members[memberID]; m == nil {
				m = &cmember{id: memberID, rebalanceMs: -1, assigned: topicParts{}, pendingRevocation: topicParts{}}
			}
		case join:
			if existing.epoch != epochStaticLeave {
				ch <- hbError(kerr.UnreleasedInstanceID.Code, "Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.", memberID, *req.InstanceID, existing.id)
				return
			}
			// The static member is back: it takes over its previous
			// incarnation's subscription and assignment.
			replaced = existing
			m = existing.copyAs(memberID)
			m.epoch, m.prevEpoch = 0, 0
		case existing == nil:
			ch <- hbError(errUnknownMemberID, "Instance id %s is unknown.", *req.InstanceID)
			return
		case existing.id != memberID:
			ch <- hbError(errFencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", memberID, *req.InstanceID, existing.id)
			return
		default:
			m = existing
			if code := checkMemberEpoch(m, req); code != 0 {
				ch <- hbError(code, "")
				return
			}
		}
	}

	// 1. Apply the member's (possibly unchanged) subscription.
	updated := m.copyAs(m.id)
	if req.InstanceID != nil {
		updated.instanceID = req.InstanceID
	}
	if req.RackID != nil {
		updated.rackID = req.RackID
	}
	if req.RebalanceTimeoutMillis != -1 {
		updated.rebalanceMs = req.RebalanceTimeoutMillis
	}
	if req.ServerAssignor != nil {
		updated.serverAssignor = *req.ServerAssignor
	}
	if req.SubscribedTopicNames != nil {
		updated.topics = slices.Clone(req.SubscribedTopicNames)
		slices.Sort(updated.topics)
		updated.topics = slices.Compact(updated.topics)
	}
	if req.SubscribedTopicRegex != nil {
		updated.regex, updated.hasRegex = *req.SubscribedTopicRegex, *req.SubscribedTopicRegex != ""
		updated.compiled, _ = compileSubscriptionRegex(updated.regex)
	}
	updated.clientID, updated.clientHost = ci.ClientID, ci.Host

	if created {
		g.replaceGroupLocked(grp)
	}
	if replaced != nil {
		recs = append(recs, memberTombstones(grp.id, replaced.id)...)
		cg.target[memberID] = cg.target[replaced.id]
		cg.removeMember(replaced.id)
		recs = append(recs, targetMemberRecord(grp.id, memberID, cg.target[memberID]))
	}
	bump := !updated.sameSubscription(m)
	if !sameMemberMetadata(m, updated) || replaced != nil || cg.members[m.id] == nil {
		recs = append(recs, memberMetadataRecord(grp.id, updated))
	}
	cg.putMember(updated)
	if g.refreshSubscriptionsLocked(cg) {
		bump = true
		recs = append(recs, partitionMetadataRecord(grp.id, cg))
	}
	if bump {
		cg.epoch++
		recs = append(recs, groupEpochRecord(grp.id, cg.epoch))
	}

	// 2. A newer group epoch needs a new target assignment.
	if cg.epoch > cg.assignmentEpoch {
		recs = append(recs, g.updateTargetAssignmentLocked(grp)...)
	}

	// 3. Move the member towards its target, one safe step at a time.
	before := updated.assigned.clone()
	if !updated.reconciledTo(cg.assignmentEpoch) {
		next := reconcile(updated, cg, req.Topics)
		if next != updated {
			cg.putMember(next)
			recs = append(recs, currentAssignmentRecord(grp.id, next))
			if next.state == memberUnrevokedPartitions {
				g.scheduleRebalanceTimeoutLocked(grp, next)
			} else {
				cg.timersFor(next.id).rebalance.cancel()
			}
			updated = next
		}
	} else if replaced != nil {
		recs = append(recs, currentAssignmentRecord(grp.id, updated))
	}
	g.scheduleSessionTimeoutLocked(grp, updated)

	r := heartbeatResult{
		memberID: strPtr(updated.id),
		epoch:    updated.epoch,
		interval: int32(g.cfg.ConsumerHeartbeatInterval.Milliseconds()),
	}
	full := join || (req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil)
	if full || !before.equal(updated.assigned) {
		r.assignment = assignmentToKmsg(updated.assigned)
	}
	g.enqueueLocked(grp.id, recs, func(_ int64, err error) {
		if err != nil {
			ch <- hbError(appendErrorCode(err), "")
			return
		}
		ch <- r
	})
}

// checkMemberEpoch fences a member whose epoch is ahead of ours, or behind
// it unless it is the previous epoch and the member owns no more than its
// assignment (our answer with the new epoch may have been lost).
func checkMemberEpoch(m *cmember, req *kmsg.ConsumerGroupHeartbeatRequest) int16 {
	switch {
	case req.MemberEpoch > m.epoch:
		return kerr.FencedMemberEpoch.Code
	case req.MemberEpoch < m.epoch:
		if req.MemberEpoch != m.prevEpoch || !ownedSubsetOf(req.Topics, m.assigned) {
			return kerr.FencedMemberEpoch.Code
		}
	}
	return 0
}

func ownedSubsetOf(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, a topicParts) bool {
	if owned == nil {
		return false
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !a.has(t.TopicID, p) {
				return false
			}
		}
	}
	return true
}

func sameMemberMetadata(a, b *cmember) bool {
	return a.sameSubscription(b) && eqStrPtr(a.instanceID, b.instanceID) && eqStrPtr(a.rackID, b.rackID) &&
		a.clientID == b.clientID && a.clientHost == b.clientHost && a.rebalanceMs == b.rebalanceMs && a.serverAssignor == b.serverAssignor
}

func eqStrPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func assignmentToKmsg(a topicParts) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	out := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	out.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, id := range sortedTopicIDs(a) {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = id, slices.Clone(a[id])
		out.Topics = append(out.Topics, t)
	}
	return &out
}

func (g *Groups) consumerLeaveLocked(req *kmsg.ConsumerGroupHeartbeatRequest, ch chan heartbeatResult) {
	grp := g.mu.groups[req.Group]
	if grp == nil || grp.kind != kindConsumer || grp.state == stateDead {
		ch <- hbError(errGroupIDNotFound, "Group %s not found.", req.Group)
		return
	}
	cg := grp.cg
	var m *cmember
	if req.InstanceID == nil {
		if m = cg.members[req.MemberID]; m == nil {
			ch <- hbError(errUnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, req.Group)
			return
		}
	} else {
		if id, ok := cg.static[*req.InstanceID]; ok {
			m = cg.members[id]
		}
		if m == nil {
			ch <- hbError(errUnknownMemberID, "Instance id %s is unknown.", *req.InstanceID)
			return
		}
		if m.id != req.MemberID {
			ch <- hbError(errFencedInstanceID, "Static member %s with instance id %s was fenced by member %s.", req.MemberID, *req.InstanceID, m.id)
			return
		}
		if req.MemberEpoch == epochStaticLeave {
			// The static member steps away but keeps its partitions, for a
			// session timeout, until it rejoins under a new member id.
			left := m.copyAs(m.id)
			left.epoch = epochStaticLeave
			left.pendingRevocation = topicParts{}
			cg.putMember(left)
			g.enqueueLocked(grp.id, []kv{currentAssignmentRecord(grp.id, left)}, func(_ int64, err error) {
				if err != nil {
					ch <- hbError(appendErrorCode(err), "")
					return
				}
				ch <- heartbeatResult{memberID: strPtr(left.id), epoch: epochStaticLeave}
			})
			return
		}
	}
	g.fenceMemberLocked(grp, m, func(err error) {
		if err != nil {
			ch <- hbError(appendErrorCode(err), "")
			return
		}
		ch <- heartbeatResult{memberID: strPtr(req.MemberID), epoch: req.MemberEpoch}
	})
}

// newUUIDString is Java's Uuid.toString(): URL-safe base64, no padding.
func newUUIDString() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
