package coordinator

import (
	"context"
	"slices"
	"sort"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetEntry is one committed offset.
type offsetEntry struct {
	offset      int64
	leaderEpoch int32 // -1 if unknown
	metadata    string
	commitTime  int64 // ms
	expireTime  int64 // ms; -1 unless committed with an explicit retention (OffsetCommit v2-v4)
	logOffset   int64 // where the commit sits in __consumer_offsets; orders transactional commits
}

// putOffsetLocked stores a committed offset. Committing creates the group
// if needed: a group that only has offsets is an Empty classic group with
// no protocol type (Kafka's "simple group").
func (g *Groups) putOffsetLocked(groupID, topic string, partition int32, e *offsetEntry) {
	g.ensureGroupLocked(groupID)
	byTopic := g.mu.offsets[groupID]
	if byTopic == nil {
		byTopic = make(map[string]map[int32]*offsetEntry)
		g.mu.offsets[groupID] = byTopic
	}
	parts := byTopic[topic]
	if parts == nil {
		parts = make(map[int32]*offsetEntry)
		byTopic[topic] = parts
	}
	parts[partition] = e
}

func (g *Groups) ensureGroupLocked(groupID string) {
	if g.mu.groups[groupID] == nil {
		g.mu.groups[groupID] = newClassicGroup(groupID, g.now())
	}
}

// deleteOffsetLocked applies an offset tombstone, which also discards any
// pending transactional commit of the partition.
func (g *Groups) deleteOffsetLocked(groupID, topic string, partition int32) {
	if byTopic := g.mu.offsets[groupID]; byTopic != nil {
		if parts := byTopic[topic]; parts != nil {
			delete(parts, partition)
			if len(parts) == 0 {
				delete(byTopic, topic)
			}
		}
		if len(byTopic) == 0 {
			delete(g.mu.offsets, groupID)
		}
	}
	g.mu.txn.removePartition(groupID, topic, partition)
}

func (g *Groups) offsetLocked(groupID, topic string, partition int32) *offsetEntry {
	return g.mu.offsets[groupID][topic][partition]
}

// OffsetCommit handles OffsetCommit v2-v9. It answers once the commit is
// durable.
func (g *Groups) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		*rt = kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rt.Partitions[j] = kmsg.NewOffsetCommitResponseTopicPartition()
			rt.Partitions[j].Partition = p.Partition
		}
	}
	ch := make(chan int16, 1)
	g.ensureLogs()
	g.lock()
	written := g.commitLocked(req, resp, ch)
	g.unlock()
	if len(written) == 0 {
		return resp
	}
	code, waitCode := await(ctx, g.closing, ch)
	if waitCode != 0 {
		code = waitCode
	}
	for _, p := range written {
		p.ErrorCode = code
	}
	return resp
}

