package coordinator

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is a classic group's state, named as Kafka names it on the
// wire (DescribeGroups, ListGroups).
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	}
	return "Dead"
}

// groupKind is the protocol a group speaks: the classic JoinGroup/SyncGroup
// protocol or KIP-848's ConsumerGroupHeartbeat. A group keeps its kind for
// as long as it has members.
type groupKind int8

const (
	kindClassic groupKind = iota
	kindConsumer
	kindStreams
)

func (k groupKind) String() string {
	switch k {
	case kindConsumer:
		return "consumer"
	case kindStreams:
		return "streams"
	}
	return "classic"
}

// group is one group's membership state. All fields are guarded by
// Groups.mu. A group that only has committed offsets is a classic group in
// state Empty with no protocol type (Kafka's "simple group").
type group struct {
	id   string
	kind groupKind

	// Classic protocol state.
	state, prevState groupState
	stateTime        time.Time // when state last changed; zero if unknown
	protocolType     string    // "" until a member joins (simple group)
	protocol         string    // selected protocol of the generation, "" if none
	generation       int32
	leader           string
	members          []*member // in join order, which picks the next leader
	byID             map[string]*member
	static           map[string]string     // group.instance.id -> member id
	pendingJoin      map[string]*timerSlot // KIP-394 member ids handed out but not yet joined
	pendingSync      map[string]bool       // members of this generation yet to SyncGroup
	awaitingJoin     int                   // members parked in JoinGroup
	newMemberAdded   bool                  // extends the initial rebalance delay
	joinTimer        timerSlot
	syncTimer        timerSlot
	// subscribed is the union of the members' subscribed topics when the
	// protocol type is "consumer" and it could be decoded; nil if unknown.
	subscribed map[string]bool

	// KIP-848 state, non-nil iff kind == kindConsumer.
	cg *consumerGroup
	// KIP-1071 state, non-nil iff kind == kindStreams.
	sg *streamsGroup
}

// isClassic: the group speaks the classic protocol (JoinGroup/SyncGroup);
// the others have no classic members.
func (grp *group) isClassic() bool { return grp.kind == kindClassic }

func newClassicGroup(id string, now time.Time) *group {
	return &group{
		id:          id,
		kind:        kindClassic,
		state:       stateEmpty,
		prevState:   stateEmpty,
		stateTime:   now,
		byID:        make(map[string]*member),
		static:      make(map[string]string),
		pendingJoin: make(map[string]*timerSlot),
		pendingSync: make(map[string]bool),
	}
}

// protocolMeta is one (name, metadata) pair a classic member supports, in
// the member's order of preference.
type protocolMeta struct {
	name     string
	metadata []byte
}

// member is a classic group member.
type member struct {
	id                 string
	instanceID         *string
	clientID           string
	clientHost         string
	rebalanceTimeoutMs int32
	sessionTimeoutMs   int32
	protocolType       string
	protocols          []protocolMeta
	assignment         []byte
	isNew              bool // joined but not yet through a completed join phase

	join chan joinResult // non-nil while parked in JoinGroup
	sync chan syncResult // non-nil while parked in SyncGroup
	hb   timerSlot       // session expiry
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.name == protocol {
			return p.metadata
		}
	}
	return nil
}

