package server

import (
	"math"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/coordinator/share"
	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
)

// Share groups (KIP-932) with Kafka 4.2's versions: ShareGroupHeartbeat
// v1, ShareGroupDescribe v1, ShareFetch v1-v2, ShareAcknowledge v1-v2 (v0
// was Kafka 4.0's early access and is gone since 4.1).
func init() {
	register(kmsg.ShareGroupHeartbeat, 1, 1, (*Server).handleShareGroupHeartbeat)
	register(kmsg.ShareGroupDescribe, 1, 1, (*Server).handleShareGroupDescribe)
	register(kmsg.ShareFetch, 1, 2, (*Server).handleShareFetch)
	register(kmsg.ShareAcknowledge, 1, 2, (*Server).handleShareAcknowledge)
}

// defaultShareMaxRecords applies when a ShareFetch asks for no limit.
const defaultShareMaxRecords = 500

func (s *Server) handleShareGroupHeartbeat(r *request) (kmsg.Response, error) {
	if resp := s.shareGroupsDisabled(r.kreq); resp != nil {
		return resp, nil
	}
	host := r.remote.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	req := r.kreq.(*kmsg.ShareGroupHeartbeatRequest)
	if req.MemberEpoch == 0 && req.GroupID != "" && !s.shares.Has(req.GroupID) && s.isNonShareGroup(r, req.GroupID) {
		// As Kafka: a group id names one group of one type.
		resp := kmsg.NewPtrShareGroupHeartbeatResponse()
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + req.GroupID + " is not a share group."
		resp.ErrorMessage = &msg
		return resp, nil
	}
	return s.shares.Heartbeat(req, r.clientID, "/"+host), nil
}

// isNonShareGroup reports whether the group coordinator (classic and
// consumer groups, and groups with only committed offsets) has group.
func (s *Server) isNonShareGroup(r *request, group string) bool {
	list := kmsg.NewPtrListGroupsRequest()
	list.Version = 5
	for _, g := range s.groups.ListGroups(groupContext(r), list).Groups {
		if g.Group == group {
			return true
		}
	}
	return false
}

