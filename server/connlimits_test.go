package server

import (
	"net/netip"
	"strings"
	"testing"
)

// TestConnLimitSettings: the connection-limit settings are validated as
// Kafka validates them and parsed into the limits the acceptor applies.
func TestConnLimitSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings map[string]string
		err      string // substring; "" for valid
		check    func(t *testing.T, l connLimits)
	}{
		{name: "defaults", settings: nil, check: func(t *testing.T, l connLimits) {
			if l.total != unlimitedConns || l.perIP != unlimitedConns || len(l.perListener) != 0 || len(l.ipOverrides) != 0 {
				t.Fatalf("defaults %+v, want Kafka's Int.MaxValue and no overrides", l)
			}
		}},
		{name: "all set", settings: map[string]string{
			"max.connections": "100", "max.connections.per.ip": "10",
			"max.connections.per.ip.overrides":        "127.0.0.2:20, [::1]:30",
			"listener.name.plaintext.max.connections": "50",
		}, check: func(t *testing.T, l connLimits) {
			if l.total != 100 || l.perIP != 10 || l.perListener["PLAINTEXT"] != 50 ||
				l.ipOverrides[netip.MustParseAddr("127.0.0.2")] != 20 || l.ipOverrides[netip.MustParseAddr("::1")] != 30 {
				t.Fatalf("parsed %+v", l)
			}
		}},
		{name: "per ip zero needs overrides", settings: map[string]string{"max.connections.per.ip": "0"}, err: "only if max.connections.per.ip.overrides"},
		{name: "per ip zero with overrides", settings: map[string]string{"max.connections.per.ip": "0", "max.connections.per.ip.overrides": "127.0.0.1:5"}},
		{name: "negative max", settings: map[string]string{"max.connections": "-1"}, err: "max.connections"},
		{name: "negative listener max", settings: map[string]string{"listener.name.plaintext.max.connections": "-5"}, err: "listener.name.plaintext.max.connections"},
		{name: "override without count", settings: map[string]string{"max.connections.per.ip.overrides": "127.0.0.1"}, err: "host:count"},
		{name: "override bad count", settings: map[string]string{"max.connections.per.ip.overrides": "127.0.0.1:x"}, err: "count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Settings: tc.settings}
			err := c.Validate()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Validate() = %v, want an error about %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c.connLimits)
			}
		})
	}
}
