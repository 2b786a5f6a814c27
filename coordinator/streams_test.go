package coordinator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// streamsTopology is one subtopology "0" reading in, with a changelog.
func streamsTopology() *kmsg.StreamsGroupHeartbeatRequestTopology {
	t := kmsg.NewStreamsGroupHeartbeatRequestTopology()
	st := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
	st.SubtopologyID = "0"
	st.SourceTopics = []string{"in"}
	cl := kmsg.NewTopicInfo()
	cl.Topic = "app-store-changelog"
	st.StateChangelogTopics = []kmsg.TopicInfo{cl}
	t.Subtopologies = []kmsg.StreamsGroupHeartbeatRequestTopologySubtopology{st}
	return &t
}

// streamsHB sends one heartbeat; owned (nil: unchanged) are the member's
// active tasks.
func (h *harness) streamsHB(group, member, process string, epoch int32, owned []kmsg.TaskIDs) *kmsg.StreamsGroupHeartbeatResponse {
	h.t.Helper()
	req := kmsg.NewPtrStreamsGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = group, member, epoch
	if epoch == 0 {
		req.RebalanceTimeoutMillis = 30000
		req.Topology = streamsTopology()
		req.ProcessID = kmsg.StringPtr(process)
		owned = []kmsg.TaskIDs{}
	}
	if owned != nil {
		req.ActiveTasks, req.StandbyTasks, req.WarmupTasks = owned, []kmsg.TaskIDs{}, []kmsg.TaskIDs{}
	}
	resp := h.g.StreamsGroupHeartbeat(ctxFor("streams"), req)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("heartbeat %s epoch %d: code %d %v", member, epoch, resp.ErrorCode, resp.ErrorMessage)
	}
	return resp
}

func flatTasks(ts []kmsg.TaskIDs) string {
	var out []string
	for _, t := range ts {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s:%d", t.SubtopologyID, p))
		}
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}

// TestStreamsGroupSurvivesRestart: a streams group's topology, epochs,
// members and assignments are written to __consumer_offsets in Kafka's
// StreamsGroup* records and replayed, so after a restart the member
// heartbeats on with its epoch and keeps its tasks.
func TestStreamsGroupSurvivesRestart(t *testing.T) {
	h := newHarness(t, testConfig(), 2)
	h.topics.set("in", 3)
	h.topics.set("app-store-changelog", 3)
	r := h.streamsHB("app", "m1", "p1", 0, nil)
	if got := flatTasks(r.ActiveTasks); got != "[0:0 0:1 0:2]" || len(r.Status) != 0 {
		t.Fatalf("join: tasks %s status %+v", got, r.Status)
	}
	epoch := r.MemberEpoch
	before := h.g.StreamsGroupDescribe(ctxFor("x"), &kmsg.StreamsGroupDescribeRequest{Groups: []string{"app"}}).Groups[0]

	h.restart()
	after := h.g.StreamsGroupDescribe(ctxFor("x"), &kmsg.StreamsGroupDescribeRequest{Groups: []string{"app"}}).Groups[0]
	if fmt.Sprintf("%+v", *before.Topology) != fmt.Sprintf("%+v", *after.Topology) {
		t.Fatalf("topology after restart\n%+v\nwant\n%+v", *after.Topology, *before.Topology)
	}
	before.Topology, after.Topology = nil, nil
	if fmt.Sprintf("%+v", before) != fmt.Sprintf("%+v", after) {
		t.Fatalf("describe after restart\n%+v\nwant\n%+v", after, before)
	}
	r = h.streamsHB("app", "m1", "p1", epoch, r.ActiveTasks)
	if r.MemberEpoch != epoch || r.ActiveTasks != nil {
		t.Fatalf("heartbeat after restart: epoch %d (want %d), tasks %s (want unchanged)", r.MemberEpoch, epoch, flatTasks(r.ActiveTasks))
	}
}