func (s *Server) handleShareGroupDescribe(r *request) (kmsg.Response, error) {
	if resp := s.shareGroupsDisabled(r.kreq); resp != nil {
		return resp, nil
	}
	req := r.kreq.(*kmsg.ShareGroupDescribeRequest)
	req.GroupIDs = distinctStrings(req.GroupIDs)
	return s.shares.Describe(req), nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func ackBatches[T any](in []T, get func(T) (int64, int64, []int8)) []share.Batch {
	out := make([]share.Batch, 0, len(in))
	for _, b := range in {
		first, last, types := get(b)
		sb := share.Batch{First: first, Last: last, Types: make([]share.AckType, len(types))}
		for i, t := range types {
			sb.Types[i] = share.AckType(t)
		}
		out = append(out, sb)
	}
	return out
}

func (s *Server) handleShareFetch(r *request) (kmsg.Response, error) {
	if resp := s.shareGroupsDisabled(r.kreq); resp != nil {
		return resp, nil
	}
	req := r.kreq.(*kmsg.ShareFetchRequest)
	resp := kmsg.NewPtrShareFetchResponse()
	resp.Version = req.Version
	group, member := deref(req.GroupID), deref(req.MemberID)
	fail := func(err *kerr.Error) (kmsg.Response, error) {
		resp.ErrorCode = err.Code
		return resp, nil
	}
	if group == "" || member == "" {
		return fail(kerr.InvalidRequest)
	}
	resp.AcquisitionLockTimeoutMillis = int32(s.shares.LockDuration(group) / time.Millisecond)

	var add, forget []share.TopicPartition
	acks := make(map[share.TopicPartition][]share.Batch)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tp := share.TopicPartition{TopicID: t.TopicID, Partition: p.Partition}
			add = append(add, tp)
			if len(p.AcknowledgementBatches) > 0 {
				acks[tp] = append(acks[tp], ackBatches(p.AcknowledgementBatches, func(b kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) (int64, int64, []int8) {
					return b.FirstOffset, b.LastOffset, b.AcknowledgeTypes
				})...)
			}
		}
	}
	for _, t := range req.ForgottenTopicsData {
		for _, p := range t.Partitions {
			forget = append(forget, share.TopicPartition{TopicID: t.TopicID, Partition: p})
		}
	}
	if req.ShareSessionEpoch == 0 && len(acks) > 0 {
		return fail(kerr.InvalidRequest) // acknowledging needs an open session
	}
	// KIP-1222: a renewing ShareFetch (v2, IsRenewAck) only acknowledges;
	// it fetches nothing, so its fetch limits must be 0, and RENEW
	// acknowledgements come only in such a request.
	if req.IsRenewAck && (req.MaxWaitMillis != 0 || req.MinBytes != 0 || req.MaxBytes != 0 || req.MaxRecords != 0) {
		return fail(kerr.InvalidRequest)
	}
	if !req.IsRenewAck && hasRenew(acks) {
		return fail(kerr.InvalidRequest)
	}
	if req.ShareSessionEpoch != -1 && !s.shares.IsMember(group, member) {
		return fail(kerr.UnknownMemberID)
	}
	tps, err := s.shares.FetchSession(group, member, req.ShareSessionEpoch, add, forget)
	if err != nil {
		return fail(err.(*kerr.Error))
	}
	parts := make(map[share.TopicPartition]*kmsg.ShareFetchResponseTopicPartition)
	partFor := func(tp share.TopicPartition) *kmsg.ShareFetchResponseTopicPartition {
		if p, ok := parts[tp]; ok {
			return p
		}
		p := kmsg.NewShareFetchResponseTopicPartition()
		p.Partition = tp.Partition
		// As Kafka: this broker leads every partition, at its epoch.
		p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = s.cfg.NodeID, partitionLeaderEpoch
		parts[tp] = &p
		return &p
	}

	for tp, err := range s.shares.Acknowledge(group, member, acks) {
		p := partFor(tp)
		if err != nil {
			p.AcknowledgeErrorCode = errCode(err)
		}
	}
	if req.ShareSessionEpoch == -1 {
		s.shares.ReleaseMember(group, member)
		return s.shareFetchResponse(resp, parts), nil
	}
	if req.IsRenewAck {
		return s.shareFetchResponse(resp, parts), nil
	}

	maxRecords := int(req.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = defaultShareMaxRecords
	}
	if req.MaxBytes <= 0 {
		// As Kafka's SharePartitionManager.processShareFetch: no bytes
		// asked for, nothing fetched.
		return s.shareFetchResponse(resp, parts), nil
	}
	var live []share.TopicPartition
	for _, tp := range tps {
		if name, ok := (topicLookup{s.meta}).TopicNameByID(tp.TopicID); !ok || s.meta.partition(name, tp.Partition) == nil {
			partFor(tp).ErrorCode = kerr.UnknownTopicID.Code
			continue
		}
		live = append(live, tp)
	}
	readCommitted := s.shares.GroupConfigs(group)[share.ConfigIsolationLevel] == "read_committed"
	// KIP-1206: in batch-optimized mode (ShareAcquireMode 0) acquired
	// records are answered in ranges of about BatchSize, cut at log batch
	// boundaries; record-limit mode answers them as they are.
	batchSize := 0
	if req.ShareAcquireMode == 0 && req.BatchSize > 0 {
		batchSize = int(req.BatchSize)
	}
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		// Take the wake-up channels before acquiring, so that an append or a
		// released lock in between is not missed.
		waits := []<-chan struct{}{s.shares.Changed()}
		for _, tp := range live {
			name, _ := (topicLookup{s.meta}).TopicNameByID(tp.TopicID)
			if p := s.meta.partition(name, tp.Partition); p != nil {
				waits = append(waits, p.Log.Wait())
			}
		}
		got := s.shares.AcquireBelow(group, member, live, maxRecords, s.shareFetchEnds(group, live, int(req.MaxBytes)))
		if len(got) > 0 {
			for tp, acq := range got {
				s.fillShareRecords(partFor(tp), tp, acq, group, member, readCommitted, batchSize)
			}
			break
		}
		wait := time.Until(deadline)
		if wait <= 0 || !waitAny(r.ctx, waits, wait) {
			break
		}
	}
	return s.shareFetchResponse(resp, parts), nil
}

// shareFetchEnds bounds what a ShareFetch acquires by its MaxBytes, as
// Kafka's DelayedShareFetch does: the bytes are shared evenly among the
// partitions (PartitionMaxBytesStrategy UNIFORM), each partition's log is
// read from its next fetch offset within its share, and only offsets in
// the batches read may be acquired. The first partition that has data
// gives at least one whole batch, however large (Kafka's minOneMessage).
// The logs are read here, outside the share coordinator's lock; the
// result is the exclusive end offset per partition.
func (s *Server) shareFetchEnds(group string, tps []share.TopicPartition, maxBytes int) map[share.TopicPartition]int64 {
	if len(tps) == 0 {
		return nil
	}
	per := max(maxBytes/len(tps), 1)
	ends := make(map[share.TopicPartition]int64, len(tps))
	minOne := true
	offs := s.shares.NextFetchOffsets(group, tps)
	for _, tp := range tps {
		off, ok := offs[tp]
		if !ok {
			continue
		}
		name, _ := (topicLookup{s.meta}).TopicNameByID(tp.TopicID)
		part := s.meta.partition(name, tp.Partition)
		if part == nil {
			continue
		}
		// ReadFile reads only batch headers: where the batches a read of
		// per bytes would return end, without reading the records.
		fr, err := part.Log.ReadFile(off, per, minOne, math.MaxInt64)
		if err != nil {
			continue // unbounded: Acquire meets the same log
		}
		ends[tp] = off
		if fr.Size > 0 {
			ends[tp] = fr.NextOffset
			minOne = false
		}
		fr.Release()
	}
	return ends
}

