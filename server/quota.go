package server

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffmq/skiff/clusterstate"
)

// Client quota enforcement, as Kafka's ClientQuotaManager does it: each
// (user, client-id) is matched to the most specific stored quota for the
// quota type, the values it records are summed into a windowed rate
// (quota.window.num=11 samples of quota.window.size.seconds=1), and when
// the rate goes over the quota the client is told to wait
// (throttle_time_ms) and its connection is muted for that time.
//
// The hot path stays cheap when no quota is stored: throttleFor returns at
// once when the cluster state holds no quotas at all.

// Quota types, named by their config key.
const (
	quotaProduce  = "producer_byte_rate"
	quotaFetch    = "consumer_byte_rate"
	quotaRequest  = "request_percentage"
	quotaMutation = "controller_mutation_rate"
)

const (
	quotaWindowSamples = 11          // Kafka's quota.window.num
	quotaWindowMs      = int64(1000) // Kafka's quota.window.size.seconds, in ms
)

// quotaManager holds the rates of the clients that a quota applies to. One
// per server; the lock guards only the sensor maps (each sensor has its own
// lock), and nothing else is taken under it.
type quotaManager struct {
	meta *cluster
	// index is the lookup built from the last quota snapshot seen.
	index atomic.Pointer[quotaIndex]

	mu      sync.Mutex
	sensors map[quotaSensorKey]*windowedRate // guarded by mu
	buckets map[quotaSensorKey]*tokenBucket  // controller mutations; guarded by mu
	pruned  time.Time                        // last pruneLocked; guarded by mu
}

// quotaSensorIdle is how long a client's rate is kept unused: Kafka's
// sensors for quotas expire after an hour without a recording. Past the
// window a rate is zero anyway, so dropping it changes nothing.
const quotaSensorIdle = time.Hour

// quotaSensorKey names one rate: a quota type and the (user, client-id)
// pair the matched quota's level shares it by. A quota on a user alone is
// shared by all that user's client ids, so client is "" there, as Kafka's
// metric tags are.
type quotaSensorKey struct {
	kind, user, client string
}

// quotaIndex maps canonical entity keys to their values, for one snapshot
// of the stored quotas.
type quotaIndex struct {
	src    []clusterstate.Quota
	values map[string]map[string]float64
}

func newQuotaManager(meta *cluster) *quotaManager {
	return &quotaManager{meta: meta, sensors: map[quotaSensorKey]*windowedRate{}, buckets: map[quotaSensorKey]*tokenBucket{}}
}

// lookup returns the index for the current snapshot, rebuilding it when
// the snapshot changed. Snapshots are never modified, so the identity of
// their first element names them.
func (m *quotaManager) lookup() *quotaIndex {
	qs := m.meta.clientQuotas()
	if len(qs) == 0 {
		return nil
	}
	if ix := m.index.Load(); ix != nil && len(ix.src) == len(qs) && &ix.src[0] == &qs[0] {
		return ix
	}
	ix := &quotaIndex{src: qs, values: make(map[string]map[string]float64, len(qs))}
	for _, q := range qs {
		ix.values[clusterstate.QuotaEntityKey(q.Entity)] = q.Values
	}
	m.index.Store(ix)
	return ix
}

// quotaLevel is one place in Kafka's precedence: which entity parts it
// names (exact name or the default), and which of user and client-id the
// rate is shared by.
type quotaLevel struct {
	user, client         int // 0: absent, 1: exact name, 2: default
	perUser, perClientID bool
}

// quotaLevels is Kafka's precedence, most specific first:
// /config/users/<user>/clients/<client-id>, .../clients/<default>,
// /config/users/<user>, /config/users/<default>/clients/<client-id>,
// .../<default>/clients/<default>, /config/users/<default>,
// /config/clients/<client-id>, /config/clients/<default>.
var quotaLevels = []quotaLevel{
	{user: 1, client: 1, perUser: true, perClientID: true},
	{user: 1, client: 2, perUser: true, perClientID: true},
	{user: 1, perUser: true},
	{user: 2, client: 1, perUser: true, perClientID: true},
	{user: 2, client: 2, perUser: true, perClientID: true},
	{user: 2, perUser: true},
	{client: 1, perClientID: true},
	{client: 2, perClientID: true},
}

func quotaLevelKey(l quotaLevel, user, client string) string {
	var parts []clusterstate.QuotaEntityPart // canonical order: client-id before user
	add := func(typ string, how int, name string) {
		switch how {
		case 1:
			parts = append(parts, clusterstate.QuotaEntityPart{Type: typ, Name: &name})
		case 2:
			parts = append(parts, clusterstate.QuotaEntityPart{Type: typ})
		}
	}
	add(quotaClientID, l.client, client)
	add(quotaUser, l.user, user)
	return clusterstate.QuotaEntityKey(parts)
}

// match returns the quota of kind that applies to (user, client) and the
// key of the rate it is measured by; ok is false when none applies.
func (ix *quotaIndex) match(kind, user, client string) (limit float64, key quotaSensorKey, ok bool) {
	for _, l := range quotaLevels {
		vals := ix.values[quotaLevelKey(l, user, client)]
		v, found := vals[kind]
		if !found {
			continue
		}
		key = quotaSensorKey{kind: kind}
		if l.perUser {
			key.user = user
		}
		if l.perClientID {
			key.client = client
		}
		return v, key, true
	}
	return 0, quotaSensorKey{}, false
}

