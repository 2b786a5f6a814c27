package coordinator

import (
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// assignSpec is the input of a server-side assignor.
type assignSpec struct {
	members []string            // sorted member ids
	subs    map[string][]string // member -> subscribed topics that exist, sorted
	topics  map[string]topicMeta
	current map[string]topicParts // the previous target assignment, for stickiness
}

type assignor func(assignSpec) map[string]topicParts

func assignorByName(name string) assignor {
	switch name {
	case "uniform":
		return assignUniform
	case "range":
		return assignRange
	}
	return nil
}

// assignRange is Kafka's server-side range assignor: each subscriber of a
// topic gets n/k of its n partitions (the first n%k members by member id
// one more), handed out in ascending ranges. Like Kafka's, it is sticky:
// a member first keeps the lowest partitions of its previous target, up
// to its share, and only the rest is handed out. Members with the same
// subscription and history thus keep the same partition numbers on every
// topic, so co-partitioned topics stay together.
func assignRange(s assignSpec) map[string]topicParts {
	out := emptyAssignment(s.members)
	for _, t := range sortedKeys(s.topics) {
		var subs []string
		for _, m := range s.members {
			if slices.Contains(s.subs[m], t) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		tm := s.topics[t]
		quota, extra := int(tm.partitions)/len(subs), int(tm.partitions)%len(subs)
		taken := make(map[int32]bool)
		type need struct {
			member string
			n      int // partitions still owed, before any extra one
		}
		var needs []need
		for _, m := range subs {
			var prev []int32
			for _, p := range s.current[m][tm.id] {
				if p < tm.partitions {
					prev = append(prev, p)
				}
			}
			slices.Sort(prev)
			keep := min(len(prev), quota)
			if len(prev) > quota && extra > 0 {
				keep++ // it already holds more than its share: one extra stays
				extra--
			} else {
				needs = append(needs, need{m, quota - len(prev)})
			}
			for _, p := range prev[:keep] {
				out[m].add(tm.id, p)
				taken[p] = true
			}
		}
		next := int32(0)
		for _, nd := range needs {
			n := nd.n
			if extra > 0 {
				n++
				extra--
			}
			for ; n > 0; n-- {
				for taken[next] {
					next++
				}
				out[nd.member].add(tm.id, next)
				taken[next] = true
			}
		}
	}
	return out
}

// assignUniform spreads partitions as evenly as subscriptions allow while
// moving as few as possible: members keep what they had, unowned
// partitions go to the least loaded subscriber, then partitions move from
// the most to the least loaded members until no move helps.
func assignUniform(s assignSpec) map[string]topicParts {
	out := emptyAssignment(s.members)
	byID := make(map[[16]byte]string, len(s.topics))
	for t, tm := range s.topics {
		byID[tm.id] = t
	}
	subscribed := func(m, topic string) bool {
		_, ok := slices.BinarySearch(s.subs[m], topic)
		return ok
	}
	type tp struct {
		topic string
		p     int32
	}
	owner := make(map[tp]string)
	count := make(map[string]int)
	give := func(m string, x tp) {
		owner[x] = m
		out[m].add(s.topics[x.topic].id, x.p)
		count[m]++
	}
	// 1. Stickiness: keep still-valid partitions of the previous target.
	for _, m := range s.members {
		for id, ps := range s.current[m] {
			t, ok := byID[id]
			if !ok || !subscribed(m, t) {
				continue
			}
			for _, p := range ps {
				if x := (tp{t, p}); p < s.topics[t].partitions && owner[x] == "" {
					give(m, x)
				}
			}
		}
	}
	// 2. Unowned partitions go to the least loaded subscriber.
	for _, t := range sortedKeys(s.topics) {
		for p := int32(0); p < s.topics[t].partitions; p++ {
			x := tp{t, p}
			if owner[x] != "" {
				continue
			}
			best := ""
			for _, m := range s.members {
				if subscribed(m, t) && (best == "" || count[m] < count[best]) {
					best = m
				}
			}
			if best != "" {
				give(best, x)
			}
		}
	}
	// 3. Rebalance: move from a member with at least two more partitions
	// to one that can take it. Each move lowers the sum of squared counts,
	// so this ends.
	for moved := true; moved; {
		moved = false
		order := slices.Clone(s.members)
		sort.SliceStable(order, func(i, j int) bool { return count[order[i]] > count[order[j]] })
	search:
		for _, from := range order {
			for i := len(order) - 1; i >= 0; i-- {
				to := order[i]
				if count[from]-count[to] < 2 {
					break
				}
				for _, id := range sortedTopicIDs(out[from]) {
					t := byID[id]
					if !subscribed(to, t) {
						continue
					}
					ps := out[from][id]
					p := ps[len(ps)-1]
					out[from][id] = ps[:len(ps)-1]
					if len(out[from][id]) == 0 {
						delete(out[from], id)
					}
					count[from]--
					give(to, tp{t, p})
					moved = true
					break search
				}
			}
		}
	}
	return out
}

func emptyAssignment(members []string) map[string]topicParts {
	out := make(map[string]topicParts, len(members))
	for _, m := range members {
		out[m] = topicParts{}
	}
	return out
}

// updateTargetAssignmentLocked computes the target assignment of the
// current group epoch and returns the records of what changed.
func (g *Groups) updateTargetAssignmentLocked(grp *group) []kv {
	cg := grp.cg
	all := g.topics.TopicNames()
	spec := assignSpec{subs: make(map[string][]string), topics: cg.subMeta, current: cg.target}
	for id, m := range cg.members {
		spec.members = append(spec.members, id)
		var subs []string
		for _, t := range m.resolveSubscription(all) {
			if _, ok := cg.subMeta[t]; ok {
				subs = append(subs, t)
			}
		}
		spec.subs[id] = subs
	}
	slices.Sort(spec.members)
	target := assignorByName(cg.preferredAssignor(g.cfg.ConsumerAssignors))(spec)
	var recs []kv
	for _, id := range spec.members {
		if !target[id].equal(cg.target[id]) {
			recs = append(recs, targetMemberRecord(grp.id, id, target[id]))
		}
	}
	cg.target = target
	cg.assignmentEpoch = cg.epoch
	return append(recs, targetEpochRecord(grp.id, cg.epoch))
}

// reconcile moves a member one step towards its target assignment, as
// Kafka's CurrentAssignmentBuilder does. Partitions it must give up are
// revoked first (the member stays in its epoch until it stops reporting
// them); partitions still owned by others are withheld until released.
// It returns m itself when nothing changes.
func reconcile(m *cmember, cg *consumerGroup, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) *cmember {
	switch m.state {
	case memberStable:
		if m.epoch == cg.assignmentEpoch {
			return m
		}
		return nextAssignment(m, cg, m.epoch, owned)
	case memberUnrevokedPartitions:
		if ownsAny(owned, m.pendingRevocation) {
			return m
		}
		return nextAssignment(m, cg, m.epoch+1, owned)
	default: // unreleased partitions, or a state from a newer Kafka
		return nextAssignment(m, cg, m.epoch, owned)
	}
}

// ownsAny reports whether the member may still own any of the partitions;
// a heartbeat without owned partitions proves nothing.
func ownsAny(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, a topicParts) bool {
	if owned == nil {
		return len(a) > 0
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if a.has(t.TopicID, p) {
				return true
			}
		}
	}
	return false
}

func nextAssignment(m *cmember, cg *consumerGroup, revokeEpoch int32, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) *cmember {
	target := cg.target[m.id]
	keep, revoke, add := topicParts{}, topicParts{}, topicParts{}
	unreleased := false
	ids := make(map[[16]byte]bool)
	for id := range target {
		ids[id] = true
	}
	for id := range m.assigned {
		ids[id] = true
	}
	for id := range ids {
		for _, p := range m.assigned[id] {
			if target.has(id, p) {
				keep.add(id, p)
			} else {
				revoke.add(id, p)
			}
		}
		for _, p := range target[id] {
			switch {
			case keep.has(id, p):
			case cg.ownerEpoch(id, p) != -1:
				unreleased = true
			default:
				add.add(id, p)
			}
		}
	}
	next := m.copyAs(m.id)
	next.prevEpoch = m.epoch
	next.pendingRevocation = topicParts{}
	switch {
	case len(revoke) > 0 && ownsAny(owned, revoke):
		next.state = memberUnrevokedPartitions
		next.epoch = revokeEpoch
		next.assigned = keep
		next.pendingRevocation = revoke
	default:
		for id, ps := range add {
			for _, p := range ps {
				keep.add(id, p)
			}
		}
		next.assigned = keep
		next.epoch = cg.assignmentEpoch
		next.state = memberStable
		if unreleased {
			next.state = memberUnreleasedPartitions
		}
	}
	if next.state == m.state && next.epoch == m.epoch && next.prevEpoch == m.prevEpoch &&
		next.assigned.equal(m.assigned) && next.pendingRevocation.equal(m.pendingRevocation) {
		return m
	}
	return next
}
