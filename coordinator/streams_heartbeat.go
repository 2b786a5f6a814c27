package coordinator

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Streams group configs (GROUP resource), as Kafka 4.2 names them.
const (
	StreamsConfigSessionTimeout    = "streams.session.timeout.ms"
	StreamsConfigHeartbeatInterval = "streams.heartbeat.interval.ms"
	StreamsConfigNumStandbys       = "streams.num.standby.replicas"
	StreamsConfigInitialDelay      = "streams.initial.rebalance.delay.ms"
)

// streamsConfigNames are the streams.* group configs.
var streamsConfigNames = []string{StreamsConfigSessionTimeout, StreamsConfigHeartbeatInterval, StreamsConfigNumStandbys, StreamsConfigInitialDelay}

// streamsGroupConfig is one streams group's effective settings.
type streamsGroupConfig struct {
	sessionTimeout    time.Duration
	heartbeatInterval time.Duration
	numStandbys       int
	initialDelay      time.Duration
}

// streamsAcceptableRecoveryLag and streamsTaskOffsetInterval are Kafka's
// defaults of group.streams.acceptable.recovery.lag and
// group.streams.task.offset.interval.ms; Skiff assigns no warm-up tasks
// and keeps no task offsets, so they are only reported.
const (
	streamsAcceptableRecoveryLag = 10000
	streamsTaskOffsetInterval    = 60000
)

// streamsResult is a StreamsGroupHeartbeat answer.
type streamsResult struct {
	code          int16
	message       *string
	memberID      string
	epoch         int32
	interval      int32
	status        []kmsg.StreamsGroupHeartbeatResponseStatus
	assignment    *streamsAssignment // nil: unchanged
	endpointEpoch int32
	endpoints     []kmsg.StreamsGroupHeartbeatResponsePartitionsByUserEndpoint
}

func streamsError(code int16, format string, args ...any) streamsResult {
	r := streamsResult{code: code}
	if format != "" {
		s := fmt.Sprintf(format, args...)
		r.message = &s
	}
	return r
}

// StreamsGroupHeartbeat handles StreamsGroupHeartbeat v0-v1 (KIP-1071):
// joining with the topology (epoch 0), heartbeating with the member epoch,
// and leaving (epoch -1). Internal topics the topology needs are created
// before the answer (which still reports them missing, as Kafka's does,
// since Kafka creates them after answering); the answer waits until the
// group changes are durable.
func (g *Groups) StreamsGroupHeartbeat(ctx context.Context, req *kmsg.StreamsGroupHeartbeatRequest) *kmsg.StreamsGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.StreamsGroupHeartbeatResponse)
	ch := make(chan streamsResult, 1)
	g.ensureLogs()
	g.lock()
	toCreate := g.streamsHeartbeatLocked(req, clientInfoFrom(ctx), ch)
	g.unlock()
	if len(toCreate) > 0 && g.createStreamsTopics != nil {
		g.createStreamsTopics(toCreate)
	}
	r, code := await(ctx, g.closing, ch)
	if code != 0 {
		r = streamsResult{code: code}
	}
	resp.ErrorCode, resp.ErrorMessage = r.code, r.message
	if r.code != 0 {
		return resp
	}
	resp.MemberID = r.memberID
	resp.MemberEpoch = r.epoch
	resp.HeartbeatIntervalMillis = r.interval
	resp.AcceptableRecoveryLagLegacy = streamsAcceptableRecoveryLag
	resp.AcceptableRecoveryLag = streamsAcceptableRecoveryLag
	resp.TaskOffsetIntervalMillis = streamsTaskOffsetInterval
	resp.Status = r.status
	if r.assignment != nil {
		resp.ActiveTasks = r.assignment.active.toKmsg()
		resp.StandbyTasks = r.assignment.standby.toKmsg()
		resp.WarmupTasks = r.assignment.warmup.toKmsg()
	}
	resp.EndpointInformationEpoch = r.endpointEpoch
	resp.PartitionsByUserEndpoint = r.endpoints
	return resp
}

