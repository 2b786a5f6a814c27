package coordinator

import (
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-1071 streams group records, in Kafka 4.2's __consumer_offsets schemas
// (group-coordinator/src/main/resources/common/message/StreamsGroup*.json):
// keys are non-flexible (type, then strings), values flexible v0.
const (
	keyStreamsGroupMetadata       = 17 // group epoch and metadata hash
	keyStreamsGroupMemberMetadata = 19
	keyStreamsGroupTargetEpoch    = 20
	keyStreamsGroupTargetMember   = 21
	keyStreamsGroupCurrentMember  = 22
	keyStreamsGroupTopology       = 23
)

var errBadStreamsRecord = errors.New("coordinator: malformed streams group record")

func streamsMetadataRecord(groupID string, sg *streamsGroup) kv {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendInt32(v, sg.epoch)
	v = kbin.AppendInt64(v, sg.metadataHash)
	return kv{groupKey(keyStreamsGroupMetadata, groupID), noTags(v)}
}

func appendTopicInfos(v []byte, tis []kmsg.TopicInfo) []byte {
	v = kbin.AppendCompactArrayLen(v, len(tis))
	for _, ti := range tis {
		v = kbin.AppendCompactString(v, ti.Topic)
		v = kbin.AppendInt32(v, ti.NumPartitions)
		v = kbin.AppendInt16(v, ti.ReplicationFactor)
		v = kbin.AppendCompactArrayLen(v, len(ti.Configs))
		for _, c := range ti.Configs {
			v = kbin.AppendCompactString(v, c.Key)
			v = kbin.AppendCompactString(v, c.Value)
			v = noTags(v)
		}
		v = noTags(v)
	}
	return v
}

func appendStrings(v []byte, ss []string) []byte {
	v = kbin.AppendCompactArrayLen(v, len(ss))
	for _, s := range ss {
		v = kbin.AppendCompactString(v, s)
	}
	return v
}

func appendInt16s(v []byte, xs []int16) []byte {
	v = kbin.AppendCompactArrayLen(v, len(xs))
	for _, x := range xs {
		v = kbin.AppendInt16(v, x)
	}
	return v
}

func streamsTopologyRecord(groupID string, t *kmsg.StreamsGroupHeartbeatRequestTopology) kv {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendInt32(v, t.Epoch)
	v = kbin.AppendCompactArrayLen(v, len(t.Subtopologies))
	for _, st := range t.Subtopologies {
		v = kbin.AppendCompactString(v, st.SubtopologyID)
		v = appendStrings(v, st.SourceTopics)
		v = appendStrings(v, st.SourceTopicRegex)
		v = appendTopicInfos(v, st.StateChangelogTopics)
		v = appendStrings(v, st.RepartitionSinkTopics)
		v = appendTopicInfos(v, st.RepartitionSourceTopics)
		v = kbin.AppendCompactArrayLen(v, len(st.CopartitionGroups))
		for _, cg := range st.CopartitionGroups {
			v = appendInt16s(v, cg.SourceTopics)
			v = appendInt16s(v, cg.SourceTopicRegex)
			v = appendInt16s(v, cg.RepartitionSourceTopics)
			v = noTags(v)
		}
		v = noTags(v)
	}
	return kv{groupKey(keyStreamsGroupTopology, groupID), noTags(v)}
}

func streamsMemberMetadataRecord(groupID string, m *smember) kv {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendCompactNullableString(v, m.instanceID)
	v = kbin.AppendCompactNullableString(v, m.rackID)
	v = kbin.AppendCompactString(v, m.clientID)
	v = kbin.AppendCompactString(v, m.clientHost)
	v = kbin.AppendInt32(v, m.rebalanceMs)
	v = kbin.AppendInt32(v, m.topologyEpoch)
	v = kbin.AppendCompactString(v, m.processID)
	if m.endpoint == nil {
		v = kbin.AppendInt8(v, -1)
	} else {
		v = kbin.AppendInt8(v, 1)
		v = kbin.AppendCompactString(v, m.endpoint.host)
		v = kbin.AppendUint16(v, m.endpoint.port)
		v = noTags(v)
	}
	v = kbin.AppendCompactArrayLen(v, len(m.clientTags))
	for _, kv := range m.clientTags {
		v = kbin.AppendCompactString(v, kv[0])
		v = kbin.AppendCompactString(v, kv[1])
		v = noTags(v)
	}
	return kv{memberKey(keyStreamsGroupMemberMetadata, groupID, m.id), noTags(v)}
}

func streamsTargetEpochRecord(groupID string, epoch int32) kv {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendInt32(v, epoch)
	return kv{groupKey(keyStreamsGroupTargetEpoch, groupID), noTags(v)}
}

func appendTasks(v []byte, t tasks) []byte {
	subs := sortedKeys(t)
	v = kbin.AppendCompactArrayLen(v, len(subs))
	for _, s := range subs {
		v = kbin.AppendCompactString(v, s)
		v = kbin.AppendCompactArrayLen(v, len(t[s]))
		for _, p := range t[s] {
			v = kbin.AppendInt32(v, p)
		}
		v = noTags(v)
	}
	return v
}

func streamsTargetMemberRecord(groupID, memberID string, a streamsAssignment) kv {
	v := kbin.AppendInt16(nil, 0)
	v = appendTasks(v, a.active)
	v = appendTasks(v, a.standby)
	v = appendTasks(v, a.warmup)
	return kv{memberKey(keyStreamsGroupTargetMember, groupID, memberID), noTags(v)}
}

func streamsCurrentRecord(groupID string, m *smember) kv {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendInt32(v, m.epoch)
	v = kbin.AppendInt32(v, m.prevEpoch)
	v = kbin.AppendInt8(v, int8(m.state))
	for _, t := range []tasks{m.assigned.active, m.assigned.standby, m.assigned.warmup, m.pending.active, m.pending.standby, m.pending.warmup} {
		v = appendTasks(v, t)
	}
	return kv{memberKey(keyStreamsGroupCurrentMember, groupID, m.id), noTags(v)}
}

// streamsMemberTombstones removes a member, in Kafka's order.
func streamsMemberTombstones(groupID, memberID string) []kv {
	return []kv{
		{key: memberKey(keyStreamsGroupCurrentMember, groupID, memberID)},
		{key: memberKey(keyStreamsGroupTargetMember, groupID, memberID)},
		{key: memberKey(keyStreamsGroupMemberMetadata, groupID, memberID)},
	}
}

// streamsGroupTombstones removes an (empty) streams group.
func streamsGroupTombstones(groupID string) []kv {
	return []kv{
		{key: groupKey(keyStreamsGroupTargetEpoch, groupID)},
		{key: groupKey(keyStreamsGroupTopology, groupID)},
		{key: groupKey(keyStreamsGroupMetadata, groupID)},
	}
}

func (r *flexReader) tasks() tasks {
	t := tasks{}
	for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
		s := r.CompactString()
		t[s] = []int32{}
		for k := r.CompactArrayLen(); k > 0 && r.Ok(); k-- {
			t.add(s, r.Int32())
		}
		r.skipTags() // AssignmentEpochs (tag 0) is not kept
	}
	return t
}