// commitLocked validates a commit and queues its records, filling in the
// errors known up front. It returns the partitions whose outcome arrives
// on ch once the write completes.
func (g *Groups) commitLocked(req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, ch chan int16) []*kmsg.OffsetCommitResponseTopicPartition {
	// The broker refuses partitions that do not exist before the
	// coordinator sees the request.
	var valid []*kmsg.OffsetCommitResponseTopicPartition
	var reqParts []*kmsg.OffsetCommitRequestTopicPartition
	var topics []string
	for i := range req.Topics {
		t := &req.Topics[i]
		count, ok := g.topics.PartitionCount(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			rp := &resp.Topics[i].Partitions[j]
			if !ok || p.Partition < 0 || p.Partition >= count {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			valid = append(valid, rp)
			reqParts = append(reqParts, p)
			topics = append(topics, t.Topic)
		}
	}
	if len(valid) == 0 {
		return nil
	}
	code := errCoordinatorNotAvailable
	if !g.mu.closed {
		code = g.validateCommitLocked(req)
	}
	if code != 0 {
		for _, rp := range valid {
			rp.ErrorCode = code
		}
		return nil
	}

	now := g.now().UnixMilli()
	expire := int64(-1)
	if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis != -1 {
		expire = now + req.RetentionTimeMillis
	}
	var written []*kmsg.OffsetCommitResponseTopicPartition
	var records []kv
	type target struct {
		topic     string
		partition int32
		e         *offsetEntry
	}
	var targets []target
	for i, p := range reqParts {
		md := ""
		if p.Metadata != nil {
			md = *p.Metadata
		}
		if utf16Len(md) > g.cfg.OffsetMetadataMaxBytes {
			valid[i].ErrorCode = kerr.OffsetMetadataTooLarge.Code
			continue
		}
		e := &offsetEntry{offset: p.Offset, leaderEpoch: -1, metadata: md, commitTime: now, expireTime: expire}
		if req.Version >= 6 {
			e.leaderEpoch = p.LeaderEpoch
		}
		records = append(records, kv{offsetCommitKey(req.Group, topics[i], p.Partition), offsetCommitValue(e)})
		targets = append(targets, target{topics[i], p.Partition, e})
		written = append(written, valid[i])
	}
	if len(written) == 0 {
		return nil
	}
	groupID := req.Group
	g.enqueueLocked(groupID, records, func(first int64, err error) {
		if err != nil {
			ch <- appendErrorCode(err)
			return
		}
		for i, t := range targets {
			t.e.logOffset = first + int64(i)
			g.putOffsetLocked(groupID, t.topic, t.partition, t.e)
		}
		ch <- 0
	})
	return written
}

// validateCommitLocked is Kafka's check of who may commit: anyone to a
// group without members (generation -1, no member id: a "simple" commit),
// otherwise only a current member of the current generation, and not while
// the group waits for its leader's assignment.
func (g *Groups) validateCommitLocked(req *kmsg.OffsetCommitRequest) int16 {
	grp := g.mu.groups[req.Group]
	if grp == nil {
		switch {
		case req.Generation < 0:
			return 0
		case req.Version >= 9:
			return errGroupIDNotFound
		default:
			return errIllegalGeneration
		}
	}
	if grp.state == stateDead {
		return errCoordinatorNotAvailable
	}
	switch grp.kind {
	case kindConsumer:
		return g.validateConsumerCommitLocked(grp, req)
	case kindStreams:
		return g.validateStreamsCommitLocked(grp, req)
	}
	if req.Generation < 0 && grp.state == stateEmpty {
		return 0
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if code := grp.validateMember(req.MemberID, req.InstanceID); code != 0 {
			return code
		}
		if req.Generation != grp.generation {
			return errIllegalGeneration
		}
	} else if grp.state != stateEmpty {
		return errUnknownMemberID
	}
	if grp.state == stateCompletingRebalance {
		return errRebalanceInProgress
	}
	// A commit keeps a classic member's session alive.
	if m := grp.byID[req.MemberID]; m != nil && (grp.state == stateStable || grp.state == statePreparingRebalance) {
		g.rescheduleHeartbeatLocked(grp, m, msDuration(m.sessionTimeoutMs))
	}
	return 0
}

// utf16Len is Java's String.length(), which offset.metadata.max.bytes is
// checked against.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// OffsetFetch handles OffsetFetch v1-v9 (v8+ for several groups at once).
// Null topics fetch every committed partition of the group.
func (g *Groups) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	g.lock()
	defer g.unlock()
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var want []fetchTopic
			if rg.Topics != nil {
				want = make([]fetchTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					want = append(want, fetchTopic{t.Topic, t.Partitions})
				}
			}
			code, topics := g.fetchLocked(rg.Group, want, rg.Topics == nil, req.RequireStable, rg.MemberID, rg.MemberEpoch)
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group, sg.ErrorCode = rg.Group, code
			for _, t := range topics {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = t.topic
				for _, p := range t.parts {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.partition, p.offset, p.leaderEpoch, p.metadata, p.code
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}
	var want []fetchTopic
	for _, t := range req.Topics {
		want = append(want, fetchTopic{t.Topic, t.Partitions})
	}
	all := req.Topics == nil && req.Version >= 2
	code, topics := g.fetchLocked(req.Group, want, all, req.RequireStable, nil, -1)
	if req.Version >= 2 {
		resp.ErrorCode = code
	}
	for _, t := range topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.topic
		for _, p := range t.parts {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.partition, p.offset, p.leaderEpoch, p.metadata, p.code
			if req.Version < 2 && code != 0 {
				sp.ErrorCode = code // v1 has no group-level error
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

type fetchTopic struct {
	topic      string
	partitions []int32
}

type fetchedTopic struct {
	topic string
	parts []fetchedPartition
}

type fetchedPartition struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    *string
	code        int16
}

func (g *Groups) fetchLocked(groupID string, want []fetchTopic, all, requireStable bool, memberID *string, memberEpoch int32) (int16, []fetchedTopic) {
	if g.mu.closed {
		return errCoordinatorNotAvailable, nil
	}
	grp := g.mu.groups[groupID]
	if grp != nil && grp.state == stateDead {
		grp = nil // being deleted: as if already gone
	}
	if grp != nil && grp.kind == kindConsumer {
		if code := g.validateConsumerFetchLocked(grp, memberID, memberEpoch); code != 0 {
			return code, nil
		}
	}
	if grp != nil && grp.kind == kindStreams {
		if code := g.validateStreamsFetchLocked(grp, memberID, memberEpoch); code != 0 {
			return code, nil
		}
	}
	var offsets map[string]map[int32]*offsetEntry
	if grp != nil {
		offsets = g.mu.offsets[groupID]
	}
	answer := func(topic string, p int32, e *offsetEntry) fetchedPartition {
		if requireStable && g.mu.txn.hasPending(groupID, topic, p) {
			return fetchedPartition{partition: p, offset: -1, leaderEpoch: -1, metadata: strPtr(""), code: kerr.UnstableOffsetCommit.Code}
		}
		if e == nil {
			return fetchedPartition{partition: p, offset: -1, leaderEpoch: -1, metadata: strPtr("")}
		}
		return fetchedPartition{partition: p, offset: e.offset, leaderEpoch: e.leaderEpoch, metadata: strPtr(e.metadata)}
	}
	var out []fetchedTopic
	if all {
		names := make([]string, 0, len(offsets))
		for t := range offsets {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			ft := fetchedTopic{topic: t}
			ps := make([]int32, 0, len(offsets[t]))
			for p := range offsets[t] {
				ps = append(ps, p)
			}
			slices.Sort(ps)
			for _, p := range ps {
				ft.parts = append(ft.parts, answer(t, p, offsets[t][p]))
			}
			out = append(out, ft)
		}
		return 0, out
	}
	for _, w := range want {
		ft := fetchedTopic{topic: w.topic, parts: make([]fetchedPartition, 0, len(w.partitions))}
		for _, p := range w.partitions {
			ft.parts = append(ft.parts, answer(w.topic, p, offsets[w.topic][p]))
		}
		out = append(out, ft)
	}
	return 0, out
}

// OffsetDelete handles OffsetDelete v0: it deletes a group's committed
// offsets for topics no live member consumes.
func (g *Groups) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	ch := make(chan int16, 1)
	g.lock()
	code, topics := g.offsetDeleteLocked(req, ch)
	g.unlock()
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	code, waitCode := await(ctx, g.closing, ch)
	if waitCode != 0 {
		code = waitCode
	}
	if code != 0 {
		resp.ErrorCode = code // a failed write fails the whole request, as in Kafka
		return resp
	}
	resp.Topics = topics
	return resp
}

func (g *Groups) offsetDeleteLocked(req *kmsg.OffsetDeleteRequest, ch chan int16) (int16, []kmsg.OffsetDeleteResponseTopic) {
	if g.mu.closed {
		return errCoordinatorNotAvailable, nil
	}
	if req.Group == "" {
		return errInvalidGroupID, nil
	}
	grp := g.mu.groups[req.Group]
	if grp == nil || grp.state == stateDead {
		return errGroupIDNotFound, nil
	}
	if grp.kind == kindClassic && grp.protocolType != consumerProtocolType {
		switch grp.state {
		case stateStable, statePreparingRebalance, stateCompletingRebalance:
			return errNonEmptyGroup, nil
		}
	}
	var out []kmsg.OffsetDeleteResponseTopic
	var records []kv
	type tp struct {
		topic     string
		partition int32
	}
	var deleted []tp
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		_, exists := g.topics.PartitionCount(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !exists:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case grp.isSubscribedToTopic(t.Topic):
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case g.offsetLocked(req.Group, t.Topic, p.Partition) != nil || g.mu.txn.hasPending(req.Group, t.Topic, p.Partition):
				records = append(records, kv{key: offsetCommitKey(req.Group, t.Topic, p.Partition)})
				deleted = append(deleted, tp{t.Topic, p.Partition})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	groupID := req.Group
	g.enqueueLocked(groupID, records, func(_ int64, err error) {
		if err != nil {
			ch <- appendErrorCode(err)
			return
		}
		for _, d := range deleted {
			g.deleteOffsetLocked(groupID, d.topic, d.partition)
		}
		ch <- 0
	})
	return 0, out
}
