package share

import (
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupConfig holds the broker settings of share group membership.
type GroupConfig struct {
	// SessionTimeout is group.share.session.timeout.ms: a member that does
	// not heartbeat for this long is removed and its locks released.
	SessionTimeout time.Duration
	// HeartbeatInterval is group.share.heartbeat.interval.ms, told to
	// members in every heartbeat response.
	HeartbeatInterval time.Duration
	// MaxSize is group.share.max.size: members beyond it are refused
	// with GROUP_MAX_SIZE_REACHED.
	MaxSize int
}

// DefaultGroupConfig is Kafka 4.2's defaults.
func DefaultGroupConfig() GroupConfig {
	return GroupConfig{SessionTimeout: 45 * time.Second, HeartbeatInterval: 5 * time.Second, MaxSize: 200}
}

// Topics is the cluster metadata that assignment needs.
type Topics interface {
	TopicID(name string) ([16]byte, bool)
	TopicNameByID(id [16]byte) (string, bool)
	PartitionCount(name string) (int32, bool)
}

// TopicPartition names one partition by topic ID, as share group
// assignments and share-partition keys do.
type TopicPartition struct {
	TopicID   [16]byte
	Partition int32
}

type member struct {
	id, rack, clientID, host string
	epoch                    int32    // the epoch last sent to the member
	prevEpoch                int32    // the epoch before it, still accepted
	nextEpoch                int32    // the epoch of assigned, sent with it
	topics                   []string // sorted subscription
	assigned                 []TopicPartition
	sent                     bool      // assigned was sent in a response
	deadline                 time.Time // session expiry
}

// Group is one share group's membership: KIP-932's ShareGroupHeartbeat
// protocol with the simple assignor. Share groups need no revocation
// step (a partition may be assigned to several members at once), so a
// member gets its new assignment, with the new epoch, in its next
// heartbeat response; until then its old epoch stays valid. Not safe for concurrent use.
type Group struct {
	ID      string
	cfg     GroupConfig
	epoch   int32 // group epoch: bumped whenever any assignment changes
	members map[string]*member
}

// NewGroup makes an empty share group.
func NewGroup(id string, cfg GroupConfig) *Group {
	return &Group{ID: id, cfg: cfg, members: make(map[string]*member)}
}

// Empty reports whether the group has no members.
func (g *Group) Empty() bool { return len(g.members) == 0 }

// Epoch is the group epoch.
func (g *Group) Epoch() int32 { return g.epoch }

// Heartbeat handles one ShareGroupHeartbeat from clientID at host. Kafka
// errors are returned in the response.
func (g *Group) Heartbeat(now time.Time, req *kmsg.ShareGroupHeartbeatRequest, clientID, host string, topics Topics) *kmsg.ShareGroupHeartbeatResponse {
	resp := kmsg.NewPtrShareGroupHeartbeatResponse()
	resp.Version = req.Version
	resp.HeartbeatIntervalMillis = int32(g.cfg.HeartbeatInterval / time.Millisecond)
	fail := func(err *kerr.Error, msg string) *kmsg.ShareGroupHeartbeatResponse {
		resp.ErrorCode = err.Code
		resp.ErrorMessage = &msg
		return resp
	}
	switch {
	case req.GroupID == "":
		return fail(kerr.InvalidRequest, "GroupId can't be empty.")
	case req.MemberID == "":
		return fail(kerr.InvalidRequest, "MemberId can't be empty.")
	case req.MemberEpoch < -1:
		return fail(kerr.InvalidRequest, "MemberEpoch is invalid.")
	case req.MemberEpoch == 0 && len(req.SubscribedTopicNames) == 0:
		return fail(kerr.InvalidRequest, "SubscribedTopicNames must be set in first request.")
	}
	memberID := req.MemberID
	resp.MemberID = &memberID

	m, known := g.members[req.MemberID]
	if req.MemberEpoch == -1 {
		if known {
			delete(g.members, req.MemberID)
			g.reassign(topics)
		}
		resp.MemberEpoch = -1
		return resp
	}
	if req.MemberEpoch == 0 {
		if !known {
			if len(g.members) >= g.cfg.MaxSize {
				return fail(kerr.GroupMaxSizeReached, "The share group has reached its maximum size.")
			}
			m = &member{id: req.MemberID}
			g.members[req.MemberID] = m
		}
		// A (re)joining member always gets its whole assignment.
		m.sent = false
	} else {
		if !known {
			return fail(kerr.UnknownMemberID, "Member "+req.MemberID+" is not a member of share group "+req.GroupID+".")
		}
		switch {
		case req.MemberEpoch == m.epoch:
		case req.MemberEpoch == m.prevEpoch && m.prevEpoch > 0:
			// As Kafka: the response that carried the new epoch may have
			// been lost (a client that timed the heartbeat out), so the
			// previous epoch is accepted and the assignment sent again.
			// Fencing it made the client reset its share sessions and drop
			// the acknowledgements it had pending.
			m.sent = false
		default:
			return fail(kerr.FencedMemberEpoch, "The share group member has a different epoch than the coordinator.")
		}
	}
	m.clientID, m.host = clientID, host
	if req.RackID != nil {
		m.rack = *req.RackID
	}
	if req.SubscribedTopicNames != nil {
		subs := slices.Clone(req.SubscribedTopicNames)
		sort.Strings(subs)
		m.topics = slices.Compact(subs)
	}
	m.deadline = now.Add(g.cfg.SessionTimeout)
	// Assignment is recomputed on every heartbeat so that new topics and
	// added partitions reach members without a membership change.
	g.reassign(topics)
	if !m.sent {
		if m.nextEpoch != m.epoch {
			m.prevEpoch = m.epoch
		}
		m.epoch = m.nextEpoch
		a := &kmsg.ShareGroupHeartbeatResponseAssignment{}
		for _, tp := range groupByTopic(m.assigned) {
			a.TopicPartitions = append(a.TopicPartitions, kmsg.ShareGroupHeartbeatResponseAssignmentTopicPartition{TopicID: tp.id, Partitions: tp.parts})
		}
		resp.Assignment = a
		m.sent = true
	}
	resp.MemberEpoch = m.epoch
	return resp
}

// Expire removes the members whose session ended at or before now and
// returns their IDs, so the owner releases their acquisition locks.
func (g *Group) Expire(now time.Time, topics Topics) []string {
	var gone []string
	for id, m := range g.members {
		if !m.deadline.After(now) {
			gone = append(gone, id)
			delete(g.members, id)
		}
	}
	if len(gone) > 0 {
		sort.Strings(gone)
		g.reassign(topics)
	}
	return gone
}

// NextDeadline is the earliest session expiry.
func (g *Group) NextDeadline() (time.Time, bool) {
	var next time.Time
	ok := false
	for _, m := range g.members {
		if !ok || m.deadline.Before(next) {
			next, ok = m.deadline, true
		}
	}
	return next, ok
}

// Assigned reports whether member may fetch tp: ShareFetch from a member
// for a partition it was not assigned is answered with no records.
func (g *Group) Assigned(memberID string, tp TopicPartition) bool {
	m, ok := g.members[memberID]
	return ok && slices.Contains(m.assigned, tp)
}

// IsMember reports whether memberID is in the group.
func (g *Group) IsMember(memberID string) bool {
	_, ok := g.members[memberID]
	return ok
}

// reassign runs the simple assignor over the current members and, if any
// member's partitions change, bumps the group epoch and gives those
// members the new epoch.
//
// For each topic, its subscribers (sorted by member ID) share its
// partitions: with no more subscribers than partitions, partition p goes
// to subscriber p mod n; with more subscribers, subscriber i gets
// partition i mod P, so every member has work and partitions are shared.
func (g *Group) reassign(topics Topics) {
	subscribers := make(map[string][]string)
	for id, m := range g.members {
		for _, t := range m.topics {
			subscribers[t] = append(subscribers[t], id)
		}
	}
	target := make(map[string][]TopicPartition, len(g.members))
	for t, ids := range subscribers {
		id, ok := topics.TopicID(t)
		n, ok2 := topics.PartitionCount(t)
		if !ok || !ok2 || n <= 0 {
			continue
		}
		sort.Strings(ids)
		if len(ids) <= int(n) {
			for p := int32(0); p < n; p++ {
				mid := ids[int(p)%len(ids)]
				target[mid] = append(target[mid], TopicPartition{id, p})
			}
		} else {
			for i, mid := range ids {
				target[mid] = append(target[mid], TopicPartition{id, int32(i) % n})
			}
		}
	}
	changed := false
	for id, m := range g.members {
		tps := target[id]
		sortTPs(tps)
		if !slices.Equal(tps, m.assigned) {
			m.assigned = tps
			m.sent = false
			changed = true
		}
	}
	if changed {
		g.epoch++
		for _, m := range g.members {
			if !m.sent {
				m.nextEpoch = g.epoch
			}
		}
	}
	// A first heartbeat that changes nothing still needs an epoch above 0.
	for _, m := range g.members {
		if m.nextEpoch == 0 {
			if !changed {
				g.epoch++
				changed = true
			}
			m.nextEpoch = g.epoch
			m.sent = false
		}
	}
}

func sortTPs(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if c := compareIDs(tps[i].TopicID, tps[j].TopicID); c != 0 {
			return c < 0
		}
		return tps[i].Partition < tps[j].Partition
	})
}