// validateStreamsHeartbeat is Kafka's GroupCoordinatorService check of the
// request, including the features Kafka 4.2 does not support yet.
func validateStreamsHeartbeat(req *kmsg.StreamsGroupHeartbeatRequest) streamsResult {
	invalid := func(msg string) streamsResult { return streamsError(kerr.InvalidRequest.Code, "%s", msg) }
	switch {
	case req.InstanceID != nil:
		return invalid("Static membership is not yet supported.")
	case req.TaskOffsets != nil:
		return invalid("TaskOffsets are not supported yet.")
	case req.TaskEndOffsets != nil:
		return invalid("TaskEndOffsets are not supported yet.")
	case len(req.WarmupTasks) > 0:
		return invalid("WarmupTasks are not supported yet.")
	}
	if req.Topology != nil {
		for _, st := range req.Topology.Subtopologies {
			if len(st.SourceTopicRegex) > 0 {
				return invalid("Regular expressions for source topics are not supported yet.")
			}
		}
	}
	switch {
	case req.MemberID == "":
		return invalid("MemberId can't be empty.")
	case req.Group == "":
		return invalid("GroupId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return invalid("RackId can't be empty.")
	}
	switch {
	case req.MemberEpoch == epochJoin:
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return invalid("RebalanceTimeoutMs must be provided in first request.")
		case len(req.ActiveTasks) > 0:
			return invalid("ActiveTasks must be empty when (re-)joining.")
		case len(req.StandbyTasks) > 0:
			return invalid("StandbyTasks must be empty when (re-)joining.")
		case req.Topology == nil:
			return invalid("Topology must be non-null when (re-)joining.")
		}
		if r := validateTopology(req.Topology); r.code != 0 {
			return r
		}
	case req.MemberEpoch == epochStaticLeave:
		return invalid("InstanceId can't be null.")
	case req.MemberEpoch < epochStaticLeave:
		return invalid(fmt.Sprintf("MemberEpoch is %d, but must be greater than or equal to -2.", req.MemberEpoch))
	}
	if req.ActiveTasks != nil || req.StandbyTasks != nil || req.WarmupTasks != nil {
		if req.ActiveTasks == nil || req.StandbyTasks == nil || req.WarmupTasks == nil {
			return invalid("If one task-type is non-null, all must be non-null.")
		}
	}
	if req.MemberEpoch != epochJoin && req.Topology != nil {
		return invalid("Topology can only be provided when (re-)joining.")
	}
	return streamsResult{}
}

// validateTopology refuses what Kafka's throwIfInvalidTopology refuses:
// repartition sink topics the topology does not read, and copartition
// indexes out of range.
func validateTopology(t *kmsg.StreamsGroupHeartbeatRequestTopology) streamsResult {
	sources := map[string]bool{}
	for _, st := range t.Subtopologies {
		for _, ti := range st.RepartitionSourceTopics {
			sources[ti.Topic] = true
		}
	}
	for _, st := range t.Subtopologies {
		for _, sink := range st.RepartitionSinkTopics {
			if !sources[sink] {
				return streamsError(kerr.StreamsInvalidTopology.Code, "Repartition sink topic %s is not a repartition source topic.", sink)
			}
		}
		for _, cg := range st.CopartitionGroups {
			for _, i := range cg.SourceTopics {
				if int(i) < 0 || int(i) >= len(st.SourceTopics) {
					return streamsError(kerr.StreamsInvalidTopology.Code, "Copartition group index %d out of range in subtopology %s.", i, st.SubtopologyID)
				}
			}
			for _, i := range cg.RepartitionSourceTopics {
				if int(i) < 0 || int(i) >= len(st.RepartitionSourceTopics) {
					return streamsError(kerr.StreamsInvalidTopology.Code, "Copartition group index %d out of range in subtopology %s.", i, st.SubtopologyID)
				}
			}
		}
	}
	return streamsResult{}
}

