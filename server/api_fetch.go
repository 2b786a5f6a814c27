package server

import (
	"errors"
	"math"
	"reflect"
	"time"

	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.Fetch, 4, 18, (*Server).handleFetch) }

// partitionLeaderEpoch is the leader epoch of every partition: a single
// node is leader of everything and never changes.
const partitionLeaderEpoch = 0

func (s *Server) handleFetch(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if id := fetchReplicaID(req); s.repl != nil && id >= 0 {
		return s.repl.handleReplicaFetch(r, req, id)
	}

	useIDs := req.Version >= 13
	sess, incremental, code := s.fetchSessions.begin(req.SessionID, req.SessionEpoch, time.Now())
	if code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}

	// The partitions to answer for, in order: the request's for a full
	// fetch, the session's (after applying the request) for an incremental.
	var reqParts []fetchPartitionReq
	for _, rt := range req.Topics {
		name := s.fetchTopicName(useIDs, rt.Topic, rt.TopicID)
		for _, rp := range rt.Partitions {
			reqParts = append(reqParts, fetchPartitionReq{
				key:          sessionKey{topic: name, topicID: rt.TopicID, partition: rp.Partition},
				fetchOffset:  rp.FetchOffset,
				maxBytes:     rp.PartitionMaxBytes,
				currentEpoch: rp.CurrentLeaderEpoch,
			})
		}
	}
	reqParts = dedupeFetchPartitions(reqParts)
	var parts []*sessionPart
	if sess != nil {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		var forgotten []sessionKey
		for _, ft := range req.ForgottenTopics {
			name := s.fetchTopicName(useIDs, ft.Topic, ft.TopicID)
			for _, p := range ft.Partitions {
				forgotten = append(forgotten, sessionKey{topic: name, topicID: ft.TopicID, partition: p})
			}
		}
		parts = sess.updateLocked(reqParts, forgotten)
		resp.SessionID = sess.id
		if incremental {
			sess.epoch++
		}
	} else {
		for i := range reqParts {
			parts = append(parts, &sessionPart{key: reqParts[i].key, fetchOffset: reqParts[i].fetchOffset,
				maxBytes: reqParts[i].maxBytes, currentEpoch: reqParts[i].currentEpoch})
		}
	}

	readCommitted := req.IsolationLevel == 1
	// The broker's fetch.max.bytes caps what any request may ask for, and
	// min_bytes cannot exceed the cap (KafkaApis.handleFetchRequest).
	maxBytes := min(max(req.MaxBytes, 0), s.cfg.fetchMaxBytes)
	// Nor more than the consumer quota allows in one window, which would
	// be throttled whatever came before (Kafka's maxValueInQuotaWindow).
	if q := s.quotas.maxInWindow(quotaFetch, r.auth.principal, r.clientID); q > 0 {
		maxBytes = min(maxBytes, int32(min(q, float64(1<<31-1))))
	}
	minBytes := min(req.MinBytes, maxBytes)
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		results, waits, bytes, anyErr := s.readPartitions(parts, int(maxBytes), readCommitted)
		remaining := time.Until(deadline)
		if bytes >= int(minBytes) || anyErr || remaining <= 0 {
			if t := s.fetchThrottle(r, bytes); t > 0 {
				// Kafka answers a throttled fetch with no records and does
				// not count them: the client fetches them again later.
				s.releaseResults(results, true)
				r.throttle = max(r.throttle, t)
				return resp, nil
			}
			files := s.fillFetchResponse(resp, parts, results, incremental, useIDs, readCommitted)
			countFetch(results)
			fr := &fetchResponse{FetchResponse: resp, files: files}
			// Results left out of an incremental response were not
			// handed to fr.
			s.releaseResults(results, false)
			return &heldResponse{Response: fr, release: func() {
				for _, f := range fr.files {
					s.dropRead(f.read)
				}
				fr.files = nil
				s.fetchPool.give(fr.copied)
				fr.copied = 0
			}}, nil
		}
		s.releaseResults(results, true) // dropped: read again after the wait
		if !s.waitForData(r, waits, remaining) {
			// Nothing new came: answer with a fresh read, as before the wait.
			deadline = time.Now()
		}
	}
}

