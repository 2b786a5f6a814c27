package coordinator

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// StreamsGroupDescribe handles StreamsGroupDescribe v0 (KIP-1071): the
// group's epochs, its topology as the members sent it, and every member's
// current and target assignment.
func (g *Groups) StreamsGroupDescribe(ctx context.Context, req *kmsg.StreamsGroupDescribeRequest) *kmsg.StreamsGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.StreamsGroupDescribeResponse)
	g.lock()
	defer g.unlock()
	for _, id := range req.Groups {
		dg := kmsg.NewStreamsGroupDescribeResponseGroup()
		dg.Group = id
		grp, code, msg := g.describedGroupLocked(id, kindStreams)
		if code != 0 {
			dg.ErrorCode, dg.ErrorMessage = code, msg
		} else {
			g.describeStreamsGroupLocked(grp, &dg)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (g *Groups) describeStreamsGroupLocked(grp *group, dg *kmsg.StreamsGroupDescribeResponseGroup) {
	sg := grp.sg
	dg.State = sg.stateName()
	dg.Epoch = sg.epoch
	dg.AssignmentEpoch = sg.assignmentEpoch
	if sg.topology != nil {
		t := kmsg.NewStreamsGroupDescribeResponseGroupTopology()
		t.Epoch = sg.topology.Epoch
		subs := append([]kmsg.StreamsGroupHeartbeatRequestTopologySubtopology(nil), sg.topology.Subtopologies...)
		sort.Slice(subs, func(i, j int) bool { return subs[i].SubtopologyID < subs[j].SubtopologyID })
		for _, st := range subs {
			ds := kmsg.NewStreamsGroupDescribeResponseGroupTopologySubtopology()
			ds.SubtopologyID = st.SubtopologyID
			ds.SourceTopics = orEmptyStrings(st.SourceTopics)
			ds.RepartitionSinkTopics = orEmptyStrings(st.RepartitionSinkTopics)
			ds.StateChangelogTopics = orEmptyInfos(st.StateChangelogTopics)
			ds.RepartitionSourceTopics = orEmptyInfos(st.RepartitionSourceTopics)
			t.Subtopologies = append(t.Subtopologies, ds)
		}
		if t.Subtopologies == nil {
			t.Subtopologies = []kmsg.StreamsGroupDescribeResponseGroupTopologySubtopology{}
		}
		dg.Topology = &t
	}
	dg.Members = []kmsg.StreamsGroupDescribeResponseGroupMember{}
	for _, id := range sortedMemberIDs(sg.members) {
		m := sg.members[id]
		dm := kmsg.NewStreamsGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		dm.MemberEpoch = m.epoch
		dm.InstanceID = m.instanceID
		dm.RackID = m.rackID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.TopologyEpoch = m.topologyEpoch
		dm.ProcessID = m.processID
		if m.endpoint != nil {
			dm.UserEndpoint = &kmsg.StreamsGroupDescribeResponseGroupMemberUserEndpoint{Host: m.endpoint.host, Port: m.endpoint.port}
		}
		dm.ClientTags = []kmsg.StreamsGroupDescribeResponseGroupMemberClientTag{}
		for _, kv := range m.clientTags {
			dm.ClientTags = append(dm.ClientTags, kmsg.StreamsGroupDescribeResponseGroupMemberClientTag{Key: kv[0], Value: kv[1]})
		}
		dm.TaskOffsets, dm.TaskEndOffsets = []kmsg.TaskOffset{}, []kmsg.TaskOffset{}
		dm.Assignment = m.assigned.toKmsg()
		target, ok := sg.target[m.id]
		if !ok {
			target = newStreamsAssignment()
		}
		dm.TargetAssignment = target.toKmsg()
		dg.Members = append(dg.Members, dm)
	}
}

func orEmptyStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyInfos(s []kmsg.TopicInfo) []kmsg.TopicInfo {
	if s == nil {
		return []kmsg.TopicInfo{}
	}
	return s
}

// Offset commits of streams groups (StreamsGroup.validateOffsetCommit):
// members commit with their member epoch and OffsetCommit v9+; an empty
// group accepts simple commits. A commit with the member's previous epoch
// is accepted (Kafka checks it per task against the task's assignment
// epoch; Skiff accepts the epoch just before the current one).
func (g *Groups) validateStreamsCommitLocked(grp *group, req *kmsg.OffsetCommitRequest) int16 {
	sg := grp.sg
	if req.Generation < 0 && len(sg.members) == 0 {
		return 0
	}
	m := sg.members[req.MemberID]
	if m == nil {
		return errUnknownMemberID
	}
	if req.Version < 9 {
		return errUnsupportedVersion
	}
	if req.Generation == m.epoch || (req.Generation < m.epoch && req.Generation == m.prevEpoch) {
		return 0
	}
	return errStaleMemberEpoch
}

func (g *Groups) validateStreamsFetchLocked(grp *group, memberID *string, epoch int32) int16 {
	if memberID == nil && epoch < 0 {
		return 0
	}
	var m *smember
	if memberID != nil {
		m = grp.sg.members[*memberID]
	}
	if m == nil {
		return errUnknownMemberID
	}
	if epoch != m.epoch {
		return errStaleMemberEpoch
	}
	return 0
}

func (g *Groups) streamsTombstonesLocked(grp *group) []kv {
	var recs []kv
	for _, id := range sortedMemberIDs(grp.sg.members) {
		recs = append(recs, streamsMemberTombstones(grp.id, id)...)
	}
	return append(recs, streamsGroupTombstones(grp.id)...)
}
