package coordinator

import (
	"regexp"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicParts is an assignment: partitions (sorted) by topic id.
type topicParts map[[16]byte][]int32

func (a topicParts) clone() topicParts {
	out := make(topicParts, len(a))
	for t, ps := range a {
		out[t] = slices.Clone(ps)
	}
	return out
}

func (a topicParts) equal(b topicParts) bool {
	if len(a) != len(b) {
		return false
	}
	for t, ps := range a {
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

func (a topicParts) has(t [16]byte, p int32) bool {
	_, ok := slices.BinarySearch(a[t], p)
	return ok
}

func (a topicParts) add(t [16]byte, p int32) {
	ps := a[t]
	if i, ok := slices.BinarySearch(ps, p); !ok {
		a[t] = slices.Insert(ps, i, p)
	}
}

func (a topicParts) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func sortedTopicIDs[V any](m map[[16]byte]V) [][16]byte {
	ids := make([][16]byte, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids
}

// memberState is a KIP-848 member's reconciliation state.
type memberState int8

const (
	memberStable               memberState = 0 // has its target assignment
	memberUnrevokedPartitions  memberState = 1 // must first give up partitions
	memberUnreleasedPartitions memberState = 2 // waits for partitions others still own
)

// Member epochs with special meaning in ConsumerGroupHeartbeat.
const (
	epochJoin        = 0
	epochLeave       = -1
	epochStaticLeave = -2
)

// cmember is a KIP-848 consumer group member.
type cmember struct {
	id             string
	instanceID     *string
	rackID         *string
	clientID       string
	clientHost     string
	rebalanceMs    int32
	topics         []string // subscribed topic names, sorted, as sent
	regex          string   // subscribed topic regex, "" if none
	hasRegex       bool
	compiled       *regexp.Regexp
	serverAssignor string

	epoch, prevEpoch  int32
	state             memberState
	assigned          topicParts // partitions the member may use
	pendingRevocation topicParts // partitions it must give up first
}

func (m *cmember) copyAs(id string) *cmember {
	c := *m
	c.id = id
	c.topics = slices.Clone(m.topics)
	c.assigned = m.assigned.clone()
	c.pendingRevocation = m.pendingRevocation.clone()
	return &c
}

// sameSubscription: a change bumps the group epoch.
func (m *cmember) sameSubscription(o *cmember) bool {
	return slices.Equal(m.topics, o.topics) && m.hasRegex == o.hasRegex && m.regex == o.regex
}

// reconciledTo: the member is Stable at the target assignment epoch.
func (m *cmember) reconciledTo(epoch int32) bool {
	return m.state == memberStable && m.epoch == epoch
}

// topicMeta is what the coordinator knows of a subscribed topic.
type topicMeta struct {
	id         [16]byte
	partitions int32
}

// consumerGroup is the KIP-848 part of a group. Guarded by Groups.mu.
type consumerGroup struct {
	epoch           int32 // group epoch, bumped by membership or metadata changes
	assignmentEpoch int32 // epoch of the target assignment
	members         map[string]*cmember
	static          map[string]string     // instance id -> member id
	target          map[string]topicParts // target assignment per member
	// ownerEpochs maps every partition that is assigned or pending
	// revocation to its owner's epoch; a partition moves to a new owner
	// only once it is released from here.
	ownerEpochs map[[16]byte]map[int32]int32
	// subMeta is the metadata of every topic some member subscribes to;
	// a change bumps the group epoch.
	subMeta map[string]topicMeta
	// subscribedBy counts the members subscribed to each topic name, regex
	// subscriptions resolved.
	subscribedBy map[string]int
	// timers are per member id rather than in cmember, which is replaced
	// (copy on write) on every change.
	timers map[string]*memberTimers
}

type memberTimers struct {
	session   timerSlot // fences a member that stops heartbeating
	rebalance timerSlot // fences a member that does not revoke in time
}

func (cg *consumerGroup) timersFor(id string) *memberTimers {
	t := cg.timers[id]
	if t == nil {
		t = &memberTimers{}
		cg.timers[id] = t
	}
	return t
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		assignmentEpoch: 0,
		members:         make(map[string]*cmember),
		static:          make(map[string]string),
		target:          make(map[string]topicParts),
		ownerEpochs:     make(map[[16]byte]map[int32]int32),
		subMeta:         make(map[string]topicMeta),
		subscribedBy:    make(map[string]int),
		timers:          make(map[string]*memberTimers),
	}
}

func (cg *consumerGroup) isEmpty() bool { return len(cg.members) == 0 }

func (cg *consumerGroup) isSubscribedToTopic(topic string) bool { return cg.subscribedBy[topic] > 0 }

func (cg *consumerGroup) stopTimers() {
	for _, t := range cg.timers {
		t.session.cancel()
		t.rebalance.cancel()
	}
}

// stateName is the group state as Kafka reports it.
func (cg *consumerGroup) stateName() string {
	switch {
	case len(cg.members) == 0:
		return "Empty"
	case cg.epoch > cg.assignmentEpoch:
		return "Assigning"
	}
	for _, m := range cg.members {
		if !m.reconciledTo(cg.assignmentEpoch) {
			return "Reconciling"
		}
	}
	return "Stable"
}

// ownerEpoch returns the epoch of the member owning a partition, -1 if
// the partition is free.
func (cg *consumerGroup) ownerEpoch(t [16]byte, p int32) int32 {
	if e, ok := cg.ownerEpochs[t][p]; ok {
		return e
	}
	return -1
}

func (cg *consumerGroup) setOwnership(m *cmember, own bool) {
	for _, a := range []topicParts{m.assigned, m.pendingRevocation} {
		for t, ps := range a {
			for _, p := range ps {
				if own {
					if cg.ownerEpochs[t] == nil {
						cg.ownerEpochs[t] = make(map[int32]int32)
					}
					cg.ownerEpochs[t][p] = m.epoch
				} else if cg.ownerEpochs[t] != nil {
					delete(cg.ownerEpochs[t], p)
					if len(cg.ownerEpochs[t]) == 0 {
						delete(cg.ownerEpochs, t)
					}
				}
			}
		}
	}
}

// putMember installs (or replaces) a member, keeping ownership and static
// ids in sync.
func (cg *consumerGroup) putMember(m *cmember) {
	if old := cg.members[m.id]; old != nil {
		cg.setOwnership(old, false)
	}
	cg.members[m.id] = m
	cg.setOwnership(m, true)
	if m.instanceID != nil {
		cg.static[*m.instanceID] = m.id
	}
}

func (cg *consumerGroup) removeMember(id string) {
	m := cg.members[id]
	if m == nil {
		return
	}
	cg.setOwnership(m, false)
	if t := cg.timers[id]; t != nil {
		t.session.cancel()
		t.rebalance.cancel()
		delete(cg.timers, id)
	}
	delete(cg.members, id)
	delete(cg.target, id)
	if m.instanceID != nil && cg.static[*m.instanceID] == id {
		delete(cg.static, *m.instanceID)
	}
}

// preferredAssignor is the server assignor most members asked for, else
// the configured default.
func (cg *consumerGroup) preferredAssignor(assignors []string) string {
	votes := make(map[string]int)
	for _, m := range cg.members {
		if m.serverAssignor != "" {
			votes[m.serverAssignor]++
		}
	}
	best, n := assignors[0], 0
	for _, a := range assignors {
		if votes[a] > n {
			best, n = a, votes[a]
		}
	}
	return best
}

// resolveSubscription is the set of topic names a member subscribes to:
// its names plus, for a regex (matched against whole names, like Java's
// Matcher.matches), the existing topics it matches — internal topics
// included, as Kafka resolves regexes against every topic.
func (m *cmember) resolveSubscription(allTopics []string) []string {
	if !m.hasRegex {
		return m.topics
	}
	out := slices.Clone(m.topics)
	for _, t := range allTopics {
		if m.compiled.MatchString(t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// refreshSubscriptionsLocked recomputes which topics the group subscribes
// to and their metadata, reporting whether the metadata changed (which
// bumps the group epoch: new topics or partitions need assigning).
func (g *Groups) refreshSubscriptionsLocked(cg *consumerGroup) bool {
	by := g.resolveSubscribedLocked(cg)
	meta := make(map[string]topicMeta, len(by))
	for t := range by {
		n, ok := g.topics.PartitionCount(t)
		if !ok {
			continue
		}
		id, _ := g.topics.TopicID(t)
		meta[t] = topicMeta{id: id, partitions: n}
	}
	cg.subscribedBy = by
	changed := len(meta) != len(cg.subMeta)
	for t, tm := range meta {
		if cg.subMeta[t] != tm {
			changed = true
		}
	}
	cg.subMeta = meta
	return changed
}

// resolveSubscribedLocked counts the members subscribed to each topic.
func (g *Groups) resolveSubscribedLocked(cg *consumerGroup) map[string]int {
	all := g.topics.TopicNames()
	by := make(map[string]int)
	for _, m := range cg.members {
		for _, t := range m.resolveSubscription(all) {
			by[t]++
		}
	}
	return by
}

// ConsumerGroup offset validation (KIP-848): members commit and fetch with
// their member epoch; a group without members accepts simple commits.

func (g *Groups) validateConsumerCommitLocked(grp *group, req *kmsg.OffsetCommitRequest) int16 {
	cg := grp.cg
	if req.Generation < 0 && len(cg.members) == 0 {
		return 0
	}
	m := cg.members[req.MemberID]
	if m == nil {
		return errUnknownMemberID
	}
	if req.Version < 9 {
		return errUnsupportedVersion // consumer-protocol members must use v9+
	}
	if req.Generation != m.epoch {
		return errStaleMemberEpoch
	}
	return 0
}

func (g *Groups) validateConsumerFetchLocked(grp *group, memberID *string, epoch int32) int16 {
	if memberID == nil && epoch < 0 {
		return 0
	}
	var m *cmember
	if memberID != nil {
		m = grp.cg.members[*memberID]
	}
	if m == nil {
		return errUnknownMemberID
	}
	if epoch != m.epoch {
		return errStaleMemberEpoch
	}
	return 0
}

// deleteEmptyConsumerGroupLocked turns an empty consumer group back into
// nothing, so that a classic member can create a classic group there.
func (g *Groups) deleteEmptyConsumerGroupLocked(grp *group) {
	g.enqueueLocked(grp.id, g.groupTombstonesLocked(grp), func(int64, error) {})
	g.removeGroupLocked(grp.id)
}

// consumerOnLoadedLocked derives what the records do not hold (ownership,
// static ids, resolved subscriptions) and restarts every member's session.
func (g *Groups) consumerOnLoadedLocked(grp *group) {
	cg := grp.cg
	cg.ownerEpochs = make(map[[16]byte]map[int32]int32)
	cg.static = make(map[string]string)
	for _, id := range sortedKeys(cg.members) {
		m := cg.members[id]
		cg.putMember(m)
		g.scheduleSessionTimeoutLocked(grp, m)
		if m.state == memberUnrevokedPartitions {
			g.scheduleRebalanceTimeoutLocked(grp, m)
		}
	}
	cg.subscribedBy = g.resolveSubscribedLocked(cg)
}

func (g *Groups) scheduleSessionTimeoutLocked(grp *group, m *cmember) {
	id := m.id
	g.setGroupTimerLocked(grp, &grp.cg.timersFor(id).session, g.cfg.ConsumerSessionTimeout, func() {
		if cur := grp.cg.members[id]; cur != nil {
			g.logger.Info().Str("group", grp.id).Str("member", id).Msg("coordinator: consumer group member session expired")
			g.fenceMemberLocked(grp, cur, nil)
		}
	})
}

// scheduleRebalanceTimeoutLocked fences a member that does not revoke
// partitions within its rebalance timeout.
func (g *Groups) scheduleRebalanceTimeoutLocked(grp *group, m *cmember) {
	id, epoch := m.id, m.epoch
	g.setGroupTimerLocked(grp, &grp.cg.timersFor(id).rebalance, msDuration(m.rebalanceMs), func() {
		if cur := grp.cg.members[id]; cur != nil && cur.epoch == epoch {
			g.logger.Info().Str("group", grp.id).Str("member", id).Msg("coordinator: consumer group member failed to revoke partitions in time")
			g.fenceMemberLocked(grp, cur, nil)
		}
	})
}

// fenceMemberLocked removes a member (leave, session or rebalance timeout)
// and bumps the group epoch so the others get its partitions. done, if not
// nil, gets the outcome of persisting that.
func (g *Groups) fenceMemberLocked(grp *group, m *cmember, done func(error)) {
	cg := grp.cg
	var recs []kv
	recs = append(recs, memberTombstones(grp.id, m.id)...)
	cg.removeMember(m.id)
	if g.refreshSubscriptionsLocked(cg) {
		recs = append(recs, partitionMetadataRecord(grp.id, cg))
	}
	cg.epoch++
	recs = append(recs, groupEpochRecord(grp.id, cg.epoch))
	g.enqueueLocked(grp.id, recs, func(_ int64, err error) {
		if err != nil {
			g.logger.Warn().Err(err).Str("group", grp.id).Msg("coordinator: persisting consumer group change failed")
		}
		if done != nil {
			done(err)
		}
	})
}

func (g *Groups) consumerTombstonesLocked(grp *group) []kv {
	var recs []kv
	ids := make([]string, 0, len(grp.cg.members))
	for id := range grp.cg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		recs = append(recs, memberTombstones(grp.id, id)...)
	}
	return append(recs, groupTombstones(grp.id)...)
}