func (r *flexReader) strings() []string {
	var out []string
	for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
		out = append(out, r.CompactString())
	}
	return out
}

func (r *flexReader) int16s() []int16 {
	var out []int16
	for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
		out = append(out, r.Int16())
	}
	return out
}

func (r *flexReader) topicInfos() []kmsg.TopicInfo {
	var out []kmsg.TopicInfo
	for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
		ti := kmsg.NewTopicInfo()
		ti.Topic = r.CompactString()
		ti.NumPartitions = r.Int32()
		ti.ReplicationFactor = r.Int16()
		for k := r.CompactArrayLen(); k > 0 && r.Ok(); k-- {
			c := kmsg.NewTopicInfoConfig()
			c.Key, c.Value = r.CompactString(), r.CompactString()
			r.skipTags()
			ti.Configs = append(ti.Configs, c)
		}
		r.skipTags()
		out = append(out, ti)
	}
	return out
}

// replayStreamsRecordLocked applies one streams group record read back
// from the log; derived state is rebuilt in streamsOnLoadedLocked.
func (g *Groups) replayStreamsRecordLocked(ver int16, key, value []byte) {
	kr := kbin.Reader{Src: key[2:]}
	groupID := kr.String()
	memberID := ""
	if ver == keyStreamsGroupMemberMetadata || ver == keyStreamsGroupTargetMember || ver == keyStreamsGroupCurrentMember {
		memberID = kr.String()
	}
	if kr.Complete() != nil {
		g.logger.Warn().Int16("version", ver).Msg("coordinator: skipping undecodable streams group key")
		return
	}
	grp := g.mu.groups[groupID]
	if value == nil {
		if grp == nil || grp.kind != kindStreams {
			return
		}
		sg := grp.sg
		switch ver {
		case keyStreamsGroupMetadata:
			g.removeGroupLocked(groupID)
		case keyStreamsGroupTopology:
			sg.topology = nil
		case keyStreamsGroupMemberMetadata:
			delete(sg.members, memberID)
		case keyStreamsGroupTargetEpoch:
			sg.assignmentEpoch = 0
		case keyStreamsGroupTargetMember:
			delete(sg.target, memberID)
		}
		return
	}
	if grp == nil || grp.kind != kindStreams {
		if grp != nil && !grp.isEmpty() {
			return
		}
		grp = &group{id: groupID, kind: kindStreams, sg: newStreamsGroup(g.streamsConfigFor(groupID))}
		g.replaceGroupLocked(grp)
	}
	if err := applyStreamsValue(grp.sg, ver, memberID, value); err != nil {
		g.logger.Warn().Err(err).Str("group", groupID).Int16("version", ver).Msg("coordinator: skipping undecodable streams group record")
	}
}

