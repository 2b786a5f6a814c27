package server

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiffmq/skiff/clusterstate"
)

// Connection creation rates (KIP-612), as Kafka's ConnectionQuotas limits
// them, each a windowed rate like the client quotas' (11 samples of 1 s):
//
//   - max.connection.creation.rate (broker-wide) and
//     listener.name.<l>.max.connection.creation.rate: over the rate, the
//     acceptor waits before it takes the connection (and so the ones
//     behind it, in the kernel's backlog) until the rate is back under
//     the limit. Nothing is refused.
//   - connection_creation_rate quotas on the ip entity, per address and
//     as the default for every address (AlterClientQuotas): a connection
//     that puts its address over the rate is not served, and is closed
//     once the rate is back under the limit, as Kafka's acceptor holds a
//     throttled socket and then closes it. It is not counted in the
//     broker's and listener's rates.
//
// A wait is at most one sample (1 s), Kafka's bound. As in Kafka, a new
// rate counts as spread over 10 s, so a first burst of ten seconds' worth
// of connections is taken at once.

// quotaConnectionRate is the ip entity's one quota.
const quotaConnectionRate = "connection_creation_rate"

// maxConnThrottle is Kafka's bound on a connection throttle: one quota
// sample (quota.window.size.seconds).
const maxConnThrottle = time.Duration(quotaWindowMs) * time.Millisecond

// connRates holds the connection creation rates. The broker's and each
// listener's rates are fixed at start; the addresses' rates are made as
// addresses connect, under mu (a leaf, like every windowedRate's lock).
type connRates struct {
	broker    limitedRate
	listeners map[string]*limitedRate // upper-case listener name
	quotas    func() []clusterstate.Quota

	index atomic.Pointer[ipRateIndex]
	mu    struct {
		sync.Mutex
		ips    map[netip.Addr]*windowedRate
		pruned time.Time
		held   map[net.Conn]*time.Timer // throttled, waiting to be closed
		closed bool
	}
}

// limitedRate is a rate and its limit; unlimited when limit is
// unlimitedConns, as Kafka's default Int.MaxValue.
type limitedRate struct {
	limit int
	rate  windowedRate
}

// ipRateIndex is the connection_creation_rate quotas of one snapshot of
// the stored quotas.
type ipRateIndex struct {
	src      []clusterstate.Quota
	perIP    map[netip.Addr]int
	fallback int // the default ip entity's; unlimitedConns when none
}

func newConnRates(brokerLimit int, listenerLimits map[string]int, quotas func() []clusterstate.Quota) *connRates {
	r := &connRates{broker: limitedRate{limit: brokerLimit}, listeners: map[string]*limitedRate{}, quotas: quotas}
	for l, n := range listenerLimits {
		r.listeners[l] = &limitedRate{limit: n}
	}
	r.mu.ips = map[netip.Addr]*windowedRate{}
	r.mu.held = map[net.Conn]*time.Timer{}
	return r
}

// record adds one connection and returns how long it must wait for the
// rate to come back to the limit, at most maxConnThrottle.
func (l *limitedRate) record(nowMs int64) time.Duration {
	if l == nil || l.limit == unlimitedConns {
		return 0
	}
	return boundedThrottle(&l.rate, l.limit, nowMs)
}

func (l *limitedRate) unrecord(nowMs int64) {
	if l != nil && l.limit != unlimitedConns {
		l.rate.add(-1, nowMs)
	}
}

func boundedThrottle(r *windowedRate, limit int, nowMs int64) time.Duration {
	if limit <= 0 {
		r.add(1, nowMs) // Kafka allows 0: every connection waits the most
		return maxConnThrottle
	}
	return min(r.recordThrottle(1, float64(limit), nowMs), maxConnThrottle)
}

// listenerThrottle records a connection on listener and in the broker's
// rate and returns the longer of their waits (Kafka's
// recordConnectionAndGetThrottleTimeMs).
func (r *connRates) listenerThrottle(listener string, now time.Time) time.Duration {
	ms := now.UnixMilli()
	return max(r.broker.record(ms), r.listeners[listener].record(ms))
}

// ipThrottle records a connection from ip against its
// connection_creation_rate and returns how long to hold it before
// closing it when that puts ip over the rate; zero lets it in. A
// throttled connection is taken back out of every rate it was counted in
// (Kafka's recordIpConnectionMaybeThrottle).
func (r *connRates) ipThrottle(listener string, ip netip.Addr, now time.Time) time.Duration {
	limit := r.ipLimit(ip)
	if limit == unlimitedConns {
		return 0
	}
	ms := now.UnixMilli()
	rate := r.ipRate(ip, now)
	d := boundedThrottle(rate, limit, ms)
	if d > 0 {
		rate.add(-1, ms)
		r.broker.unrecord(ms)
		r.listeners[listener].unrecord(ms)
	}
	return d
}

