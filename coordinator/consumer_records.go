package coordinator

import (
	"errors"
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
)

// KIP-848 consumer group records, in Kafka's __consumer_offsets schemas
// (group-coordinator/src/main/resources/common/message/ConsumerGroup*.json).
// kmsg does not carry these, so they are encoded here: keys are
// non-flexible (version prefix, then strings), values are flexible v0
// (compact strings and arrays, tagged fields).
const (
	keyConsumerGroupMetadata       = 3 // group epoch
	keyConsumerGroupPartitionMeta  = 4 // subscribed topics' metadata
	keyConsumerGroupMemberMetadata = 5 // a member's subscription
	keyConsumerGroupTargetEpoch    = 6 // target assignment epoch
	keyConsumerGroupTargetMember   = 7 // a member's target assignment
	keyConsumerGroupCurrentMember  = 8 // a member's current assignment and epoch
)

func groupKey(version int16, groupID string) []byte {
	b := kbin.AppendInt16(nil, version)
	return kbin.AppendString(b, groupID)
}

func memberKey(version int16, groupID, memberID string) []byte {
	return kbin.AppendString(groupKey(version, groupID), memberID)
}

func noTags(b []byte) []byte { return kbin.AppendUvarint(b, 0) }

func groupEpochRecord(groupID string, epoch int32) kv {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendInt32(v, epoch)
	return kv{groupKey(keyConsumerGroupMetadata, groupID), noTags(v)}
}

func partitionMetadataRecord(groupID string, cg *consumerGroup) kv {
	names := make([]string, 0, len(cg.subMeta))
	for t := range cg.subMeta {
		names = append(names, t)
	}
	slices.Sort(names)
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendCompactArrayLen(v, len(names))
	for _, t := range names {
		tm := cg.subMeta[t]
		v = kbin.AppendUuid(v, tm.id)
		v = kbin.AppendCompactString(v, t)
		v = kbin.AppendInt32(v, tm.partitions)
		v = kbin.AppendCompactArrayLen(v, 0) // no rack metadata
		v = noTags(v)
	}
	return kv{groupKey(keyConsumerGroupPartitionMeta, groupID), noTags(v)}
}

func memberMetadataRecord(groupID string, m *cmember) kv {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendCompactNullableString(v, m.instanceID)
	v = kbin.AppendCompactNullableString(v, m.rackID)
	v = kbin.AppendCompactString(v, m.clientID)
	v = kbin.AppendCompactString(v, m.clientHost)
	v = kbin.AppendCompactArrayLen(v, len(m.topics))
	for _, t := range m.topics {
		v = kbin.AppendCompactString(v, t)
	}
	var regex *string
	if m.hasRegex {
		regex = &m.regex
	}
	v = kbin.AppendCompactNullableString(v, regex)
	v = kbin.AppendInt32(v, m.rebalanceMs)
	v = kbin.AppendCompactNullableString(v, strPtrOrNil(m.serverAssignor))
	return kv{memberKey(keyConsumerGroupMemberMetadata, groupID, m.id), noTags(v)}
}

func targetEpochRecord(groupID string, epoch int32) kv {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendInt32(v, epoch)
	return kv{groupKey(keyConsumerGroupTargetEpoch, groupID), noTags(v)}
}

func appendTopicParts(v []byte, a topicParts) []byte {
	ids := sortedTopicIDs(a)
	v = kbin.AppendCompactArrayLen(v, len(ids))
	for _, id := range ids {
		v = kbin.AppendUuid(v, id)
		v = kbin.AppendCompactArrayLen(v, len(a[id]))
		for _, p := range a[id] {
			v = kbin.AppendInt32(v, p)
		}
		v = noTags(v)
	}
	return v
}

func targetMemberRecord(groupID, memberID string, a topicParts) kv {
	v := appendTopicParts(kbin.AppendInt16(nil, 0), a)
	return kv{memberKey(keyConsumerGroupTargetMember, groupID, memberID), noTags(v)}
}

func currentAssignmentRecord(groupID string, m *cmember) kv {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendInt32(v, m.epoch)
	v = kbin.AppendInt32(v, m.prevEpoch)
	v = kbin.AppendInt8(v, int8(m.state))
	v = appendTopicParts(v, m.assigned)
	v = appendTopicParts(v, m.pendingRevocation)
	return kv{memberKey(keyConsumerGroupCurrentMember, groupID, m.id), noTags(v)}
}

// memberTombstones removes a member, in Kafka's order.
func memberTombstones(groupID, memberID string) []kv {
	return []kv{
		{key: memberKey(keyConsumerGroupCurrentMember, groupID, memberID)},
		{key: memberKey(keyConsumerGroupTargetMember, groupID, memberID)},
		{key: memberKey(keyConsumerGroupMemberMetadata, groupID, memberID)},
	}
}

// groupTombstones removes an (empty) consumer group.
func groupTombstones(groupID string) []kv {
	return []kv{
		{key: groupKey(keyConsumerGroupTargetEpoch, groupID)},
		{key: groupKey(keyConsumerGroupPartitionMeta, groupID)},
		{key: groupKey(keyConsumerGroupMetadata, groupID)},
	}
}

var errBadConsumerRecord = errors.New("coordinator: malformed consumer group record")

// flexReader reads a flexible v0 value.
type flexReader struct{ kbin.Reader }

func newFlexReader(value []byte) (*flexReader, bool) {
	r := &flexReader{kbin.Reader{Src: value}}
	return r, r.Int16() == 0 && r.Ok()
}

