package server

import (
	"sync"
	"time"
)

// controller_mutation_rate (KIP-599) limits how many partitions a client
// creates or deletes per second with CreateTopics, CreatePartitions and
// DeleteTopics. Kafka measures it with a token bucket, not the windowed
// rate: the bucket holds up to the quota times the whole window
// (quota.window.num x quota.window.size.seconds) and refills at the quota.
// From CreateTopics v6, CreatePartitions v3 and DeleteTopics v5 the quota
// is strict: once the bucket is empty a topic's mutation is refused with
// THROTTLING_QUOTA_EXCEEDED (a mutation that finds tokens left is accepted
// whole, even if it drives the bucket below zero). Older versions cannot
// carry that error, so their mutations are accepted and the client is
// throttled instead.

// Versions from which the mutation quota is strict (Kafka's
// strictSinceVersion for each API).
const (
	createTopicsStrictQuota     = 6
	createPartitionsStrictQuota = 3
	deleteTopicsStrictQuota     = 5
)

// tokenBucket is Kafka's TokenBucket stat, with its own lock.
type tokenBucket struct {
	mu     sync.Mutex
	tokens float64 // guarded by mu
	last   int64   // ms of the last refill; guarded by mu
	used   bool    // guarded by mu
}

// refillLocked brings the bucket up to now: full the first time, then the
// quota per second elapsed, never over the burst.
func (b *tokenBucket) refillLocked(limit float64, nowMs int64) {
	burst := limit * quotaWindowSamples * float64(quotaWindowMs) / 1000
	if !b.used {
		b.tokens, b.last, b.used = burst, nowMs, true
		return
	}
	b.tokens = min(burst, b.tokens+limit*float64(nowMs-b.last)/1000)
	b.last = nowMs
}

// throttleLocked is the time for the bucket to refill to zero: Kafka's
// ControllerMutationQuotaManager.throttleTimeMs.
func (b *tokenBucket) throttleLocked(limit float64) time.Duration {
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens/limit*1000) * time.Millisecond
}

// mutationQuota is one request's view of its client's mutation quota. A
// nil *mutationQuota (no quota applies) accepts everything.
type mutationQuota struct {
	bucket *tokenBucket
	limit  float64
	strict bool
	// throttle is what the response says, the longest throttle seen.
	throttle time.Duration
}

// mutationQuotaFor returns the quota for r's client, strict from version
// strictSince, or nil when none applies.
func (s *Server) mutationQuotaFor(r *request, strictSince int16) *mutationQuota {
	m := s.quotas
	ix := m.lookup()
	if ix == nil {
		return nil
	}
	limit, key, ok := ix.match(quotaMutation, quotaUserName(r.auth.principal), r.clientID)
	if !ok {
		return nil
	}
	m.mu.Lock()
	b := m.buckets[key]
	if b == nil {
		m.pruneLocked(time.Now())
		b = &tokenBucket{}
		m.buckets[key] = b
	}
	m.mu.Unlock()
	return &mutationQuota{bucket: b, limit: limit, strict: r.version >= strictSince}
}

// record takes partitions mutations from the bucket. It returns false when
// a strict quota refuses them: the topic gets THROTTLING_QUOTA_EXCEEDED.
func (q *mutationQuota) record(partitions int32) bool {
	if q == nil {
		return true
	}
	b := q.bucket
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(q.limit, time.Now().UnixMilli())
	if q.strict && b.tokens < 0 {
		q.throttle = max(q.throttle, b.throttleLocked(q.limit))
		return false
	}
	b.tokens -= float64(partitions)
	if !q.strict {
		q.throttle = max(q.throttle, b.throttleLocked(q.limit))
	}
	return true
}

// done hands the request's throttle to the connection.
func (q *mutationQuota) done(r *request) {
	if q != nil {
		r.throttle = max(r.throttle, q.throttle)
	}
}