// streamsConfigFor returns a group's effective streams settings.
func (g *Groups) streamsConfigFor(groupID string) streamsGroupConfig {
	c := streamsGroupConfig{
		sessionTimeout:    g.cfg.StreamsSessionTimeout,
		heartbeatInterval: g.cfg.StreamsHeartbeatInterval,
		numStandbys:       g.cfg.StreamsNumStandbyReplicas,
		initialDelay:      g.cfg.StreamsInitialRebalanceDelay,
	}
	if c.sessionTimeout <= 0 {
		c.sessionTimeout = 45 * time.Second
	}
	if c.heartbeatInterval <= 0 {
		c.heartbeatInterval = 5 * time.Second
	}
	over := g.mu.streamsConfigs[groupID]
	if v, err := strconv.Atoi(over[StreamsConfigSessionTimeout]); err == nil && v > 0 {
		c.sessionTimeout = time.Duration(v) * time.Millisecond
	}
	if v, err := strconv.Atoi(over[StreamsConfigHeartbeatInterval]); err == nil && v > 0 {
		c.heartbeatInterval = time.Duration(v) * time.Millisecond
	}
	if v, err := strconv.Atoi(over[StreamsConfigNumStandbys]); err == nil && v >= 0 {
		c.numStandbys = v
	}
	if v, err := strconv.Atoi(over[StreamsConfigInitialDelay]); err == nil && v >= 0 {
		c.initialDelay = time.Duration(v) * time.Millisecond
	}
	return c
}

// SetStreamsGroupConfigs installs a group's streams.* group configs (the
// server persists them in the cluster metadata first). The next heartbeat
// uses them; a changed standby count triggers a new assignment.
func (g *Groups) SetStreamsGroupConfigs(groupID string, cfg map[string]string) {
	g.lock()
	defer g.unlock()
	if g.mu.streamsConfigs == nil {
		g.mu.streamsConfigs = make(map[string]map[string]string)
	}
	only := map[string]string{}
	for _, k := range streamsConfigNames {
		if v, ok := cfg[k]; ok {
			only[k] = v
		}
	}
	if len(only) == 0 {
		delete(g.mu.streamsConfigs, groupID)
	} else {
		g.mu.streamsConfigs[groupID] = only
	}
	if grp := g.mu.groups[groupID]; grp != nil && grp.kind == kindStreams {
		grp.sg.cfg = g.streamsConfigFor(groupID)
	}
}

