package coordinator

import (
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Streams groups (KIP-1071): Kafka Streams applications with
// group.protocol=streams join with StreamsGroupHeartbeat, sending their
// topology; the coordinator validates it against the cluster's topics,
// creates the missing internal (repartition and changelog) topics, assigns
// tasks (subtopology, partition) with a sticky assignor, and moves each
// member to its target with member epochs, as KIP-848 moves partitions: a
// task is revoked from its previous owner before its new owner gets it.

// tasks is a set of tasks: partitions (sorted) by subtopology id.
type tasks map[string][]int32

func (t tasks) clone() tasks {
	out := make(tasks, len(t))
	for s, ps := range t {
		out[s] = slices.Clone(ps)
	}
	return out
}

func (t tasks) has(s string, p int32) bool {
	_, ok := slices.BinarySearch(t[s], p)
	return ok
}

func (t tasks) add(s string, p int32) {
	ps := t[s]
	if i, ok := slices.BinarySearch(ps, p); !ok {
		t[s] = slices.Insert(ps, i, p)
	}
}

func (t tasks) count() int {
	n := 0
	for _, ps := range t {
		n += len(ps)
	}
	return n
}

func (t tasks) equal(o tasks) bool {
	if t.count() != o.count() {
		return false
	}
	for s, ps := range t {
		if len(ps) > 0 && !slices.Equal(ps, o[s]) {
			return false
		}
	}
	return true
}

// minus is t without the tasks of o.
func (t tasks) minus(o tasks) tasks {
	out := tasks{}
	for s, ps := range t {
		for _, p := range ps {
			if !o.has(s, p) {
				out.add(s, p)
			}
		}
	}
	return out
}

// intersect is the tasks of t also in o.
func (t tasks) intersect(o tasks) tasks {
	out := tasks{}
	for s, ps := range t {
		for _, p := range ps {
			if o.has(s, p) {
				out.add(s, p)
			}
		}
	}
	return out
}

func (t tasks) union(o tasks) tasks {
	out := t.clone()
	for s, ps := range o {
		for _, p := range ps {
			out.add(s, p)
		}
	}
	return out
}

func tasksFromKmsg(ids []kmsg.TaskIDs) tasks {
	out := tasks{}
	for _, t := range ids {
		for _, p := range t.Partitions {
			out.add(t.SubtopologyID, p)
		}
	}
	return out
}

// toKmsg lists the tasks by subtopology id, never nil (a non-null array
// tells the client its assignment).
func (t tasks) toKmsg() []kmsg.TaskIDs {
	out := []kmsg.TaskIDs{}
	for _, s := range sortedKeys(t) {
		if len(t[s]) == 0 {
			continue
		}
		ti := kmsg.NewTaskIDs()
		ti.SubtopologyID, ti.Partitions = s, slices.Clone(t[s])
		out = append(out, ti)
	}
	return out
}

// streamsAssignment is a member's active, standby and warm-up tasks.
type streamsAssignment struct {
	active, standby, warmup tasks
}

func newStreamsAssignment() streamsAssignment {
	return streamsAssignment{active: tasks{}, standby: tasks{}, warmup: tasks{}}
}

func (a streamsAssignment) clone() streamsAssignment {
	return streamsAssignment{active: a.active.clone(), standby: a.standby.clone(), warmup: a.warmup.clone()}
}

func (a streamsAssignment) equal(b streamsAssignment) bool {
	return a.active.equal(b.active) && a.standby.equal(b.standby) && a.warmup.equal(b.warmup)
}

func (a streamsAssignment) empty() bool {
	return a.active.count()+a.standby.count()+a.warmup.count() == 0
}

func (a streamsAssignment) toKmsg() kmsg.StreamsAssignment {
	out := kmsg.NewStreamsAssignment()
	out.ActiveTasks, out.StandbyTasks, out.WarmupTasks = a.active.toKmsg(), a.standby.toKmsg(), a.warmup.toKmsg()
	return out
}

// endpoint is a member's Interactive Queries endpoint (application.server).
type endpoint struct {
	host string
	port uint16
}

// smember is a streams group member. Members are replaced, never changed
// in place, once installed in the group.
type smember struct {
	id            string
	instanceID    *string
	rackID        *string
	clientID      string
	clientHost    string
	rebalanceMs   int32
	topologyEpoch int32
	processID     string
	endpoint      *endpoint
	clientTags    [][2]string // sorted by key

	epoch, prevEpoch int32
	state            memberState
	assigned         streamsAssignment // tasks the member may run
	pending          streamsAssignment // tasks it must give up first
}

func (m *smember) copyAs(id string) *smember {
	c := *m
	c.id = id
	c.clientTags = slices.Clone(m.clientTags)
	c.assigned = m.assigned.clone()
	c.pending = m.pending.clone()
	return &c
}

func sameStreamsMetadata(a, b *smember) bool {
	return eqStrPtr(a.instanceID, b.instanceID) && eqStrPtr(a.rackID, b.rackID) && a.clientID == b.clientID &&
		a.clientHost == b.clientHost && a.rebalanceMs == b.rebalanceMs && a.topologyEpoch == b.topologyEpoch &&
		a.processID == b.processID && (a.endpoint == nil) == (b.endpoint == nil) &&
		(a.endpoint == nil || *a.endpoint == *b.endpoint) && slices.Equal(a.clientTags, b.clientTags)
}

// streamsGroup is the KIP-1071 part of a group. Guarded by Groups.mu.
type streamsGroup struct {
	epoch           int32 // group epoch: membership, topology or metadata changes
	assignmentEpoch int32 // epoch of the target assignment
	// topology is the application's topology as its first member sent
	// it; nil until then.
	topology *kmsg.StreamsGroupHeartbeatRequestTopology
	// metadataHash summarizes the partition counts of every topic the
	// topology names; a change bumps the group epoch.
	metadataHash int64
	// configured is the topology resolved against the topics (task
	// counts, internal topics), derived from topology and the metadata.
	configured *configuredTopology
	members    map[string]*smember
	static     map[string]string // instance id -> member id
	target     map[string]streamsAssignment
	// endpointEpoch grows whenever the tasks behind the members' IQ
	// endpoints may have changed; members with an older epoch get the
	// endpoint map again.
	endpointEpoch int32
	timers        map[string]*memberTimers
	// sessionTimeout, heartbeatInterval and numStandbys are the group's
	// streams.* group configs, or the broker's defaults.
	cfg streamsGroupConfig
	// lastStandbys is the standby count of the target assignment; a
	// changed streams.num.standby.replicas triggers a new one.
	lastStandbys int
	// shutdownRequestedBy is the member that asked the whole application
	// to shut down (ShutdownApplication); every member is told so.
	shutdownRequestedBy string
	// delaying is set while the initial rebalance delay of a group that
	// was empty runs (delayTimer); the target assignment waits for it.
	delaying   bool
	delayTimer timerSlot
}

func newStreamsGroup(cfg streamsGroupConfig) *streamsGroup {
	return &streamsGroup{
		members: make(map[string]*smember),
		static:  make(map[string]string),
		target:  make(map[string]streamsAssignment),
		timers:  make(map[string]*memberTimers),
		cfg:     cfg,
	}
}

func (sg *streamsGroup) timersFor(id string) *memberTimers {
	t := sg.timers[id]
	if t == nil {
		t = &memberTimers{}
		sg.timers[id] = t
	}
	return t
}

func (sg *streamsGroup) isEmpty() bool { return len(sg.members) == 0 }

func (sg *streamsGroup) stopTimers() {
	sg.delayTimer.cancel()
	for _, t := range sg.timers {
		t.session.cancel()
		t.rebalance.cancel()
	}
}

// stateName is Kafka's StreamsGroupState.
func (sg *streamsGroup) stateName() string {
	switch {
	case len(sg.members) == 0:
		return "Empty"
	case sg.configured == nil || !sg.configured.ready():
		return "NotReady"
	case sg.epoch > sg.assignmentEpoch:
		return "Assigning"
	}
	for _, m := range sg.members {
		if m.state != memberStable || m.epoch != sg.assignmentEpoch {
			return "Reconciling"
		}
	}
	return "Stable"
}

func (sg *streamsGroup) putMember(m *smember) {
	sg.members[m.id] = m
	if m.instanceID != nil {
		sg.static[*m.instanceID] = m.id
	}
}

func (sg *streamsGroup) removeMember(id string) {
	m := sg.members[id]
	if m == nil {
		return
	}
	if t := sg.timers[id]; t != nil {
		t.session.cancel()
		t.rebalance.cancel()
		delete(sg.timers, id)
	}
	delete(sg.members, id)
	delete(sg.target, id)
	if m.instanceID != nil && sg.static[*m.instanceID] == id {
		delete(sg.static, *m.instanceID)
	}
}

// activeOwnedByOther reports whether another member still runs (or has
// yet to revoke) an active task.
func (sg *streamsGroup) activeOwnedByOther(self, sub string, p int32) bool {
	for id, m := range sg.members {
		if id != self && (m.assigned.active.has(sub, p) || m.pending.active.has(sub, p)) {
			return true
		}
	}
	return false
}

// subscribesTo reports whether the topology reads or writes a topic (its
// committed offsets then stay while the topic exists).
func (sg *streamsGroup) subscribesTo(topic string) bool {
	if sg.topology == nil || len(sg.members) == 0 {
		return false
	}
	for _, st := range sg.topology.Subtopologies {
		if slices.Contains(st.SourceTopics, topic) {
			return true
		}
		for _, r := range st.RepartitionSourceTopics {
			if r.Topic == topic {
				return true
			}
		}
	}
	if sg.configured != nil {
		return slices.Contains(sg.configured.regexTopics, topic)
	}
	return false
}

func sortedMemberIDs(m map[string]*smember) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
