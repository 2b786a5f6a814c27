package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Connection limits, with Kafka's names, defaults and semantics (its
// SocketServer's ConnectionQuotas):
//
//   - max.connections bounds the connections of the whole broker and
//     listener.name.<l>.max.connections those of one listener. When either
//     is reached the acceptor stops: the connection it has just accepted
//     waits, and later ones wait in the kernel's backlog, until a
//     connection closes. Nothing is refused.
//   - max.connections.per.ip (with max.connections.per.ip.overrides,
//     "host:n,ip:n") bounds the connections from one address. A connection
//     past it is closed at once, as Kafka's acceptor does on
//     TooManyConnectionsException.
//
// Kafka exempts its inter-broker listener from max.connections; Skiff is
// a single broker with no inter-broker listener, so no listener is exempt.
// Connection creation rates (max.connection.creation.rate and the ip
// entity's connection_creation_rate quota) are in connrate.go.

// unlimitedConns is Kafka's default for every connection limit
// (Int.MaxValue).
const unlimitedConns = math.MaxInt32

// connLimits are the parsed limits.
type connLimits struct {
	total       int
	perListener map[string]int // upper-case listener name -> limit
	perIP       int
	ipOverrides map[netip.Addr]int
	// Creation rates per second (connrate.go): max.connection.creation.rate
	// and per listener.
	rate          int
	listenerRates map[string]int
}

// errTooManyConns is the per-address limit being reached.
var errTooManyConns = errors.New("server: too many connections from this address")

// connQuotas counts open connections against connLimits. mu guards the
// counts; freed is closed (and replaced) whenever a connection ends, which
// wakes acceptors waiting for a slot. It takes no other lock.
type connQuotas struct {
	limits connLimits
	mu     struct {
		sync.Mutex
		total     int
		listeners map[string]int
		ips       map[netip.Addr]int
		freed     chan struct{}
	}
	lastRejectLog atomic.Int64 // Unix nanoseconds; rate-limits the rejection line
	rejected      atomic.Int64 // since the last rejection line
}

func newConnQuotas(l connLimits) *connQuotas {
	q := &connQuotas{limits: l}
	q.mu.listeners = make(map[string]int)
	q.mu.ips = make(map[netip.Addr]int)
	q.mu.freed = make(chan struct{})
	return q
}

func (q *connQuotas) listenerLimit(listener string) int {
	if n, ok := q.limits.perListener[listener]; ok {
		return n
	}
	return unlimitedConns
}

func (q *connQuotas) ipLimit(ip netip.Addr) int {
	if n, ok := q.limits.ipOverrides[ip]; ok {
		return n
	}
	return q.limits.perIP
}

// slotAvailableLocked reports whether listener may take one more
// connection under the listener and broker-wide limits.
func (q *connQuotas) slotAvailableLocked(listener string) bool {
	return q.mu.listeners[listener] < q.listenerLimit(listener) && q.mu.total < q.limits.total
}