// quotaUserName is the user a principal's quotas are keyed by: the name
// after "User:" (ANONYMOUS on a PLAINTEXT listener).
func quotaUserName(principal string) string {
	return strings.TrimPrefix(principal, "User:")
}

func (m *quotaManager) sensor(key quotaSensorKey) *windowedRate {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.sensors[key]
	if r == nil {
		m.pruneLocked(time.Now())
		r = &windowedRate{}
		m.sensors[key] = r
	}
	return r
}

// pruneLocked drops the rates and buckets of clients idle for
// quotaSensorIdle, so that client ids that come and go do not grow the
// maps without bound. It runs when a rate is created, at most once a
// minute, and takes each sensor's lock under m.mu (the order is m.mu, then
// a sensor's; nothing takes m.mu under a sensor's lock).
func (m *quotaManager) pruneLocked(now time.Time) {
	if now.Sub(m.pruned) < time.Minute {
		return
	}
	m.pruned = now
	cutoff := now.Add(-quotaSensorIdle).UnixMilli()
	for k, r := range m.sensors {
		r.mu.Lock()
		last := r.samples[r.current].start
		r.mu.Unlock()
		if last < cutoff {
			delete(m.sensors, k)
		}
	}
	for k, b := range m.buckets {
		b.mu.Lock()
		last := b.last
		b.mu.Unlock()
		if last < cutoff {
			delete(m.buckets, k)
		}
	}
}

// record adds value to the client's rate for kind and returns how long the
// client must wait for the rate to come back to the quota (zero when under
// it or when no quota applies).
func (m *quotaManager) record(kind, principal, client string, value float64, now time.Time) time.Duration {
	ix := m.lookup()
	if ix == nil {
		return 0
	}
	limit, key, ok := ix.match(kind, quotaUserName(principal), client)
	if !ok {
		return 0
	}
	return m.sensor(key).recordThrottle(value, limit, now.UnixMilli())
}

// unrecord takes back a value recorded for a fetch that was then answered
// empty because it was throttled (Kafka's unrecordQuotaSensor).
func (m *quotaManager) unrecord(kind, principal, client string, value float64, now time.Time) {
	ix := m.lookup()
	if ix == nil {
		return
	}
	if _, key, ok := ix.match(kind, quotaUserName(principal), client); ok {
		m.sensor(key).add(-value, now.UnixMilli())
	}
}

// maxInWindow is the most a single value may be and still not be certain
// to be throttled: the quota times the window's full samples. Fetch caps
// its size to it. Zero means no quota applies.
func (m *quotaManager) maxInWindow(kind, principal, client string) float64 {
	ix := m.lookup()
	if ix == nil {
		return 0
	}
	limit, _, ok := ix.match(kind, quotaUserName(principal), client)
	if !ok {
		return 0
	}
	return limit * float64(quotaWindowSamples-1) * float64(quotaWindowMs) / 1000
}

// windowedRate is Kafka's SampledStat with a Rate over it: values are
// summed into samples of quotaWindowMs each, samples older than the whole
// window are dropped, and the rate divides the sum by the time the samples
// cover, counted as at least quotaWindowSamples-1 whole windows so that a
// new client's first requests do not measure as a huge rate.
type windowedRate struct {
	mu      sync.Mutex
	samples [quotaWindowSamples]rateSample // guarded by mu
	current int                            // guarded by mu
}

type rateSample struct {
	start int64 // ms; when the sample's first value was recorded
	value float64
	used  bool
}

func (r *windowedRate) add(v float64, nowMs int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(v, nowMs)
}

func (r *windowedRate) addLocked(v float64, nowMs int64) {
	s := &r.samples[r.current]
	if !s.used {
		*s = rateSample{start: nowMs, used: true}
	} else if nowMs >= s.start+quotaWindowMs {
		r.current = (r.current + 1) % quotaWindowSamples
		s = &r.samples[r.current]
		*s = rateSample{start: nowMs, used: true}
	}
	s.value += v
}

// recordThrottle adds v and, if the rate is then over limit, returns the
// time for it to come back to limit with nothing more recorded: the excess
// over the limit, relative to it, times the window (Kafka's
// QuotaUtils.throttleTime).
func (r *windowedRate) recordThrottle(v, limit float64, nowMs int64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(v, nowMs)
	rate, windowMs := r.rateLocked(nowMs)
	if rate <= limit {
		return 0
	}
	ms := (rate - limit) / limit * float64(windowMs)
	return time.Duration(ms) * time.Millisecond
}

// rateLocked returns the rate per second and the window it covers in ms.
func (r *windowedRate) rateLocked(nowMs int64) (float64, int64) {
	var total float64
	oldest := nowMs
	for i := range r.samples {
		s := &r.samples[i]
		if !s.used {
			continue
		}
		if nowMs-s.start >= quotaWindowSamples*quotaWindowMs {
			*s = rateSample{start: nowMs, used: true} // obsolete: reset, as Kafka purges
		}
		total += s.value
		oldest = min(oldest, s.start)
	}
	elapsed := nowMs - oldest
	if full := elapsed / quotaWindowMs; full < quotaWindowSamples-1 {
		elapsed += (quotaWindowSamples - 1 - full) * quotaWindowMs
	}
	elapsed = max(elapsed, 1)
	return total / (float64(elapsed) / 1000), elapsed
}