func (g *Groups) streamsHeartbeatLocked(req *kmsg.StreamsGroupHeartbeatRequest, ci ClientInfo, ch chan streamsResult) []StreamsInternalTopic {
	if g.mu.closed {
		ch <- streamsError(errCoordinatorNotAvailable, "")
		return nil
	}
	if r := validateStreamsHeartbeat(req); r.code != 0 {
		ch <- r
		return nil
	}
	join := req.MemberEpoch == epochJoin
	grp := g.mu.groups[req.Group]
	if req.MemberEpoch == epochLeave {
		g.streamsLeaveLocked(grp, req, ch)
		return nil
	}
	var recs []kv
	created := false
	switch {
	case grp != nil && grp.state == stateDead:
		ch <- streamsError(errCoordinatorNotAvailable, "")
		return nil
	case grp != nil && grp.kind != kindStreams && !(join && grp.isEmpty()):
		ch <- streamsError(errGroupIDNotFound, "Group %s is not a streams group.", req.Group)
		return nil
	case grp == nil && !join:
		ch <- streamsError(errGroupIDNotFound, "Streams group %s not found.", req.Group)
		return nil
	case grp == nil || grp.kind != kindStreams:
		if grp != nil { // an empty group of another kind (maybe only offsets) becomes a streams group
			recs = append(recs, g.groupTombstonesLocked(grp)...)
		}
		grp = &group{id: req.Group, kind: kindStreams, sg: newStreamsGroup(g.streamsConfigFor(req.Group))}
		created = true
	}
	sg := grp.sg
	if len(sg.members) >= g.cfg.ConsumerMaxGroupSize && sg.members[req.MemberID] == nil {
		ch <- streamsError(kerr.GroupMaxSizeReached.Code, "The streams group has reached its maximum capacity of %d members.", g.cfg.ConsumerMaxGroupSize)
		return nil
	}

	m := sg.members[req.MemberID]
	if m == nil {
		if !join {
			ch <- streamsError(errUnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, req.Group)
			return nil
		}
		m = &smember{id: req.MemberID, rebalanceMs: -1, assigned: newStreamsAssignment(), pending: newStreamsAssignment()}
	} else if code := checkStreamsMemberEpoch(m, req); code != 0 {
		ch <- streamsError(code, "")
		return nil
	}

	// 1. The member's metadata.
	updated := m.copyAs(m.id)
	if req.RackID != nil {
		updated.rackID = req.RackID
	}
	if req.RebalanceTimeoutMillis != -1 {
		updated.rebalanceMs = req.RebalanceTimeoutMillis
	}
	if req.Topology != nil {
		updated.topologyEpoch = req.Topology.Epoch
	}
	if req.ProcessID != nil {
		updated.processID = *req.ProcessID
	}
	if req.UserEndpoint != nil {
		updated.endpoint = &endpoint{host: req.UserEndpoint.Host, port: req.UserEndpoint.Port}
	}
	if req.ClientTags != nil {
		updated.clientTags = nil
		for _, t := range req.ClientTags {
			updated.clientTags = append(updated.clientTags, [2]string{t.Key, t.Value})
		}
		slices.SortFunc(updated.clientTags, func(a, b [2]string) int { return compareStrings(a[0], b[0]) })
	}
	updated.clientID, updated.clientHost = ci.ClientID, ci.Host
	bump := false
	if sg.members[m.id] == nil || !sameStreamsMetadata(m, updated) {
		recs = append(recs, streamsMemberMetadataRecord(grp.id, updated))
		bump = true
	}

	// 2. The group's topology: the first member's; a different one is
	// refused, as Kafka 4.2 does not support topology updates.
	if req.Topology != nil {
		switch {
		case sg.topology == nil:
			t := *req.Topology
			sg.topology = &t
			recs = append(recs, streamsTopologyRecord(grp.id, sg.topology))
			sg.configured = nil
		case sg.topology.Epoch > req.Topology.Epoch:
		case !sameTopology(sg.topology, req.Topology):
			ch <- streamsError(kerr.InvalidRequest.Code, "Topology updates are not supported yet.")
			return nil
		}
	}
	if sg.topology == nil {
		ch <- streamsError(kerr.InvalidRequest.Code, "Topology must be non-null when (re-)joining.")
		return nil
	}
	if created {
		g.replaceGroupLocked(grp)
	}
	wasEmpty := len(sg.members) == 0
	sg.putMember(updated)
	var status []kmsg.StreamsGroupHeartbeatResponseStatus
	if updated.topologyEpoch < sg.topology.Epoch {
		status = append(status, statusOf(statusStaleTopology, "The member's topology epoch %d is behind the group's topology epoch %d.", updated.topologyEpoch, sg.topology.Epoch))
	}

	// 3. Resolve the topology against the topics.
	hash := g.streamsMetadataHashLocked(sg.topology)
	if hash != sg.metadataHash || sg.configured == nil {
		if hash != sg.metadataHash {
			bump = true
		}
		sg.metadataHash = hash
		wasReady := sg.configured != nil && sg.configured.ready()
		sg.configured = g.configureTopologyLocked(sg.topology)
		if sg.configured.ready() != wasReady {
			bump = true
		}
	}
	if sg.cfg.numStandbys != sg.lastStandbys {
		bump = true
	}
	if bump {
		// The bump covers the current assignment configs too (Kafka keeps
		// them in the metadata record as LastAssignmentConfigs).
		sg.lastStandbys = sg.cfg.numStandbys
		if sg.epoch == 0 {
			sg.epoch = 2 // as Kafka: epoch 1 is never a streams group's
		} else {
			sg.epoch++
		}
		recs = append(recs, streamsMetadataRecord(grp.id, sg))
	}

	// 4. A newer group epoch needs a new target assignment.
	// The first member of an empty group waits for the others for
	// streams.initial.rebalance.delay.ms (Kafka's default 3 s), with no
	// tasks, so that instances starting together are balanced at once.
	if wasEmpty && sg.cfg.initialDelay > 0 && !sg.delaying {
		sg.delaying = true
		g.setGroupTimerLocked(grp, &sg.delayTimer, sg.cfg.initialDelay, func() {
			sg.delaying = false
			if sg.epoch > sg.assignmentEpoch {
				g.enqueueLocked(grp.id, g.updateStreamsTargetLocked(grp), func(int64, error) {})
			}
		})
	}
	targetEpoch, target := sg.assignmentEpoch, sg.target[updated.id]
	switch {
	case sg.epoch > sg.assignmentEpoch && sg.delaying:
		targetEpoch, target = max(1, sg.assignmentEpoch), newStreamsAssignment()
		status = append(status, statusOf(statusAssignmentDelayed, "Assignment delayed due to the configured initial rebalance delay."))
	case sg.epoch > sg.assignmentEpoch:
		recs = append(recs, g.updateStreamsTargetLocked(grp)...)
		targetEpoch, target = sg.assignmentEpoch, sg.target[updated.id]
	}

	// 5. Move the member towards its target.
	var owned *streamsAssignment
	if req.ActiveTasks != nil {
		o := streamsAssignment{active: tasksFromKmsg(req.ActiveTasks), standby: tasksFromKmsg(req.StandbyTasks), warmup: tasksFromKmsg(req.WarmupTasks)}
		owned = &o
	}
	next := reconcileStreams(sg, updated, owned, targetEpoch, target)
	if next != updated || created || sg.members[m.id] != m {
		recs = append(recs, streamsCurrentRecord(grp.id, next))
	}
	sg.putMember(next)
	if next.state == memberUnrevokedPartitions {
		g.scheduleStreamsRebalanceTimeoutLocked(grp, next)
	} else {
		sg.timersFor(next.id).rebalance.cancel()
	}
	g.scheduleStreamsSessionTimeoutLocked(grp, next)

	r := streamsResult{memberID: next.id, epoch: next.epoch, interval: int32(sg.cfg.heartbeatInterval.Milliseconds())}
	if join || !next.assigned.equal(m.assigned) {
		a := next.assigned.clone()
		r.assignment = &a
		if next.endpoint != nil {
			sg.endpointEpoch++
		}
	}
	if req.EndpointInformationEpoch != sg.endpointEpoch {
		r.endpoints = g.streamsEndpointsLocked(sg)
	}
	r.endpointEpoch = sg.endpointEpoch
	var toCreate []StreamsInternalTopic
	if sg.configured != nil {
		status = append(status, sg.configured.status...)
		toCreate = sg.configured.toCreate
	}
	if req.ShutdownApplication {
		sg.shutdownRequestedBy = next.id
	}
	if sg.shutdownRequestedBy != "" {
		status = append(status, statusOf(statusShutdownApplication, "Streams group member %s encountered a fatal error and requested a shutdown for the entire application.", sg.shutdownRequestedBy))
	}
	r.status = status
	if r.status == nil {
		r.status = []kmsg.StreamsGroupHeartbeatResponseStatus{}
	}
	g.enqueueLocked(grp.id, recs, func(_ int64, err error) {
		if err != nil {
			ch <- streamsError(appendErrorCode(err), "")
			return
		}
		ch <- r
	})
	return toCreate
}