// TestStreamsTaskMovesOnlyAfterRevocation: when a second process joins,
// the first keeps its epoch until it reports the revoked tasks gone, and
// the newcomer gets them only then; a session timeout gives them back.
func TestStreamsTaskMovesOnlyAfterRevocation(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	h.topics.set("in", 4)
	h.topics.set("app-store-changelog", 4)
	a := h.streamsHB("app", "a", "pa", 0, nil)
	b := h.streamsHB("app", "b", "pb", 0, nil)
	if flatTasks(b.ActiveTasks) != "[]" {
		t.Fatalf("b got %s while a still runs every task", flatTasks(b.ActiveTasks))
	}
	a2 := h.streamsHB("app", "a", "pa", a.MemberEpoch, a.ActiveTasks)
	if a2.MemberEpoch != a.MemberEpoch || len(taskList(a2.ActiveTasks)) != 2 {
		t.Fatalf("a while revoking: epoch %d tasks %s", a2.MemberEpoch, flatTasks(a2.ActiveTasks))
	}
	b2 := h.streamsHB("app", "b", "pb", b.MemberEpoch, []kmsg.TaskIDs{})
	if flatTasks(b2.ActiveTasks) != "[]" && b2.ActiveTasks != nil {
		t.Fatalf("b got %s before a revoked", flatTasks(b2.ActiveTasks))
	}
	a3 := h.streamsHB("app", "a", "pa", a2.MemberEpoch, a2.ActiveTasks)
	if a3.MemberEpoch <= a.MemberEpoch {
		t.Fatalf("a after revoking: epoch %d, want above %d", a3.MemberEpoch, a.MemberEpoch)
	}
	b3 := h.streamsHB("app", "b", "pb", b2.MemberEpoch, []kmsg.TaskIDs{})
	if len(taskList(b3.ActiveTasks)) != 2 {
		t.Fatalf("b after a revoked: %s", flatTasks(b3.ActiveTasks))
	}
	for _, x := range taskList(b3.ActiveTasks) {
		if slices.Contains(taskList(a2.ActiveTasks), x) {
			t.Fatalf("task %s on both a %s and b %s", x, flatTasks(a2.ActiveTasks), flatTasks(b3.ActiveTasks))
		}
	}

	// b stops heartbeating: its session (45 s by default) ends, a gets all.
	h.clock.Advance(30 * time.Second)
	a4 := h.streamsHB("app", "a", "pa", a3.MemberEpoch, a2.ActiveTasks)
	h.clock.Advance(20 * time.Second)
	h.waitFor("b fenced", func() bool { return len(h.group("app").sg.members) == 1 })
	a5 := h.streamsHB("app", "a", "pa", a4.MemberEpoch, a2.ActiveTasks)
	if flatTasks(a5.ActiveTasks) != "[0:0 0:1 0:2 0:3]" {
		t.Fatalf("a after b's session ended: %s", flatTasks(a5.ActiveTasks))
	}
}

func taskList(ts []kmsg.TaskIDs) []string {
	var out []string
	for _, t := range ts {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s:%d", t.SubtopologyID, p))
		}
	}
	return out
}