// acquire counts a connection just accepted on listener from ip. It waits
// (as Kafka's acceptor blocks) while the listener or the broker is at its
// limit, and fails with errTooManyConns when ip is at its own; ctx ending
// (the server stopping) fails it too.
func (q *connQuotas) acquire(ctx context.Context, listener string, ip netip.Addr) error {
	for {
		q.mu.Lock()
		if q.slotAvailableLocked(listener) {
			if q.mu.ips[ip] >= q.ipLimit(ip) {
				q.mu.Unlock()
				return errTooManyConns
			}
			q.mu.total++
			q.mu.listeners[listener]++
			q.mu.ips[ip]++
			q.mu.Unlock()
			return nil
		}
		freed := q.mu.freed
		q.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives back a connection counted by acquire.
func (q *connQuotas) release(listener string, ip netip.Addr) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.mu.total--
	q.mu.listeners[listener]--
	if q.mu.ips[ip]--; q.mu.ips[ip] <= 0 {
		delete(q.mu.ips, ip)
	}
	close(q.mu.freed)
	q.mu.freed = make(chan struct{})
}

// connAddr is the address a connection is counted under.
func connAddr(nc net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{} // not TCP: all such connections share one count
}

// admit counts a newly accepted connection, first waiting while the
// broker's or the listener's connection creation rate is over its limit,
// then for a slot if the broker or listener is full. It closes the
// connection and returns false when its address is at its limit or the
// server is stopping, and holds it unserved, to close it later, when its
// address is over its connection creation rate (Kafka's
// ConnectionQuotas.inc).
func (s *Server) admit(nc net.Conn, l *listenerSpec) (netip.Addr, bool) {
	ip := connAddr(nc)
	now := time.Now()
	if !waitConnThrottle(s.quitCtx, s.connRates.listenerThrottle(l.name, now)) {
		nc.Close()
		return ip, false
	}
	if d := s.connRates.ipThrottle(l.name, ip, time.Now()); d > 0 {
		s.log.Debug().Str("remote", nc.RemoteAddr().String()).Str("listener", l.name).Dur("throttle", d).
			Msg("connection creation rate of the address over its quota; closing the connection after the throttle")
		s.connRates.holdThenClose(nc, d)
		return ip, false
	}
	err := s.connQuotas.acquire(s.quitCtx, l.name, ip)
	if err == nil {
		return ip, true
	}
	nc.Close()
	if errors.Is(err, errTooManyConns) {
		q := s.connQuotas
		n := q.rejected.Add(1)
		now := time.Now().UnixNano()
		if last := q.lastRejectLog.Load(); now-last >= int64(10*time.Second) && q.lastRejectLog.CompareAndSwap(last, now) {
			q.rejected.Add(-n)
			s.log.Info().Str("remote", nc.RemoteAddr().String()).Str("listener", l.name).Int("max", q.ipLimit(ip)).
				Int64("rejected", n).Msg("rejected connection: the address already has its maximum (max.connections.per.ip)")
		}
	}
	return ip, false
}

// validateConnLimitSetting reports whether name is a connection-limit
// setting and whether its value is valid.
func validateConnLimitSetting(name, v string) (bool, error) {
	if !isListenerMaxConns(name) && !isListenerConnRate(name) {
		return false, nil
	}
	if n, err := strconv.ParseInt(v, 10, 32); err != nil || n < 0 {
		return true, fmt.Errorf("server: invalid value %q for %s: must be an int of at least 0", v, name)
	}
	return true, nil
}

func isListenerMaxConns(name string) bool {
	rest, ok := strings.CutPrefix(name, "listener.name.")
	if !ok {
		return false
	}
	l, cfg, ok := strings.Cut(rest, ".")
	return ok && l != "" && cfg == "max.connections"
}

// parseIPOverrides parses max.connections.per.ip.overrides: host:n pairs,
// comma-separated, where host is an IP address or a name that is resolved
// (with lookup, when not nil) to each of its addresses.
func parseIPOverrides(v string, lookup func(string) ([]netip.Addr, error)) (map[netip.Addr]int, error) {
	out := make(map[netip.Addr]int)
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		i := strings.LastIndexByte(item, ':')
		if i <= 0 {
			return nil, fmt.Errorf("server: max.connections.per.ip.overrides: %q is not host:count", item)
		}
		host := strings.Trim(item[:i], "[]")
		n, err := strconv.ParseInt(strings.TrimSpace(item[i+1:]), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("server: max.connections.per.ip.overrides: %q: the count must be an int of at least 0", item)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			out[ip.Unmap()] = int(n)
			continue
		}
		if lookup == nil {
			continue
		}
		ips, err := lookup(host)
		if err != nil {
			return nil, fmt.Errorf("server: max.connections.per.ip.overrides: resolving %s: %w", host, err)
		}
		for _, ip := range ips {
			out[ip.Unmap()] = int(n)
		}
	}
	return out, nil
}

func lookupHost(host string) ([]netip.Addr, error) {
	ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	if err != nil {
		return nil, err
	}
	return ips, nil
}

// parseConnLimits reads the connection limits from the settings (already
// validated one by one) and checks them together.
func (c *Config) parseConnLimits() error {
	get := func(name string) int {
		if v, ok := c.Settings[name]; ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			return int(n)
		}
		return unlimitedConns
	}
	l := connLimits{total: get("max.connections"), perIP: get("max.connections.per.ip"), perListener: map[string]int{}}
	overrides := strings.TrimSpace(c.Settings["max.connections.per.ip.overrides"])
	var err error
	if l.ipOverrides, err = parseIPOverrides(overrides, lookupHost); err != nil {
		return err
	}
	if l.perIP == 0 && overrides == "" {
		// Kafka's KafkaConfig requirement.
		return errors.New("server: max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides is set")
	}
	for name := range c.Settings {
		if isListenerMaxConns(name) {
			rest := strings.TrimPrefix(name, "listener.name.")
			listener, _, _ := strings.Cut(rest, ".")
			l.perListener[strings.ToUpper(listener)] = get(name)
		}
	}
	c.connLimits = l
	c.parseConnRates()
	return nil
}