// checkStreamsMemberEpoch fences a member whose epoch is ahead of ours, or
// behind it unless it is the previous epoch and the member owns no more
// active tasks than it was given (our answer may have been lost).
func checkStreamsMemberEpoch(m *smember, req *kmsg.StreamsGroupHeartbeatRequest) int16 {
	switch {
	case req.MemberEpoch > m.epoch:
		return kerr.FencedMemberEpoch.Code
	case req.MemberEpoch < m.epoch:
		if req.MemberEpoch != m.prevEpoch || req.ActiveTasks == nil {
			return kerr.FencedMemberEpoch.Code
		}
		owned := tasksFromKmsg(req.ActiveTasks)
		if owned.minus(m.assigned.active).count() > 0 {
			return kerr.FencedMemberEpoch.Code
		}
	}
	return 0
}

func sameTopology(a, b *kmsg.StreamsGroupHeartbeatRequestTopology) bool {
	ka, kb := streamsTopologyRecord("", a), streamsTopologyRecord("", b)
	return string(ka.value) == string(kb.value)
}

// updateStreamsTargetLocked computes the target assignment of the group
// epoch: no tasks while the topology is not ready.
func (g *Groups) updateStreamsTargetLocked(grp *group) []kv {
	sg := grp.sg
	counts := map[string]int32{}
	if sg.configured != nil && sg.configured.ready() {
		counts = sg.configured.taskCounts
	}
	stateful := map[string]bool{}
	if sg.configured != nil {
		for sub, cls := range sg.configured.changelogs {
			stateful[sub] = len(cls) > 0
		}
	}
	target := assignStreamsTasks(sg, counts, stateful, sg.cfg.numStandbys)
	var recs []kv
	for _, id := range sortedKeys(target) {
		if old, ok := sg.target[id]; !ok || !old.equal(target[id]) {
			recs = append(recs, streamsTargetMemberRecord(grp.id, id, target[id]))
		}
	}
	sg.target = target
	sg.assignmentEpoch = sg.epoch
	sg.lastStandbys = sg.cfg.numStandbys
	return append(recs, streamsTargetEpochRecord(grp.id, sg.assignmentEpoch))
}