// TestStreamsAssignorStandbysAndStickiness: every task gets its standby
// on another process, never where it is active; a member joining moves
// no more active tasks than its fair share.
func TestStreamsAssignorStandbysAndStickiness(t *testing.T) {
	sg := newStreamsGroup(streamsGroupConfig{})
	for i, p := range []string{"p1", "p2", "p3"} {
		id := fmt.Sprintf("m%d", i)
		sg.members[id] = &smember{id: id, processID: p, assigned: newStreamsAssignment(), pending: newStreamsAssignment()}
	}
	counts := map[string]int32{"0": 6, "1": 3, "2": 3}
	target := assignStreamsTasks(sg, counts, map[string]bool{"0": true, "1": true, "2": false}, 1)
	total := 0
	for id, a := range target {
		total += a.active.count()
		if a.active.intersect(a.standby).count() != 0 {
			t.Fatalf("%s has a task both active and standby: %+v", id, a)
		}
		if n := a.active.count(); n != 4 {
			t.Fatalf("%s has %d active tasks, want 4", id, n)
		}
	}
	for sub, n := range counts {
		for p := int32(0); p < n; p++ {
			standbys := 0
			for _, a := range target {
				if a.standby.has(sub, p) {
					standbys++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[sub == "2"]; standbys != want {
				t.Fatalf("task %s:%d has %d standbys, want %d (stateless subtopology 2 has none)", sub, p, standbys, want)
			}
		}
	}
	if total != 12 {
		t.Fatalf("%d active tasks assigned, want 12", total)
	}

	// A fourth member: the others keep what they can.
	for id, a := range target {
		sg.members[id].assigned = a.clone()
	}
	sg.target = target
	sg.members["m3"] = &smember{id: "m3", processID: "p4", assigned: newStreamsAssignment(), pending: newStreamsAssignment()}
	next := assignStreamsTasks(sg, counts, nil, 0)
	moved := 0
	for id, a := range next {
		if old, ok := target[id]; ok {
			moved += old.active.minus(a.active).count()
		}
	}
	if got := next["m3"].active.count(); got != 3 || moved != 3 {
		t.Fatalf("new member got %d tasks with %d moved, want 3 and 3", got, moved)
	}
}

// TestStreamsStandbyConfigChangeReassigns: streams.num.standby.replicas
// set on the group makes the next heartbeat compute a new target with
// standbys.
func TestStreamsStandbyConfigChangeReassigns(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	h.topics.set("in", 2)
	h.topics.set("app-store-changelog", 2)
	a := h.streamsHB("app", "a", "pa", 0, nil)
	b := h.streamsHB("app", "b", "pb", 0, nil)
	a = h.streamsHB("app", "a", "pa", a.MemberEpoch, a.ActiveTasks)
	h.g.SetStreamsGroupConfigs("app", map[string]string{StreamsConfigNumStandbys: "1"})
	h.streamsHB("app", "b", "pb", b.MemberEpoch, []kmsg.TaskIDs{})
	h.waitFor("a target with standbys", func() bool {
		return h.group("app").sg.target["a"].standby.count() == 1 && h.group("app").sg.target["b"].standby.count() == 1 // subtopology 0 keeps a store
	})
}

// FuzzStreamsRecords: any bytes read back from __consumer_offsets under a
// streams group record type decode without panicking.
func FuzzStreamsRecords(f *testing.F) {
	sg := newStreamsGroup(streamsGroupConfig{})
	sg.epoch, sg.metadataHash = 3, 42
	m := &smember{id: "m", processID: "p", endpoint: &endpoint{"h", 1}, clientTags: [][2]string{{"k", "v"}},
		assigned: streamsAssignment{active: tasks{"0": {1, 2}}, standby: tasks{}, warmup: tasks{}}, pending: newStreamsAssignment()}
	for _, r := range []kv{
		streamsMetadataRecord("g", sg),
		streamsTopologyRecord("g", streamsTopology()),
		streamsMemberMetadataRecord("g", m),
		streamsTargetEpochRecord("g", 3),
		streamsTargetMemberRecord("g", "m", m.assigned),
		streamsCurrentRecord("g", m),
	} {
		ver, _ := keyVersion(r.key)
		f.Add(ver, r.value)
	}
	f.Fuzz(func(t *testing.T, ver int16, value []byte) {
		_ = applyStreamsValue(newStreamsGroup(streamsGroupConfig{}), ver, "m", value)
	})
}

// TestStreamsInitialRebalanceDelay: as Kafka 4.2 (group.streams.initial.
// rebalance.delay.ms, 3 s by default), the first members of an empty group
// get ASSIGNMENT_DELAYED and no tasks until the delay ends, and then share
// the tasks from the start instead of the first taking them all.
func TestStreamsInitialRebalanceDelay(t *testing.T) {
	cfg := testConfig()
	cfg.StreamsInitialRebalanceDelay = 3 * time.Second
	h := newHarness(t, cfg, 1)
	h.topics.set("in", 4)
	h.topics.set("app-store-changelog", 4)
	delayed := func(r *kmsg.StreamsGroupHeartbeatResponse) bool {
		for _, s := range r.Status {
			if s.StatusCode == statusAssignmentDelayed {
				return true
			}
		}
		return false
	}
	a := h.streamsHB("app", "a", "pa", 0, nil)
	b := h.streamsHB("app", "b", "pb", 0, nil)
	if !delayed(a) || !delayed(b) || flatTasks(a.ActiveTasks) != "[]" || flatTasks(b.ActiveTasks) != "[]" {
		t.Fatalf("during the delay: a %s %+v, b %s %+v", flatTasks(a.ActiveTasks), a.Status, flatTasks(b.ActiveTasks), b.Status)
	}
	h.clock.Advance(3 * time.Second)
	h.waitFor("the delayed target assignment", func() bool { return h.group("app").sg.assignmentEpoch == h.group("app").sg.epoch })
	a = h.streamsHB("app", "a", "pa", a.MemberEpoch, []kmsg.TaskIDs{})
	b = h.streamsHB("app", "b", "pb", b.MemberEpoch, []kmsg.TaskIDs{})
	if len(taskList(a.ActiveTasks)) != 2 || len(taskList(b.ActiveTasks)) != 2 || delayed(a) || delayed(b) {
		t.Fatalf("after the delay: a %s %+v, b %s %+v", flatTasks(a.ActiveTasks), a.Status, flatTasks(b.ActiveTasks), b.Status)
	}
}

// TestStreamsStandbyConfigDoesNotBumpEpochEveryHeartbeat: with
// streams.num.standby.replicas set, every heartbeat during the initial
// rebalance delay bumped the group epoch (the standby count of the last
// assignment was only recorded when a target was computed); the bump now
// records it, as Kafka's LastAssignmentConfigs.
func TestStreamsStandbyConfigDoesNotBumpEpochEveryHeartbeat(t *testing.T) {
	cfg := testConfig()
	cfg.StreamsInitialRebalanceDelay = 3 * time.Second
	cfg.StreamsNumStandbyReplicas = 1
	h := newHarness(t, cfg, 1)
	h.topics.set("in", 2)
	h.topics.set("app-store-changelog", 2)
	a := h.streamsHB("app", "a", "pa", 0, nil)
	epoch := h.group("app").sg.epoch
	for range 5 {
		a = h.streamsHB("app", "a", "pa", a.MemberEpoch, []kmsg.TaskIDs{})
	}
	if e := h.group("app").sg.epoch; e != epoch {
		t.Fatalf("group epoch %d after heartbeats that changed nothing, want %d", e, epoch)
	}
}

// TestConsumerHeartbeatOnStreamsGroup: a ConsumerGroupHeartbeat for a
// group that is a streams group with members crashed the coordinator (it
// took the group for a consumer group); it gets GROUP_ID_NOT_FOUND, as in
// Kafka, and an empty streams group becomes a consumer group.
func TestConsumerHeartbeatOnStreamsGroup(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	h.topics.set("in", 1)
	h.topics.set("app-store-changelog", 1)
	a := h.streamsHB("app", "a", "pa", 0, nil)
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.RebalanceTimeoutMillis = 1, "app", "c", 30000
	req.SubscribedTopicNames, req.Topics = []string{"t1"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if resp := h.g.ConsumerGroupHeartbeat(ctxFor("c"), req); resp.ErrorCode != errGroupIDNotFound {
		t.Fatalf("consumer heartbeat on a streams group: code %d, want GROUP_ID_NOT_FOUND", resp.ErrorCode)
	}
	leave := kmsg.NewPtrStreamsGroupHeartbeatRequest()
	leave.Group, leave.MemberID, leave.MemberEpoch = "app", "a", -1
	if resp := h.g.StreamsGroupHeartbeat(ctxFor("x"), leave); resp.ErrorCode != 0 {
		t.Fatalf("leave: %d", resp.ErrorCode)
	}
	_ = a
	if resp := h.g.ConsumerGroupHeartbeat(ctxFor("c"), req); resp.ErrorCode != 0 {
		t.Fatalf("consumer heartbeat on an empty streams group: code %d", resp.ErrorCode)
	}
	if h.group("app").kind != kindConsumer {
		t.Fatalf("group kind %v after the consumer joined", h.group("app").kind)
	}
	h.restart()
	if grp := h.group("app"); grp == nil || grp.kind != kindConsumer {
		t.Fatalf("after restart: %+v", grp)
	}
}