func (r *connRates) ipRate(ip netip.Addr, now time.Time) *windowedRate {
	r.mu.Lock()
	defer r.mu.Unlock()
	rate := r.mu.ips[ip]
	if rate == nil {
		r.pruneLocked(now)
		rate = &windowedRate{}
		r.mu.ips[ip] = rate
	}
	return rate
}

// pruneLocked drops the rates of addresses idle for quotaSensorIdle (an
// hour, Kafka's expiry of an ip sensor), at most once a minute.
func (r *connRates) pruneLocked(now time.Time) {
	if now.Sub(r.mu.pruned) < time.Minute {
		return
	}
	r.mu.pruned = now
	cutoff := now.Add(-quotaSensorIdle).UnixMilli()
	for ip, rate := range r.mu.ips {
		rate.mu.Lock()
		last := rate.samples[rate.current].start
		rate.mu.Unlock()
		if last < cutoff {
			delete(r.mu.ips, ip)
		}
	}
}

// ipLimit is ip's connection_creation_rate: its own quota, else the
// default ip entity's, else unlimited.
func (r *connRates) ipLimit(ip netip.Addr) int {
	qs := r.quotas()
	if len(qs) == 0 {
		return unlimitedConns
	}
	ix := r.index.Load()
	if ix == nil || len(ix.src) != len(qs) || &ix.src[0] != &qs[0] {
		ix = buildIPRateIndex(qs)
		r.index.Store(ix)
	}
	if n, ok := ix.perIP[ip]; ok {
		return n
	}
	return ix.fallback
}

func buildIPRateIndex(qs []clusterstate.Quota) *ipRateIndex {
	ix := &ipRateIndex{src: qs, perIP: map[netip.Addr]int{}, fallback: unlimitedConns}
	for _, q := range qs {
		if len(q.Entity) != 1 || q.Entity[0].Type != quotaIP {
			continue
		}
		v, ok := q.Values[quotaConnectionRate]
		if !ok {
			continue
		}
		n := int(min(v, float64(unlimitedConns)))
		if q.Entity[0].Name == nil {
			ix.fallback = n
			continue
		}
		if ip, err := netip.ParseAddr(*q.Entity[0].Name); err == nil {
			ix.perIP[ip.Unmap()] = n
		}
	}
	return ix
}

// holdThenClose keeps a throttled connection open, unserved, for d and
// then closes it. Closing all (the server stopping) closes it at once.
func (r *connRates) holdThenClose(nc net.Conn, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		nc.Close()
		return
	}
	r.mu.held[nc] = time.AfterFunc(d, func() {
		r.mu.Lock()
		delete(r.mu.held, nc)
		r.mu.Unlock()
		nc.Close()
	})
}

// closeHeld closes the held connections; later ones are closed at once.
func (r *connRates) closeHeld() {
	r.mu.Lock()
	held := r.mu.held
	r.mu.held, r.mu.closed = map[net.Conn]*time.Timer{}, true
	r.mu.Unlock()
	for nc, t := range held {
		t.Stop()
		nc.Close()
	}
}

// waitConnThrottle holds the acceptor for d, as Kafka's blocks in
// waitForConnectionSlot; false when the server stops meanwhile.
func waitConnThrottle(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// isListenerConnRate reports whether name is
// listener.name.<l>.max.connection.creation.rate.
func isListenerConnRate(name string) bool {
	rest, ok := strings.CutPrefix(name, "listener.name.")
	if !ok {
		return false
	}
	l, cfg, ok := strings.Cut(rest, ".")
	return ok && l != "" && cfg == "max.connection.creation.rate"
}

// parseConnRates reads max.connection.creation.rate and its listener
// forms (each already validated).
func (c *Config) parseConnRates() {
	get := func(name string) int {
		if v, ok := c.Settings[name]; ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			return int(n)
		}
		return unlimitedConns
	}
	c.connLimits.rate = get("max.connection.creation.rate")
	c.connLimits.listenerRates = map[string]int{}
	for name := range c.Settings {
		if isListenerConnRate(name) {
			listener, _, _ := strings.Cut(strings.TrimPrefix(name, "listener.name."), ".")
			c.connLimits.listenerRates[strings.ToUpper(listener)] = get(name)
		}
	}
}