func applyStreamsValue(sg *streamsGroup, ver int16, memberID string, value []byte) error {
	r, ok := newFlexReader(value)
	if !ok {
		return errBadStreamsRecord
	}
	member := func() *smember {
		m := sg.members[memberID]
		if m == nil {
			m = &smember{id: memberID, rebalanceMs: -1, assigned: newStreamsAssignment(), pending: newStreamsAssignment()}
			sg.members[memberID] = m
		}
		return m
	}
	switch ver {
	case keyStreamsGroupMetadata:
		sg.epoch = r.Int32()
		sg.metadataHash = r.Int64()
	case keyStreamsGroupTopology:
		t := kmsg.NewStreamsGroupHeartbeatRequestTopology()
		t.Epoch = r.Int32()
		for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
			st := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
			st.SubtopologyID = r.CompactString()
			st.SourceTopics = r.strings()
			st.SourceTopicRegex = r.strings()
			st.StateChangelogTopics = r.topicInfos()
			st.RepartitionSinkTopics = r.strings()
			st.RepartitionSourceTopics = r.topicInfos()
			for k := r.CompactArrayLen(); k > 0 && r.Ok(); k-- {
				cg := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopologyCopartitionGroup()
				cg.SourceTopics, cg.SourceTopicRegex, cg.RepartitionSourceTopics = r.int16s(), r.int16s(), r.int16s()
				r.skipTags()
				st.CopartitionGroups = append(st.CopartitionGroups, cg)
			}
			r.skipTags()
			t.Subtopologies = append(t.Subtopologies, st)
		}
		sg.topology = &t
	case keyStreamsGroupMemberMetadata:
		m := member()
		m.instanceID = r.CompactNullableString()
		m.rackID = r.CompactNullableString()
		m.clientID = r.CompactString()
		m.clientHost = r.CompactString()
		m.rebalanceMs = r.Int32()
		m.topologyEpoch = r.Int32()
		m.processID = r.CompactString()
		m.endpoint = nil
		if r.Int8() >= 0 {
			m.endpoint = &endpoint{host: r.CompactString(), port: r.Uint16()}
			r.skipTags()
		}
		m.clientTags = nil
		for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
			m.clientTags = append(m.clientTags, [2]string{r.CompactString(), r.CompactString()})
			r.skipTags()
		}
		slices.SortFunc(m.clientTags, func(a, b [2]string) int { return compareStrings(a[0], b[0]) })
	case keyStreamsGroupTargetEpoch:
		sg.assignmentEpoch = r.Int32()
	case keyStreamsGroupTargetMember:
		a := newStreamsAssignment()
		a.active, a.standby, a.warmup = r.tasks(), r.tasks(), r.tasks()
		sg.target[memberID] = a
	case keyStreamsGroupCurrentMember:
		m := member()
		m.epoch = r.Int32()
		m.prevEpoch = r.Int32()
		m.state = memberState(r.Int8())
		m.assigned.active, m.assigned.standby, m.assigned.warmup = r.tasks(), r.tasks(), r.tasks()
		m.pending.active, m.pending.standby, m.pending.warmup = r.tasks(), r.tasks(), r.tasks()
	default:
		return nil // StreamsGroupPartitionMetadata (18) of 4.0/4.1: superseded by the hash
	}
	r.skipTags()
	return r.Complete()
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