// waitAny waits until one of chans is closed (true), or d passes or ctx
// ends (false).
func waitAny(ctx interface{ Done() <-chan struct{} }, chans []<-chan struct{}, d time.Duration) bool {
	woke := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	for _, ch := range chans {
		go func(ch <-chan struct{}) {
			select {
			case <-ch:
				select {
				case woke <- struct{}{}:
				default:
				}
			case <-stop:
			}
		}(ch)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-woke:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// fillShareRecords reads the batches that hold the acquired offsets.
// Whole batches go out as stored; the client delivers only the offsets in
// AcquiredRecords, as Kafka's clients do. Under read_committed the records
// of aborted transactions are archived at once and left out of
// AcquiredRecords, as Kafka's share-partitions do.
func (s *Server) fillShareRecords(p *kmsg.ShareFetchResponseTopicPartition, tp share.TopicPartition, acq []share.Acquired, group, member string, readCommitted bool, batchSize int) {
	name, _ := (topicLookup{s.meta}).TopicNameByID(tp.TopicID)
	part := s.meta.partition(name, tp.Partition)
	if part == nil {
		p.ErrorCode = kerr.UnknownTopicID.Code
		return
	}
	last := acq[len(acq)-1].Last
	var aborted []storage.AbortedTxn
	if readCommitted {
		aborted = part.Log.AbortedTxns(acq[0].First, last+1)
	}
	var abortedRanges [][2]int64
	var bases []int64 // base offsets of the batches read
	const chunk = 1 << 20
	var records []byte
	for off := acq[0].First; off <= last && len(records) < 64<<20; {
		rr, err := part.Log.Read(off, chunk, true)
		if err != nil || len(rr.Records) == 0 {
			break
		}
		records = append(records, rr.Records...)
		next := off
		for rest := rr.Records; len(rest) >= protocol.BatchHeaderSize; {
			h, err := protocol.ParseBatchHeader(rest)
			if err != nil || h.Size() > len(rest) {
				break
			}
			bases = append(bases, h.BaseOffset)
			if h.IsTransactional() && !h.IsControl() && inAbortedTxn(aborted, h.ProducerID, h.BaseOffset) {
				abortedRanges = append(abortedRanges, [2]int64{h.BaseOffset, h.LastOffset()})
			}
			next = h.LastOffset() + 1
			rest = rest[h.Size():]
		}
		if next <= off {
			break
		}
		off = next
	}
	p.Records = records
	if len(abortedRanges) > 0 {
		acq = s.archiveAborted(group, member, tp, acq, abortedRanges)
	}
	if batchSize > 0 {
		acq = splitAtBatches(acq, bases, batchSize)
	}
	for _, a := range acq {
		p.AcquiredRecords = append(p.AcquiredRecords, kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{
			FirstOffset: a.First, LastOffset: a.Last, DeliveryCount: a.DeliveryCount,
		})
	}
}

// splitAtBatches cuts acquired ranges longer than size at log batch
// boundaries (bases, ascending), as Kafka's SharePartition.createBatches:
// a range is closed before the first batch that starts size or more
// offsets after it began.
func splitAtBatches(acq []share.Acquired, bases []int64, size int) []share.Acquired {
	var out []share.Acquired
	for _, a := range acq {
		if a.Last-a.First+1 <= int64(size) {
			out = append(out, a)
			continue
		}
		cur := a.First
		for _, b := range bases {
			if b <= cur {
				continue
			}
			if b > a.Last {
				break
			}
			if b-cur >= int64(size) {
				out = append(out, share.Acquired{First: cur, Last: b - 1, DeliveryCount: a.DeliveryCount})
				cur = b
			}
		}
		out = append(out, share.Acquired{First: cur, Last: a.Last, DeliveryCount: a.DeliveryCount})
	}
	return out
}

func inAbortedTxn(aborted []storage.AbortedTxn, pid, offset int64) bool {
	for _, a := range aborted {
		if a.ProducerID == pid && a.FirstOffset <= offset && offset <= a.LastOffset {
			return true
		}
	}
	return false
}

// archiveAborted archives the acquired offsets that fall in aborted
// ranges (a GAP acknowledgement by the member that holds them) and returns
// the acquired ranges without them.
func (s *Server) archiveAborted(group, member string, tp share.TopicPartition, acq []share.Acquired, aborted [][2]int64) []share.Acquired {
	var gaps []share.Batch
	var kept []share.Acquired
	for _, a := range acq {
		cur := a.First
		for _, r := range aborted {
			lo, hi := max(r[0], a.First), min(r[1], a.Last)
			if lo > hi || hi < cur {
				continue
			}
			lo = max(lo, cur)
			if lo > cur {
				kept = append(kept, share.Acquired{First: cur, Last: lo - 1, DeliveryCount: a.DeliveryCount})
			}
			gaps = append(gaps, share.Batch{First: lo, Last: hi, Types: []share.AckType{share.AckGap}})
			cur = hi + 1
		}
		if cur <= a.Last {
			kept = append(kept, share.Acquired{First: cur, Last: a.Last, DeliveryCount: a.DeliveryCount})
		}
	}
	if len(gaps) > 0 {
		s.shares.Acknowledge(group, member, map[share.TopicPartition][]share.Batch{tp: gaps})
	}
	return kept
}

func (s *Server) shareFetchResponse(resp *kmsg.ShareFetchResponse, parts map[share.TopicPartition]*kmsg.ShareFetchResponseTopicPartition) *kmsg.ShareFetchResponse {
	byTopic := make(map[[16]byte]int)
	for tp, p := range parts {
		i, ok := byTopic[tp.TopicID]
		if !ok {
			i = len(resp.Topics)
			byTopic[tp.TopicID] = i
			t := kmsg.NewShareFetchResponseTopic()
			t.TopicID = tp.TopicID
			resp.Topics = append(resp.Topics, t)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, *p)
	}
	return resp
}

// hasRenew reports whether any acknowledgement is a RENEW.
func hasRenew(acks map[share.TopicPartition][]share.Batch) bool {
	for _, batches := range acks {
		for _, b := range batches {
			for _, t := range b.Types {
				if t == share.AckRenew {
					return true
				}
			}
		}
	}
	return false
}

// errCode maps a coordinator error (always a *kerr.Error) to its code.
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	if ke, ok := err.(*kerr.Error); ok {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

func (s *Server) handleShareAcknowledge(r *request) (kmsg.Response, error) {
	if resp := s.shareGroupsDisabled(r.kreq); resp != nil {
		return resp, nil
	}
	req := r.kreq.(*kmsg.ShareAcknowledgeRequest)
	resp := kmsg.NewPtrShareAcknowledgeResponse()
	resp.Version = req.Version
	group, member := deref(req.GroupID), deref(req.MemberID)
	if group == "" || member == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	if req.Version >= 2 {
		resp.AcquisitionLockTimeoutMillis = int32(s.shares.LockDuration(group) / time.Millisecond)
	}
	if req.ShareSessionEpoch != -1 && !s.shares.IsMember(group, member) {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil
	}
	acks := make(map[share.TopicPartition][]share.Batch)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tp := share.TopicPartition{TopicID: t.TopicID, Partition: p.Partition}
			acks[tp] = append(acks[tp], ackBatches(p.AcknowledgementBatches, func(b kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch) (int64, int64, []int8) {
				return b.FirstOffset, b.LastOffset, b.AcknowledgeTypes
			})...)
		}
	}
	if !req.IsRenewAck && hasRenew(acks) {
		resp.ErrorCode = kerr.InvalidRequest.Code // RENEW needs IsRenewAck (KIP-1222)
		return resp, nil
	}
	if err := s.shares.AckSession(group, member, req.ShareSessionEpoch); err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	results := s.shares.Acknowledge(group, member, acks)
	if req.ShareSessionEpoch == -1 {
		s.shares.ReleaseMember(group, member)
	}
	byTopic := make(map[[16]byte]int)
	for tp, err := range results {
		i, ok := byTopic[tp.TopicID]
		if !ok {
			i = len(resp.Topics)
			byTopic[tp.TopicID] = i
			t := kmsg.NewShareAcknowledgeResponseTopic()
			t.TopicID = tp.TopicID
			resp.Topics = append(resp.Topics, t)
		}
		p := kmsg.NewShareAcknowledgeResponseTopicPartition()
		p.Partition = tp.Partition
		p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = s.cfg.NodeID, partitionLeaderEpoch
		if err != nil {
			p.ErrorCode = errCode(err)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
	}
	return resp, nil
}