func (r *flexReader) skipTags() {
	for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
		r.Uvarint()
		r.Span(int(r.Uvarint()))
	}
}

func (r *flexReader) topicParts() topicParts {
	a := make(topicParts)
	for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
		id := r.Uuid()
		var ps []int32
		for k := r.CompactArrayLen(); k > 0 && r.Ok(); k-- {
			ps = append(ps, r.Int32())
		}
		r.skipTags()
		slices.Sort(ps)
		a[id] = slices.Compact(ps)
	}
	return a
}

// replayConsumerRecordLocked applies one KIP-848 record read back from the
// log. Member state is rebuilt first; ownership, static ids and timers are
// derived from it in consumerOnLoadedLocked.
func (g *Groups) replayConsumerRecordLocked(ver int16, key, value []byte) {
	if ver < keyConsumerGroupMetadata || ver > keyConsumerGroupCurrentMember {
		return // a newer record type (share groups, streams groups...)
	}
	kr := kbin.Reader{Src: key[2:]}
	groupID := kr.String()
	memberID := ""
	if ver == keyConsumerGroupMemberMetadata || ver == keyConsumerGroupTargetMember || ver == keyConsumerGroupCurrentMember {
		memberID = kr.String()
	}
	if kr.Complete() != nil {
		g.logger.Warn().Int16("version", ver).Msg("coordinator: skipping undecodable consumer group key")
		return
	}
	grp := g.mu.groups[groupID]
	if value == nil {
		if grp == nil || grp.kind != kindConsumer {
			return
		}
		cg := grp.cg
		switch ver {
		case keyConsumerGroupMetadata:
			g.removeGroupLocked(groupID)
		case keyConsumerGroupPartitionMeta:
			cg.subMeta = make(map[string]topicMeta)
		case keyConsumerGroupMemberMetadata:
			delete(cg.members, memberID)
		case keyConsumerGroupTargetEpoch:
			cg.assignmentEpoch = 0
		case keyConsumerGroupTargetMember:
			delete(cg.target, memberID)
		}
		return
	}
	if grp == nil || grp.kind != kindConsumer {
		if grp != nil && !grp.isEmpty() {
			return // a live classic group owns the id; Kafka would not have written this
		}
		grp = &group{id: groupID, kind: kindConsumer, cg: newConsumerGroup()}
		g.replaceGroupLocked(grp)
	}
	if err := g.applyConsumerValue(grp.cg, ver, memberID, value); err != nil {
		g.logger.Warn().Err(err).Str("group", groupID).Int16("version", ver).Msg("coordinator: skipping undecodable consumer group record")
	}
}

func (g *Groups) applyConsumerValue(cg *consumerGroup, ver int16, memberID string, value []byte) error {
	r, ok := newFlexReader(value)
	if !ok {
		return errBadConsumerRecord
	}
	member := func() *cmember {
		m := cg.members[memberID]
		if m == nil {
			m = &cmember{id: memberID, rebalanceMs: -1, assigned: topicParts{}, pendingRevocation: topicParts{}}
			cg.members[memberID] = m
		}
		return m
	}
	switch ver {
	case keyConsumerGroupMetadata:
		cg.epoch = r.Int32()
	case keyConsumerGroupPartitionMeta:
		meta := make(map[string]topicMeta)
		for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
			id := r.Uuid()
			name := r.CompactString()
			parts := r.Int32()
			for k := r.CompactArrayLen(); k > 0 && r.Ok(); k-- { // rack metadata, unused
				r.Int32()
				for j := r.CompactArrayLen(); j > 0 && r.Ok(); j-- {
					r.CompactString()
				}
				r.skipTags()
			}
			r.skipTags()
			meta[name] = topicMeta{id: id, partitions: parts}
		}
		if r.Ok() {
			cg.subMeta = meta
		}
	case keyConsumerGroupMemberMetadata:
		m := member()
		m.instanceID = r.CompactNullableString()
		m.rackID = r.CompactNullableString()
		m.clientID = r.CompactString()
		m.clientHost = r.CompactString()
		m.topics = nil
		for n := r.CompactArrayLen(); n > 0 && r.Ok(); n-- {
			m.topics = append(m.topics, r.CompactString())
		}
		slices.Sort(m.topics)
		if re := r.CompactNullableString(); re != nil {
			m.regex, m.hasRegex = *re, true
			m.compiled, _ = compileSubscriptionRegex(*re)
			if m.compiled == nil {
				m.hasRegex = false // cannot happen for regexes we accepted
			}
		} else {
			m.regex, m.hasRegex, m.compiled = "", false, nil
		}
		m.rebalanceMs = r.Int32()
		m.serverAssignor = ""
		if a := r.CompactNullableString(); a != nil {
			m.serverAssignor = *a
		}
	case keyConsumerGroupTargetEpoch:
		cg.assignmentEpoch = r.Int32()
	case keyConsumerGroupTargetMember:
		cg.target[memberID] = r.topicParts()
	case keyConsumerGroupCurrentMember:
		m := member()
		m.epoch = r.Int32()
		m.prevEpoch = r.Int32()
		m.state = memberState(r.Int8())
		m.assigned = r.topicParts()
		m.pendingRevocation = r.topicParts()
	}
	r.skipTags()
	return r.Complete()
}

// compileSubscriptionRegex compiles a SubscribedTopicRegex. Kafka uses RE2J
// and requires the whole topic name to match.
func compileSubscriptionRegex(re string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + re + ")$")
}