// releaseResults drops the segment references of the results, all of
// them or those fillFetchResponse did not put in the response.
func (s *Server) releaseResults(results []fetchResult, all bool) {
	for i := range results {
		if results[i].file != nil && (all || !results[i].sent) {
			s.dropRead(results[i].file)
			results[i].file = nil
		}
	}
}

// dropRead releases a read's segment references; Stats counts the reads
// not yet dropped.
func (s *Server) dropRead(r *storage.FileRead) {
	r.Release()
	s.stats.fetchReadsHeld.Add(-1)
}

// dedupeFetchPartitions keeps one entry per partition, as Kafka does by
// collecting a request's partitions in a map (FetchRequest.fetchData): the
// first occurrence keeps its place and the last one's fields win. A
// request naming one partition many times must not read it many times.
func dedupeFetchPartitions(parts []fetchPartitionReq) []fetchPartitionReq {
	if len(parts) < 2 {
		return parts
	}
	at := make(map[sessionKey]int, len(parts))
	out := parts[:0]
	for _, p := range parts {
		if i, dup := at[p.key]; dup {
			out[i] = p
			continue
		}
		at[p.key] = len(out)
		out = append(out, p)
	}
	return out
}

// fetchTopicName resolves a fetched topic: by name before v13, by topic id
// from v13 (KIP-516); "" for an unknown id.
func (s *Server) fetchTopicName(useIDs bool, name string, id [16]byte) string {
	if !useIDs {
		return name
	}
	if t, ok := s.meta.topicByID(id); ok {
		return t.Name
	}
	return ""
}

// fetchResult is what was read for one partition.
type fetchResult struct {
	err               int16
	hw, lso, logStart int64
	// file is where the records are: segment file ranges, held until the
	// response is written. nil when nothing was read.
	file    *storage.FileRead
	from    int64                // the fetch offset the file was read from
	sent    bool                 // file was put in the response, which releases it
	aborted []storage.AbortedTxn // read_committed: aborted transactions overlapping records
	stats   *topicStats          // the topic's counters; nil for an unknown partition
}

func (r *fetchResult) size() int {
	if r.file == nil {
		return 0
	}
	return int(r.file.Size)
}

// readPartitions reads every partition once, honouring the response and
// per-partition byte limits and Kafka's rule that the first batch of the
// response is returned even if it exceeds them (so a consumer never stalls
// on a large batch). Reading takes only the file ranges of the records,
// not the records: nothing is copied, so nothing counts against
// fetch.memory.pool.bytes. It returns the bytes of records in the
// response.
func (s *Server) readPartitions(parts []*sessionPart, maxBytes int, readCommitted bool) (results []fetchResult, waits []<-chan struct{}, total int, anyErr bool) {
	results = make([]fetchResult, len(parts))
	waits = make([]<-chan struct{}, 0, len(parts))
	defer func() {
		if v := recover(); v != nil {
			s.releaseResults(results, true)
			panic(v)
		}
	}()
	for i, sp := range parts {
		res := &results[i]
		res.hw, res.lso, res.logStart = -1, -1, -1
		if sp.key.topic == "" {
			res.err = kerr.UnknownTopicID.Code
			anyErr = true
			continue
		}
		p := s.meta.partition(sp.key.topic, sp.key.partition)
		switch {
		case p == nil:
			res.err = kerr.UnknownTopicOrPartition.Code
			anyErr = true
			continue
		}
		if code := s.checkLeaderEpoch(p, sp.currentEpoch, true); code != nil {
			// Older: FENCED_LEADER_EPOCH; newer: UNKNOWN_LEADER_EPOCH; a
			// follower: NOT_LEADER_OR_FOLLOWER (no fetch from followers).
			res.err = code.Code
			anyErr = true
			continue
		}
		res.stats = p.Stats
		waits = append(waits, p.Log.Wait())
		limit := min(int(sp.maxBytes), maxBytes-total)
		if limit <= 0 && total > 0 {
			// The response is full: report the partition without reading it.
			res.hw, res.logStart = p.Log.HighWatermark(), p.Log.LogStartOffset()
			res.lso = min(p.Log.LastStableOffset(), res.hw)
			continue
		}
		// read_committed returns only batches below the last stable
		// offset, taken before the read so that the cut and the reported
		// offset agree.
		upTo := int64(math.MaxInt64)
		if readCommitted {
			upTo = p.Log.LastStableOffset()
		}
		fr, err := p.Log.ReadFile(sp.fetchOffset, max(limit, 0), total == 0, upTo)
		if err != nil {
			// A failed read reports no watermarks (-1), as Kafka's
			// ReplicaManager does for a read that threw: the consumer
			// resets from ListOffsets, not from these.
			res.err = fetchErrorCode(err)
			anyErr = true
			continue
		}
		res.hw, res.logStart = fr.HighWatermark, fr.LogStartOffset
		if readCommitted {
			res.lso = min(upTo, fr.HighWatermark)
		} else {
			res.lso = min(p.Log.LastStableOffset(), fr.HighWatermark)
		}
		if fr.Size == 0 {
			fr.Release()
			continue
		}
		res.file, res.from = &fr, sp.fetchOffset
		s.stats.fetchReadsHeld.Add(1)
		if readCommitted {
			res.aborted = p.Log.AbortedTxns(sp.fetchOffset, fr.NextOffset)
		}
		total += int(fr.Size)
	}
	return results, waits, total, anyErr
}