// reconcileStreams moves a member one safe step towards its target, as
// Kafka's streams CurrentAssignmentBuilder: tasks leaving the member are
// revoked first (the member keeps its epoch until it reports them gone);
// then it gets the target epoch and its new tasks, except active tasks
// that another member has not released yet.
func reconcileStreams(sg *streamsGroup, m *smember, owned *streamsAssignment, epoch int32, target streamsAssignment) *smember {
	if target.active == nil {
		target = newStreamsAssignment()
	}
	switch {
	case m.state == memberUnrevokedPartitions:
		if owned == nil || owned.active.intersect(m.pending.active).count() > 0 ||
			owned.standby.intersect(m.pending.standby).count() > 0 || owned.warmup.intersect(m.pending.warmup).count() > 0 {
			return m // still revoking
		}
	case m.state == memberUnreleasedPartitions:
	case m.epoch == epoch:
		return m
	}
	next := m.copyAs(m.id)
	keep := streamsAssignment{
		active:  m.assigned.active.intersect(target.active),
		standby: m.assigned.standby.intersect(target.standby),
		warmup:  m.assigned.warmup.intersect(target.warmup),
	}
	revoke := streamsAssignment{
		active:  m.assigned.active.minus(target.active),
		standby: m.assigned.standby.minus(target.standby),
		warmup:  m.assigned.warmup.minus(target.warmup),
	}
	if !revoke.empty() {
		next.assigned, next.pending = keep, revoke
		next.state = memberUnrevokedPartitions
		return next
	}
	active := keep.active.clone()
	unreleased := false
	for sub, ps := range target.active.minus(keep.active) {
		for _, p := range ps {
			if sg.activeOwnedByOther(m.id, sub, p) {
				unreleased = true
				continue
			}
			active.add(sub, p)
		}
	}
	next.assigned = streamsAssignment{active: active, standby: target.standby.clone(), warmup: target.warmup.clone()}
	next.pending = newStreamsAssignment()
	if next.epoch != epoch {
		next.prevEpoch, next.epoch = next.epoch, epoch
	}
	next.state = memberStable
	if unreleased {
		next.state = memberUnreleasedPartitions
	}
	if next.state == m.state && next.epoch == m.epoch && next.assigned.equal(m.assigned) && m.pending.empty() {
		return m
	}
	return next
}

// streamsEndpointsLocked maps each member's IQ endpoint to the partitions
// its active and standby tasks read (task p of a subtopology reads
// partition p of its source topics) and the changelogs they write.
func (g *Groups) streamsEndpointsLocked(sg *streamsGroup) []kmsg.StreamsGroupHeartbeatResponsePartitionsByUserEndpoint {
	out := []kmsg.StreamsGroupHeartbeatResponsePartitionsByUserEndpoint{}
	if sg.configured == nil || !sg.configured.ready() {
		return out
	}
	topicParts := func(t tasks) map[string][]int32 {
		by := map[string][]int32{}
		for sub, ps := range t {
			topics := slices.Clone(sg.configured.sourceTopics[sub])
			topics = append(topics, sg.configured.changelogs[sub]...)
			for _, topic := range topics {
				n, _ := g.topics.PartitionCount(topic)
				for _, p := range ps {
					if p < n {
						by[topic] = append(by[topic], p)
					}
				}
			}
		}
		for topic := range by {
			slices.Sort(by[topic])
			by[topic] = slices.Compact(by[topic])
		}
		return by
	}
	for _, id := range sortedMemberIDs(sg.members) {
		m := sg.members[id]
		if m.endpoint == nil {
			continue
		}
		e := kmsg.NewStreamsGroupHeartbeatResponsePartitionsByUserEndpoint()
		e.UserEndpoint.Host, e.UserEndpoint.Port = m.endpoint.host, m.endpoint.port
		e.ActivePartitions = []kmsg.StreamsGroupHeartbeatResponsePartitionsByUserEndpointActivePartition{}
		e.StandbyPartitions = []kmsg.StreamsGroupHeartbeatResponsePartitionsByUserEndpointStandbyPartition{}
		act := topicParts(m.assigned.active)
		for _, topic := range sortedKeys(act) {
			ap := kmsg.NewStreamsGroupHeartbeatResponsePartitionsByUserEndpointActivePartition()
			ap.Topic, ap.Partitions = topic, act[topic]
			e.ActivePartitions = append(e.ActivePartitions, ap)
		}
		stb := topicParts(m.assigned.standby)
		for _, topic := range sortedKeys(stb) {
			sp := kmsg.NewStreamsGroupHeartbeatResponsePartitionsByUserEndpointStandbyPartition()
			sp.Topic, sp.Partitions = topic, stb[topic]
			e.StandbyPartitions = append(e.StandbyPartitions, sp)
		}
		out = append(out, e)
	}
	return out
}