// matches reports whether the member re-joined with exactly the protocols
// it has, in which case Kafka answers from the current generation.
func (m *member) matches(ps []protocolMeta) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].name != m.protocols[i].name || !bytes.Equal(ps[i].metadata, m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

// satisfiedHeartbeat: a member parked in a rebalance needs no heartbeat,
// except a brand-new one, which is bounded by the new member join timeout.
func (m *member) satisfiedHeartbeat() bool {
	return !m.isNew && (m.join != nil || m.sync != nil)
}

func protocolsOf(ps []kmsg.JoinGroupRequestProtocol) []protocolMeta {
	out := make([]protocolMeta, len(ps))
	for i, p := range ps {
		out[i] = protocolMeta{name: p.Name, metadata: p.Metadata}
	}
	return out
}

// classic group helpers; all need Groups.mu.

func (grp *group) isEmpty() bool {
	switch grp.kind {
	case kindConsumer:
		return grp.cg.isEmpty()
	case kindStreams:
		return grp.sg.isEmpty()
	}
	return grp.state == stateEmpty
}

func (grp *group) transitionTo(s groupState, now time.Time) {
	grp.prevState = grp.state
	grp.state = s
	grp.stateTime = now
}

// canRebalance: PreparingRebalance may follow Empty, Stable and
// CompletingRebalance.
func (grp *group) canRebalance() bool {
	return grp.state == stateEmpty || grp.state == stateStable || grp.state == stateCompletingRebalance
}

func (grp *group) add(m *member) {
	if m.instanceID != nil {
		grp.static[*m.instanceID] = m.id
	}
	if len(grp.members) == 0 {
		grp.protocolType = m.protocolType
	}
	if grp.leader == "" {
		grp.leader = m.id
	}
	grp.members = append(grp.members, m)
	grp.byID[m.id] = m
	if m.join != nil {
		grp.awaitingJoin++
	}
	if t, ok := grp.pendingJoin[m.id]; ok {
		t.cancel()
		delete(grp.pendingJoin, m.id)
	}
}

// remove drops a member, picking the oldest remaining member as leader if
// it led. The caller answers any parked request and stops its timer.
func (grp *group) remove(id string) {
	if m, ok := grp.byID[id]; ok {
		delete(grp.byID, id)
		for i, x := range grp.members {
			if x == m {
				grp.members = append(grp.members[:i:i], grp.members[i+1:]...)
				break
			}
		}
		if m.join != nil {
			grp.awaitingJoin--
		}
		if m.instanceID != nil && grp.static[*m.instanceID] == id {
			delete(grp.static, *m.instanceID)
		}
	}
	if grp.leader == id {
		grp.leader = ""
		if len(grp.members) > 0 {
			grp.leader = grp.members[0].id
		}
	}
	if t, ok := grp.pendingJoin[id]; ok {
		t.cancel()
		delete(grp.pendingJoin, id)
	}
	delete(grp.pendingSync, id)
}

// validateMember applies Kafka's member check: a static member must hold
// its instance id's current member id (else FENCED_INSTANCE_ID), and the
// member must exist.
func (grp *group) validateMember(id string, instanceID *string) int16 {
	if instanceID != nil {
		cur, ok := grp.static[*instanceID]
		if !ok {
			return errUnknownMemberID
		}
		if cur != id {
			return errFencedInstanceID
		}
	}
	if grp.byID[id] == nil {
		return errUnknownMemberID
	}
	return 0
}

// supportsProtocols: the first member fixes the protocol type; later ones
// must share it and support a protocol every current member supports.
func (grp *group) supportsProtocols(protocolType string, ps []protocolMeta) bool {
	if grp.state == stateEmpty {
		return protocolType != "" && len(ps) > 0
	}
	if grp.protocolType != protocolType {
		return false
	}
	counts := grp.protocolCounts()
	for _, p := range ps {
		if counts[p.name] == len(grp.members) {
			return true
		}
	}
	return false
}

func (grp *group) protocolCounts() map[string]int {
	counts := make(map[string]int)
	for _, m := range grp.members {
		seen := make(map[string]bool, len(m.protocols))
		for _, p := range m.protocols {
			if !seen[p.name] {
				seen[p.name] = true
				counts[p.name]++
			}
		}
	}
	return counts
}

// selectProtocol picks, among the protocols all members support, the one
// most members list first (their vote). Kafka breaks ties arbitrarily; we
// break them by the oldest member's preference, deterministically.
func (grp *group) selectProtocol() string {
	if len(grp.members) == 0 {
		return ""
	}
	counts := grp.protocolCounts()
	votes := make(map[string]int)
	for _, m := range grp.members {
		for _, p := range m.protocols {
			if counts[p.name] == len(grp.members) {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, p := range grp.members[0].protocols {
		if counts[p.name] == len(grp.members) && votes[p.name] > bestVotes {
			best, bestVotes = p.name, votes[p.name]
		}
	}
	return best
}

func (grp *group) hasAllMembersJoined() bool {
	return len(grp.members) == grp.awaitingJoin && len(grp.pendingJoin) == 0
}

// maybeElectNewJoinedLeader keeps the leader if it rejoined, else promotes
// the first member that did; it reports whether the group has a leader
// that rejoined.
func (grp *group) maybeElectNewJoinedLeader() bool {
	if grp.leader == "" {
		return false
	}
	if l := grp.byID[grp.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range grp.members {
		if m.join != nil {
			grp.leader = m.id
			return true
		}
	}
	return false
}

// rebalanceTimeout is the longest rebalance timeout of the members.
func (grp *group) rebalanceTimeout() time.Duration {
	var ms int32
	for _, m := range grp.members {
		ms = max(ms, m.rebalanceTimeoutMs)
	}
	return time.Duration(ms) * time.Millisecond
}

// leaderMembers is what the leader gets in its JoinGroup response: every
// member with its metadata for the selected protocol.
func (grp *group) leaderMembers() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(grp.members))
	for _, m := range grp.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadataFor(grp.protocol)
		out = append(out, jm)
	}
	return out
}

func (grp *group) initNextGeneration(now time.Time) {
	grp.generation++
	if len(grp.members) > 0 {
		grp.protocol = grp.selectProtocol()
		grp.subscribed = grp.computeSubscribed()
		grp.transitionTo(stateCompletingRebalance, now)
	} else {
		grp.protocol = ""
		grp.subscribed = grp.computeSubscribed()
		grp.transitionTo(stateEmpty, now)
	}
	clear(grp.pendingSync)
}

// computeSubscribed decodes the members' ConsumerMemberMetadata when the
// group uses the "consumer" protocol type, so that OffsetDelete and offset
// expiry know which topics are in use.
func (grp *group) computeSubscribed() map[string]bool {
	if grp.protocolType != consumerProtocolType {
		return nil
	}
	topics := make(map[string]bool)
	if len(grp.members) == 0 {
		return topics
	}
	if grp.protocol == "" {
		return nil
	}
	for _, m := range grp.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(grp.protocol)); err != nil {
			return nil
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics
}

// isSubscribedToTopic is conservative: a consumer-protocol group whose
// subscriptions cannot be decoded counts as subscribed to everything.
func (grp *group) isSubscribedToTopic(topic string) bool {
	switch grp.kind {
	case kindConsumer:
		return grp.cg.isSubscribedToTopic(topic)
	case kindStreams:
		return grp.sg.subscribesTo(topic)
	}
	if grp.subscribed != nil {
		return grp.subscribed[topic]
	}
	return grp.protocolType == consumerProtocolType
}

const consumerProtocolType = "consumer"