func fetchErrorCode(err error) int16 {
	switch {
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, storage.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	}
	return kerr.KafkaStorageError.Code
}

// waitForData parks until any partition's high watermark advances, the
// wait times out, or the request's context ends (the connection closes or
// the server stops). It reports
// whether the fetch should read again.
func (s *Server) waitForData(r *request, waits []<-chan struct{}, d time.Duration) bool {
	s.stats.parkedFetches.Add(1)
	defer s.stats.parkedFetches.Add(-1)
	timer := time.NewTimer(d)
	defer timer.Stop()
	cases := make([]reflect.SelectCase, 0, len(waits)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.ctx.Done())},
	)
	for _, w := range waits {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 2
}

// fillFetchResponse puts the results in resp and returns where the records
// of each partition are, which the response then owns (results[i].sent).
func (s *Server) fillFetchResponse(resp *kmsg.FetchResponse, parts []*sessionPart, results []fetchResult, incremental, useIDs, readCommitted bool) []fetchFile {
	var files []fetchFile
	var st *kmsg.FetchResponseTopic
	for i, sp := range parts {
		res := &results[i]
		if incremental && !sp.changed(res.hw, res.lso, res.logStart, res.size() > 0, res.err != 0) {
			continue
		} else if !incremental {
			sp.changed(res.hw, res.lso, res.logStart, true, true)
		}
		if st == nil || st.Topic != sp.key.topic || st.TopicID != sp.key.topicID {
			resp.Topics = append(resp.Topics, kmsg.NewFetchResponseTopic())
			st = &resp.Topics[len(resp.Topics)-1]
			st.Topic, st.TopicID = sp.key.topic, sp.key.topicID
		}
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = sp.key.partition
		rp.ErrorCode = res.err
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = res.hw, res.lso, res.logStart
		rp.PreferredReadReplica = -1
		if readCommitted {
			rp.AbortedTransactions = make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, 0, len(res.aborted))
			for _, a := range res.aborted {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				rp.AbortedTransactions = append(rp.AbortedTransactions, at)
			}
		}
		// Records are never null on the wire: librdkafka rejects a -1 size.
		// Those read are in files, sent by the connection writer.
		rp.RecordBatches = []byte{}
		if res.file != nil {
			files = append(files, fetchFile{topic: len(resp.Topics) - 1, partition: len(st.Partitions), read: res.file})
			res.sent = true
		}
		st.Partitions = append(st.Partitions, rp)
	}
	return files
}

// fetchThrottle records a fetch's bytes against consumer_byte_rate and
// returns the throttle; a throttled fetch's bytes are taken back, since it
// is answered empty.
func (s *Server) fetchThrottle(r *request, bytes int) time.Duration {
	now := time.Now()
	t := s.quotas.record(quotaFetch, r.auth.principal, r.clientID, float64(bytes), now)
	if t > 0 {
		s.quotas.unrecord(quotaFetch, r.auth.principal, r.clientID, float64(bytes), now)
	}
	return t
}
