package server

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/skiffmq/skiff/clusterstate"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestIPConnectionRateQuotaValidation: AlterClientQuotas checks the ip
// entity as Kafka 4's ClientQuotaControlManager does: alone, an address
// (Skiff takes no host names), and only connection_creation_rate, a whole
// positive INT.
func TestIPConnectionRateQuotaValidation(t *testing.T) {
	ip := func(name string) []quotaEntityPart { return []quotaEntityPart{{Type: quotaIP, Name: &name}} }
	user := "alice"
	for _, tc := range []struct {
		name   string
		entity []quotaEntityPart
		key    string
		value  float64
		want   string // "" when valid
	}{
		{"address", ip("127.0.0.1"), quotaConnectionRate, 5, ""},
		{"IPv6 address", ip("::1"), quotaConnectionRate, 5, ""},
		{"default ip", []quotaEntityPart{{Type: quotaIP}}, quotaConnectionRate, 100, ""},
		{"with user", []quotaEntityPart{{Type: quotaIP}, {Type: quotaUser, Name: &user}}, quotaConnectionRate, 5,
			"Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"},
		{"host name", ip("not an address"), quotaConnectionRate, 5, "not an address is not a valid IP or resolvable host."},
		{"empty", ip(""), quotaConnectionRate, 5, "Empty ip not supported"},
		{"byte rate on ip", ip("127.0.0.1"), quotaProduce, 5, "Invalid configuration key producer_byte_rate"},
		{"connection rate on user", []quotaEntityPart{{Type: quotaUser, Name: &user}}, quotaConnectionRate, 5, "Invalid configuration key connection_creation_rate"},
		{"fraction", ip("127.0.0.1"), quotaConnectionRate, 2.5, "connection_creation_rate cannot be a fractional value."},
		{"zero", ip("127.0.0.1"), quotaConnectionRate, 0, "Quota connection_creation_rate must be greater than 0"},
		{"too large", ip("127.0.0.1"), quotaConnectionRate, 1 << 31, "Proposed value for connection_creation_rate is too large for an INT."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entity, code, msg := validateQuotaEntity(tc.entity)
			if code == nil {
				code, msg = validateQuotaOps(entity, []kmsg.AlterClientQuotasRequestEntryOp{{Key: tc.key, Value: tc.value}})
			}
			switch {
			case tc.want == "" && code != nil:
				t.Fatalf("refused: %v %s", code, msg)
			case tc.want != "" && (code == nil || msg != tc.want):
				t.Fatalf("got %v %q, want INVALID_REQUEST %q", code, msg, tc.want)
			}
		})
	}
}

func ipQuota(name *string, rate float64) clusterstate.Quota {
	return clusterstate.Quota{Entity: []clusterstate.QuotaEntityPart{{Type: quotaIP, Name: name}},
		Values: map[string]float64{quotaConnectionRate: rate}}
}

// TestIPConnectionRateThrottles: an address's own connection_creation_rate
// wins over the default ip entity's; a new rate takes ten seconds' worth
// of connections at once (Kafka's windowed rate), then throttles for at
// most one second; a throttled connection counts in no rate, so the
// broker's and listener's stay as they were.
func TestIPConnectionRateThrottles(t *testing.T) {
	slow, fast := "127.0.0.1", "127.0.0.2"
	quotas := []clusterstate.Quota{ipQuota(nil, 100), ipQuota(&slow, 5)}
	r := newConnRates(1000, map[string]int{"PLAINTEXT": 1000}, func() []clusterstate.Quota { return quotas })
	if got := r.ipLimit(netip.MustParseAddr(slow)); got != 5 {
		t.Fatalf("limit of %s: %d, want its own 5", slow, got)
	}
	if got := r.ipLimit(netip.MustParseAddr(fast)); got != 100 {
		t.Fatalf("limit of %s: %d, want the default 100", fast, got)
	}
	if got := r.ipLimit(netip.MustParseAddr("::ffff:127.0.0.1").Unmap()); got != 5 {
		t.Fatalf("limit of a v4-mapped %s: %d, want 5", slow, got)
	}

	now := time.UnixMilli(1_000_000)
	ip := netip.MustParseAddr(slow)
	admitted := 0
	for range 60 {
		r.listenerThrottle("PLAINTEXT", now)
		if d := r.ipThrottle("PLAINTEXT", ip, now); d == 0 {
			admitted++
		} else if d > maxConnThrottle {
			t.Fatalf("throttle %v, more than Kafka's bound %v", d, maxConnThrottle)
		}
	}
	if admitted != 50 {
		t.Fatalf("%d connections admitted at once under a rate of 5/s, want 50 (ten seconds' worth)", admitted)
	}
	r.broker.rate.mu.Lock()
	brokerRate, _ := r.broker.rate.rateLocked(now.UnixMilli())
	r.broker.rate.mu.Unlock()
	if brokerRate != 5 {
		t.Fatalf("broker rate %v/s after 50 admitted and 10 throttled connections, want 5 (the throttled ones taken back)", brokerRate)
	}
	// Eleven seconds on, the burst's sample has left the window.
	if d := r.ipThrottle("PLAINTEXT", ip, now.Add(11*time.Second)); d != 0 {
		t.Fatalf("throttled %v once the window moved on", d)
	}
	// Another address has its own rate.
	if d := r.ipThrottle("PLAINTEXT", netip.MustParseAddr(fast), now); d != 0 {
		t.Fatalf("%s throttled %v by another address's connections", fast, d)
	}
}

// TestListenerConnectionRateWaits: max.connection.creation.rate and the
// listener's form give the acceptor a wait once over the rate, the longer
// of the two, bounded by one second.
func TestListenerConnectionRateWaits(t *testing.T) {
	r := newConnRates(unlimitedConns, map[string]int{"SLOW": 2}, func() []clusterstate.Quota { return nil })
	now := time.UnixMilli(5_000_000)
	var waits int
	for range 30 {
		d := r.listenerThrottle("SLOW", now)
		if d > maxConnThrottle {
			t.Fatalf("wait %v over Kafka's bound", d)
		}
		if d > 0 {
			waits++
		}
		if r.listenerThrottle("OTHER", now) != 0 {
			t.Fatal("a listener without a rate waited")
		}
	}
	if waits != 10 {
		t.Fatalf("%d of 30 connections waited under 2/s, want the 10 past the first 20", waits)
	}
	cfg := Config{DataDir: t.TempDir(), Settings: map[string]string{
		"max.connection.creation.rate": "7", "listener.name.plaintext.max.connection.creation.rate": "3"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.connLimits.rate != 7 || cfg.connLimits.listenerRates["PLAINTEXT"] != 3 {
		t.Fatalf("parsed rates %d and %v", cfg.connLimits.rate, cfg.connLimits.listenerRates)
	}
	bad := Config{DataDir: t.TempDir(), Settings: map[string]string{"listener.name.plaintext.max.connection.creation.rate": "-1"}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "max.connection.creation.rate") {
		t.Fatalf("a negative rate: %v", err)
	}
}