func (g *Groups) streamsLeaveLocked(grp *group, req *kmsg.StreamsGroupHeartbeatRequest, ch chan streamsResult) {
	if grp == nil || grp.kind != kindStreams || grp.state == stateDead {
		ch <- streamsError(errGroupIDNotFound, "Streams group %s not found.", req.Group)
		return
	}
	m := grp.sg.members[req.MemberID]
	if m == nil {
		ch <- streamsError(errUnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, req.Group)
		return
	}
	g.fenceStreamsMemberLocked(grp, m, func(err error) {
		if err != nil {
			ch <- streamsError(appendErrorCode(err), "")
			return
		}
		ch <- streamsResult{memberID: req.MemberID, epoch: epochLeave, status: []kmsg.StreamsGroupHeartbeatResponseStatus{}}
	})
}

// fenceStreamsMemberLocked removes a member (leave, session or rebalance
// timeout) and bumps the group epoch so the others get its tasks.
func (g *Groups) fenceStreamsMemberLocked(grp *group, m *smember, done func(error)) {
	sg := grp.sg
	recs := streamsMemberTombstones(grp.id, m.id)
	sg.removeMember(m.id)
	if sg.shutdownRequestedBy == m.id {
		sg.shutdownRequestedBy = ""
	}
	sg.epoch++
	sg.endpointEpoch++
	recs = append(recs, streamsMetadataRecord(grp.id, sg))
	g.enqueueLocked(grp.id, recs, func(_ int64, err error) {
		if err != nil {
			g.logger.Warn().Err(err).Str("group", grp.id).Msg("coordinator: persisting streams group change failed")
		}
		if done != nil {
			done(err)
		}
	})
}

func (g *Groups) scheduleStreamsSessionTimeoutLocked(grp *group, m *smember) {
	id := m.id
	g.setGroupTimerLocked(grp, &grp.sg.timersFor(id).session, grp.sg.cfg.sessionTimeout, func() {
		if cur := grp.sg.members[id]; cur != nil {
			g.logger.Info().Str("group", grp.id).Str("member", id).Msg("coordinator: streams group member session expired")
			g.fenceStreamsMemberLocked(grp, cur, nil)
		}
	})
}

func (g *Groups) scheduleStreamsRebalanceTimeoutLocked(grp *group, m *smember) {
	id, epoch := m.id, m.epoch
	t := &grp.sg.timersFor(id).rebalance
	if t.stop != nil {
		return // already running for this revocation
	}
	g.setGroupTimerLocked(grp, t, msDuration(m.rebalanceMs), func() {
		if cur := grp.sg.members[id]; cur != nil && cur.epoch == epoch && cur.state == memberUnrevokedPartitions {
			g.logger.Info().Str("group", grp.id).Str("member", id).Msg("coordinator: streams group member failed to revoke tasks in time")
			g.fenceStreamsMemberLocked(grp, cur, nil)
		}
	})
}

// streamsOnLoadedLocked rebuilds what the records do not hold after a
// replay, and restarts every member's session.
func (g *Groups) streamsOnLoadedLocked(grp *group) {
	sg := grp.sg
	sg.cfg = g.streamsConfigFor(grp.id)
	sg.lastStandbys = sg.cfg.numStandbys
	if sg.topology != nil {
		// The resolved topology is derived, not stored: resolve it again
		// (internal topics missing now are created at the next heartbeat).
		sg.configured = g.configureTopologyLocked(sg.topology)
	}
	for _, id := range sortedMemberIDs(sg.members) {
		m := sg.members[id]
		sg.putMember(m)
		g.scheduleStreamsSessionTimeoutLocked(grp, m)
	}
}