func compareIDs(a, b [16]byte) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

type topicParts struct {
	id    [16]byte
	parts []int32
}

func groupByTopic(tps []TopicPartition) []topicParts {
	var out []topicParts
	for _, tp := range tps {
		if k := len(out) - 1; k >= 0 && out[k].id == tp.TopicID {
			out[k].parts = append(out[k].parts, tp.Partition)
			continue
		}
		out = append(out, topicParts{id: tp.TopicID, parts: []int32{tp.Partition}})
	}
	return out
}

// Describe answers ShareGroupDescribe for this group.
func (g *Group) Describe(topics Topics) kmsg.ShareGroupDescribeResponseGroup {
	d := kmsg.NewShareGroupDescribeResponseGroup()
	d.GroupID = g.ID
	d.GroupState = "Stable"
	if g.Empty() {
		d.GroupState = "Empty"
	}
	d.GroupEpoch = g.epoch
	d.AssignmentEpoch = g.epoch
	d.Assignor = "simple"
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := g.members[id]
		dm := kmsg.NewShareGroupDescribeResponseGroupMember()
		dm.MemberID, dm.MemberEpoch, dm.ClientID, dm.ClientHost = m.id, m.epoch, m.clientID, m.host
		if m.rack != "" {
			r := m.rack
			dm.RackID = &r
		}
		dm.SubscribedTopicNames = slices.Clone(m.topics)
		for _, tp := range groupByTopic(m.assigned) {
			at := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
			at.TopicID = tp.id
			at.Topic, _ = topics.TopicNameByID(tp.id)
			at.Partitions = tp.parts
			dm.Assignment.TopicPartitions = append(dm.Assignment.TopicPartitions, at)
		}
		d.Members = append(d.Members, dm)
	}
	return d
}
