package coordinator

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups handles ListGroups v0-v5, with the states (v4+) and types
// (v5+) filters. Groups that only have committed offsets are listed as
// Empty classic groups with no protocol type.
func (g *Groups) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	g.lock()
	defer g.unlock()
	if g.mu.closed {
		resp.ErrorCode = errCoordinatorNotAvailable
		return resp
	}
	states := make(map[string]bool)
	for _, s := range req.StatesFilter {
		states[strings.ToLower(strings.TrimSpace(s))] = true
	}
	types := make(map[string]bool)
	for _, t := range req.TypesFilter {
		types[strings.ToLower(strings.TrimSpace(t))] = true
	}
	for _, id := range g.sortedGroupIDsLocked() {
		grp := g.mu.groups[id]
		if grp.state == stateDead {
			continue // being deleted
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = id
		lg.GroupType = grp.kind.String()
		switch grp.kind {
		case kindConsumer:
			lg.ProtocolType = consumerProtocolType
			lg.GroupState = grp.cg.stateName()
		case kindStreams:
			lg.ProtocolType = "streams"
			lg.GroupState = grp.sg.stateName()
		default:
			lg.ProtocolType = grp.protocolType
			lg.GroupState = grp.state.String()
		}
		if len(states) > 0 && !states[strings.ToLower(lg.GroupState)] {
			continue
		}
		if len(types) > 0 && !types[lg.GroupType] {
			continue
		}
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

// DescribeGroups handles DescribeGroups v0-v6. Like Kafka, an unknown group
// is described as Dead, with GROUP_ID_NOT_FOUND from v6 on.
func (g *Groups) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	g.lock()
	defer g.unlock()
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		grp := g.mu.groups[id]
		switch {
		case g.mu.closed:
			dg.ErrorCode = errCoordinatorNotAvailable
		case grp == nil || grp.state == stateDead || !grp.isClassic():
			dg.State = stateDead.String()
			if req.Version >= 6 {
				dg.ErrorCode = errGroupIDNotFound
				msg := fmt.Sprintf("Group %s not found.", id)
				if grp != nil && !grp.isClassic() && grp.state != stateDead {
					msg = fmt.Sprintf("Group %s is not a classic group.", id)
				}
				dg.ErrorMessage = &msg
			}
		default:
			dg.State = grp.state.String()
			dg.ProtocolType = grp.protocolType
			stable := grp.state == stateStable
			if stable {
				dg.Protocol = grp.protocol
			}
			for _, m := range grp.members {
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID = m.id
				dm.InstanceID = m.instanceID
				dm.ClientID = m.clientID
				dm.ClientHost = m.clientHost
				dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
				if stable { // outside Stable the metadata and assignment are in flux
					dm.ProtocolMetadata = orEmpty(m.metadataFor(grp.protocol))
					dm.MemberAssignment = orEmpty(m.assignment)
				}
				dg.Members = append(dg.Members, dm)
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// DeleteGroups handles DeleteGroups v0-v2: each group must exist and have no
// members; its offsets and metadata are tombstoned, and the answer waits
// until that is durable.
func (g *Groups) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	chans := make([]chan int16, len(req.Groups))
	g.lock()
	for i, id := range req.Groups {
		resp.Groups[i] = kmsg.NewDeleteGroupsResponseGroup()
		resp.Groups[i].Group = id
		grp := g.mu.groups[id]
		switch {
		case g.mu.closed:
			resp.Groups[i].ErrorCode = errCoordinatorNotAvailable
		case grp == nil || grp.state == stateDead:
			resp.Groups[i].ErrorCode = errGroupIDNotFound
		case !grp.isEmpty():
			resp.Groups[i].ErrorCode = errNonEmptyGroup
		default:
			chans[i] = make(chan int16, 1)
			g.deleteGroupLocked(grp, g.offsetTombstonesLocked(id), chans[i])
		}
	}
	g.unlock()
	for i, ch := range chans {
		if ch == nil {
			continue
		}
		code, waitCode := await(ctx, g.closing, ch)
		if waitCode != 0 {
			code = waitCode
		}
		resp.Groups[i].ErrorCode = code
	}
	return resp
}

// offsetTombstonesLocked lists tombstones for every offset of the group,
// pending transactional ones included.
func (g *Groups) offsetTombstonesLocked(groupID string) []kv {
	var recs []kv
	seen := make(map[string]map[int32]bool)
	add := func(topic string, p int32) {
		if seen[topic] == nil {
			seen[topic] = make(map[int32]bool)
		}
		if !seen[topic][p] {
			seen[topic][p] = true
			recs = append(recs, kv{key: offsetCommitKey(groupID, topic, p)})
		}
	}
	for _, topic := range sortedKeys(g.mu.offsets[groupID]) {
		for _, p := range sortedKeys(g.mu.offsets[groupID][topic]) {
			add(topic, p)
		}
	}
	for pid := range g.mu.txn.openGroups[groupID] {
		for topic, parts := range g.mu.txn.byProducer[pid][groupID] {
			for p := range parts {
				add(topic, p)
			}
		}
	}
	return recs
}

// deleteGroupLocked writes the given offset tombstones plus the group's
// own, marking the group Dead meanwhile so that nobody joins a group that
// is going away; a failed write brings it back.
func (g *Groups) deleteGroupLocked(grp *group, offsetTombstones []kv, done chan int16) {
	recs := append(offsetTombstones, g.groupTombstonesLocked(grp)...)
	prev := grp.state
	grp.state = stateDead
	g.enqueueLocked(grp.id, recs, func(_ int64, err error) {
		if err != nil {
			if g.mu.groups[grp.id] == grp && grp.state == stateDead {
				grp.state = prev
			}
			if done != nil {
				done <- appendErrorCode(err)
			}
			return
		}
		for _, r := range offsetTombstones {
			var k kmsg.OffsetCommitKey
			if k.ReadFrom(r.key) == nil {
				g.deleteOffsetLocked(k.Group, k.Topic, k.Partition)
			}
		}
		if g.mu.groups[grp.id] == grp {
			g.removeGroupLocked(grp.id)
		}
		if done != nil {
			done <- 0
		}
	})
}

func (g *Groups) groupTombstonesLocked(grp *group) []kv {
	switch grp.kind {
	case kindConsumer:
		return g.consumerTombstonesLocked(grp)
	case kindStreams:
		return g.streamsTombstonesLocked(grp)
	}
	return []kv{{key: groupMetadataKey(grp.id)}}
}

func (g *Groups) scheduleExpiryLocked() {
	g.setTimerLocked(&g.mu.expiry, g.cfg.OffsetsRetentionCheckInterval, func() {
		g.expireOffsetsLocked()
		g.scheduleExpiryLocked()
	})
}

// expireOffsetsLocked is Kafka's periodic group metadata cleanup: offsets
// older than offsets.retention.minutes are deleted from groups that do not
// use them (an Empty group counts from the moment it became empty), and
// empty groups left without offsets are deleted.
func (g *Groups) expireOffsetsLocked() {
	now := g.now().UnixMilli()
	retention := g.cfg.OffsetsRetention.Milliseconds()
	for _, id := range g.sortedGroupIDsLocked() {
		grp := g.mu.groups[id]
		if grp.state == stateDead {
			continue
		}
		base, expires := g.expirationBaseLocked(grp)
		offsets := g.mu.offsets[id]
		allExpired := true
		var tombstones []kv
		for _, topic := range sortedKeys(offsets) {
			if !expires || grp.isSubscribedToTopic(topic) {
				allExpired = false
				continue
			}
			for _, p := range sortedKeys(offsets[topic]) {
				e := offsets[topic][p]
				expired := now-base(e) >= retention
				if e.expireTime >= 0 {
					expired = now >= e.expireTime
				}
				if !expired || g.mu.txn.hasPending(id, topic, p) {
					allExpired = false
					continue
				}
				tombstones = append(tombstones, kv{key: offsetCommitKey(id, topic, p)})
			}
		}
		if allExpired && grp.isEmpty() && !g.mu.txn.hasOpen(id) {
			g.logger.Info().Str("group", id).Int("offsets", len(tombstones)).Msg("coordinator: deleting expired empty group")
			g.deleteGroupLocked(grp, tombstones, nil)
			continue
		}
		if len(tombstones) > 0 {
			g.logger.Info().Str("group", id).Int("offsets", len(tombstones)).Msg("coordinator: expiring offsets")
			g.enqueueLocked(id, tombstones, func(_ int64, err error) {
				if err != nil {
					return
				}
				for _, r := range tombstones {
					var k kmsg.OffsetCommitKey
					if k.ReadFrom(r.key) == nil {
						g.deleteOffsetLocked(k.Group, k.Topic, k.Partition)
					}
				}
			})
		}
	}
}

// expirationBaseLocked says whether a group's offsets can expire and from which
// time an offset's retention counts: the time an Empty group became empty,
// else the commit time.
func (g *Groups) expirationBaseLocked(grp *group) (func(*offsetEntry) int64, bool) {
	commitTime := func(e *offsetEntry) int64 { return e.commitTime }
	if !grp.isClassic() || grp.protocolType == "" {
		return commitTime, true
	}
	switch {
	case grp.state == stateEmpty:
		if grp.stateTime.IsZero() {
			return commitTime, true
		}
		emptySince := grp.stateTime.UnixMilli()
		return func(*offsetEntry) int64 { return emptySince }, true
	case grp.state == stateStable && grp.protocolType == consumerProtocolType && grp.subscribed != nil:
		return commitTime, true
	}
	return nil, false
}

func sortedKeys[K string | int32, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// TopicsDeleted deletes every group's committed offsets of the given
// topics, as Kafka does when topics are deleted; the server calls it after
// DeleteTopics. It returns once the tombstones are durable (or on Close).
func (g *Groups) TopicsDeleted(topics []string) {
	deleted := make(map[string]bool, len(topics))
	for _, t := range topics {
		deleted[t] = true
	}
	var waits []chan struct{}
	g.lock()
	for _, id := range sortedKeys(g.mu.offsets) {
		var recs []kv
		for _, topic := range sortedKeys(g.mu.offsets[id]) {
			if !deleted[topic] {
				continue
			}
			for _, p := range sortedKeys(g.mu.offsets[id][topic]) {
				recs = append(recs, kv{key: offsetCommitKey(id, topic, p)})
			}
		}
		if len(recs) == 0 {
			continue
		}
		done := make(chan struct{})
		waits = append(waits, done)
		groupID := id
		g.enqueueLocked(groupID, recs, func(_ int64, err error) {
			defer close(done)
			if err != nil {
				return // the offsets stay; a later restart still has them
			}
			for _, r := range recs {
				var k kmsg.OffsetCommitKey
				if k.ReadFrom(r.key) == nil {
					g.deleteOffsetLocked(k.Group, k.Topic, k.Partition)
				}
			}
		})
	}
	g.unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-g.closing:
			return
		}
	}
}
