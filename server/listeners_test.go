package server

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseListeners(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
		want    []listenerSpec
	}{
		{name: "listen flag", cfg: Config{Listen: "127.0.0.1:9092"},
			want: []listenerSpec{{name: "PLAINTEXT", host: "127.0.0.1", port: "9092"}}},
		{name: "listen and advertise flags", cfg: Config{Listen: "0.0.0.0:9092", Advertise: "kafka:9092"},
			want: []listenerSpec{{name: "PLAINTEXT", host: "0.0.0.0", port: "9092", advertHost: "kafka", advertPort: 9092}}},
		{name: "internal and external", cfg: Config{Settings: map[string]string{
			"listeners":                      "INTERNAL://0.0.0.0:9093,EXTERNAL://0.0.0.0:9092",
			"advertised.listeners":           "INTERNAL://skiff:9093,EXTERNAL://localhost:9092",
			"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
		}}, want: []listenerSpec{
			{name: "INTERNAL", host: "0.0.0.0", port: "9093", advertHost: "skiff", advertPort: 9093},
			{name: "EXTERNAL", host: "0.0.0.0", port: "9092", advertHost: "localhost", advertPort: 9092},
		}},
		{name: "advertise only some", cfg: Config{Settings: map[string]string{
			"listeners":                      "A://127.0.0.1:1,B://0.0.0.0:2",
			"advertised.listeners":           "B://b.example:2",
			"listener.security.protocol.map": "A:PLAINTEXT,B:PLAINTEXT",
		}}, want: []listenerSpec{
			{name: "A", host: "127.0.0.1", port: "1"},
			{name: "B", host: "0.0.0.0", port: "2", advertHost: "b.example", advertPort: 2},
		}},
		{name: "kraft controller listener skipped", cfg: Config{Settings: map[string]string{
			"listeners":                      "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
			"controller.listener.names":      "CONTROLLER",
			"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		}}, want: []listenerSpec{{name: "PLAINTEXT", host: "127.0.0.1", port: "9092"}}},
		{name: "lower-case names", cfg: Config{Settings: map[string]string{
			"listeners": "plaintext://127.0.0.1:9092",
		}}, want: []listenerSpec{{name: "PLAINTEXT", host: "127.0.0.1", port: "9092"}}},
		{name: "name not in protocol map", cfg: Config{Settings: map[string]string{"listeners": "INTERNAL://127.0.0.1:9093"}},
			wantErr: "listener.security.protocol.map"},
		{name: "ssl without a keystore", cfg: Config{Settings: map[string]string{"listeners": "SSL://127.0.0.1:9093"}},
			wantErr: "ssl.keystore.location"},
		{name: "sasl without mechanisms", cfg: Config{Settings: map[string]string{"listeners": "SASL_PLAINTEXT://127.0.0.1:9093"}},
			wantErr: "sasl.enabled.mechanisms"},
		{name: "unknown protocol", cfg: Config{Settings: map[string]string{
			"listeners": "A://127.0.0.1:9093", "listener.security.protocol.map": "A:KERBEROS"}},
			wantErr: "unknown security protocol"},
		{name: "same port twice", cfg: Config{Settings: map[string]string{
			"listeners": "A://127.0.0.1:9092,B://127.0.0.2:9092", "listener.security.protocol.map": "A:PLAINTEXT,B:PLAINTEXT",
		}}, wantErr: "same port"},
		{name: "same name twice", cfg: Config{Settings: map[string]string{"listeners": "PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2"}},
			wantErr: "twice"},
		{name: "wildcard without advertised", cfg: Config{Settings: map[string]string{
			"listeners": "A://127.0.0.1:1,B://0.0.0.0:2", "listener.security.protocol.map": "A:PLAINTEXT,B:PLAINTEXT",
		}}, wantErr: "needs an advertised address"},
		{name: "advertised name unknown", cfg: Config{Settings: map[string]string{
			"listeners": "PLAINTEXT://127.0.0.1:1", "advertised.listeners": "OTHER://x:1",
		}}, wantErr: "not in listeners"},
		{name: "advertised port 0", cfg: Config{Settings: map[string]string{
			"listeners": "PLAINTEXT://0.0.0.0:1", "advertised.listeners": "PLAINTEXT://x:0",
		}}, wantErr: "concrete host:port"},
		{name: "no scheme", cfg: Config{Settings: map[string]string{"listeners": "127.0.0.1:9092"}}, wantErr: "NAME://host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.cfg.listeners) != len(tc.want) {
				t.Fatalf("listeners %+v, want %+v", tc.cfg.listeners, tc.want)
			}
			for i := range tc.want {
				got := tc.cfg.listeners[i]
				got.protocol = "" // security is tested in security_test.go
				if got != tc.want[i] {
					t.Errorf("listener %d: %+v, want %+v", i, tc.cfg.listeners[i], tc.want[i])
				}
			}
			first := tc.want[0]
			if tc.cfg.Listen != net.JoinHostPort(first.host, first.port) || tc.cfg.advertHost != first.advertHost {
				t.Errorf("Listen %q advertHost %q do not mirror the first listener", tc.cfg.Listen, tc.cfg.advertHost)
			}
			// Validate is idempotent (cmd/skiff validates, then New does).
			again := tc.cfg
			if err := again.Validate(); err != nil || len(again.listeners) != len(tc.want) {
				t.Errorf("second Validate: %v %+v", err, again.listeners)
			}
		})
	}
}

// TestEachListenerAdvertisesItself connects through two listeners and
// checks that Metadata, FindCoordinator and DescribeCluster answer with the
// address of the listener the connection came in on.
func TestEachListenerAdvertisesItself(t *testing.T) {
	srv, err := New(Config{DataDir: t.TempDir(), Settings: map[string]string{
		"listeners":                      "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0",
		"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	internal, external := srv.ListenerAddr("INTERNAL"), srv.ListenerAddr("external")
	if internal == "" || external == "" || internal == external || srv.Addr() != internal {
		t.Fatalf("internal %q external %q addr %q", internal, external, srv.Addr())
	}
	ctx := context.Background()
	for _, addr := range []string{internal, external} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		// Seed brokers are contacted at the seed address; the answers
		// must name the same one.
		md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostPort(md.Brokers[0].Host, md.Brokers[0].Port); got != addr {
			t.Errorf("metadata via %s advertises %s", addr, got)
		}
		dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostPort(dc.Brokers[0].Host, dc.Brokers[0].Port); got != addr {
			t.Errorf("describe cluster via %s advertises %s", addr, got)
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKeys = []string{"g"}
		fr, err := fc.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostPort(fr.Coordinators[0].Host, fr.Coordinators[0].Port); got != addr {
			t.Errorf("find coordinator via %s advertises %s", addr, got)
		}
	}
}

func hostPort(h string, p int32) string { return net.JoinHostPort(h, strconv.Itoa(int(p))) }
