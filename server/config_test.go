package server

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantErr  string
		validate func(t *testing.T, c *Config)
	}{
		{name: "defaults", cfg: Config{}, validate: func(t *testing.T, c *Config) {
			if c.Listen != DefaultListen || c.DataDir != "./skiff-data" || c.numPartitions != 1 || !c.autoCreateTopics {
				t.Errorf("defaults: %+v", c)
			}
			if c.topicDefaults["retention.ms"] != "604800000" || c.topicDefaults["max.message.bytes"] != "1048588" {
				t.Errorf("topic defaults: %v", c.topicDefaults)
			}
		}},
		{name: "unknown", cfg: Config{Settings: map[string]string{"no.such.thing": "1"}}, wantErr: `unknown config "no.such.thing"`},
		{name: "bad int", cfg: Config{Settings: map[string]string{"num.partitions": "many"}}, wantErr: "num.partitions"},
		{name: "bad range", cfg: Config{Settings: map[string]string{"num.partitions": "0"}}, wantErr: "num.partitions"},
		{name: "bad topic default", cfg: Config{Settings: map[string]string{"log.message.timestamp.type": "Wallclock"}}, wantErr: "message.timestamp.type"},
		{name: "wildcard needs advertise", cfg: Config{Listen: "0.0.0.0:9092"}, wantErr: "advertised"},
		{name: "wildcard with advertise", cfg: Config{Listen: "0.0.0.0:9092", Advertise: "broker:9092"}},
		{name: "listeners", cfg: Config{Settings: map[string]string{
			"listeners": "PLAINTEXT://127.0.0.1:9999", "advertised.listeners": "PLAINTEXT://kafka.local:9999",
		}}, validate: func(t *testing.T, c *Config) {
			if c.Listen != "127.0.0.1:9999" || c.advertHost != "kafka.local" || c.advertPort != 9999 {
				t.Errorf("listeners: %q %q %d", c.Listen, c.advertHost, c.advertPort)
			}
		}},
		{name: "retention hours", cfg: Config{Settings: map[string]string{"log.retention.hours": "1"}}, validate: func(t *testing.T, c *Config) {
			if c.topicDefaults["retention.ms"] != "3600000" || !c.staticTopicDefaults["retention.ms"] {
				t.Errorf("retention.ms %q", c.topicDefaults["retention.ms"])
			}
		}},
		{name: "retention ms wins", cfg: Config{Settings: map[string]string{"log.retention.hours": "1", "log.retention.ms": "5"}}, validate: func(t *testing.T, c *Config) {
			if c.topicDefaults["retention.ms"] != "5" {
				t.Errorf("retention.ms %q", c.topicDefaults["retention.ms"])
			}
		}},
		{name: "flush switches durability", cfg: Config{Settings: map[string]string{"log.flush.interval.messages": "1000"}}, validate: func(t *testing.T, c *Config) {
			if !c.explicitFlush || c.topicDefaults["flush.messages"] != "1000" {
				t.Errorf("flush: %v %q", c.explicitFlush, c.topicDefaults["flush.messages"])
			}
		}},
		{name: "ignored kafka settings", cfg: Config{Settings: map[string]string{"num.network.threads": "3", "process.roles": "broker,controller"}}},
		{name: "slow client defaults", cfg: Config{}, validate: func(t *testing.T, c *Config) {
			if c.connectionsMaxIdle != 10*time.Minute || c.queuedMaxRequestBytes != 256<<20 {
				t.Errorf("connections.max.idle.ms %v, queued.max.request.bytes %d", c.connectionsMaxIdle, c.queuedMaxRequestBytes)
			}
		}},
		{name: "connections.max.idle.ms", cfg: Config{Settings: map[string]string{"connections.max.idle.ms": "250"}}, validate: func(t *testing.T, c *Config) {
			if c.connectionsMaxIdle != 250*time.Millisecond {
				t.Errorf("connections.max.idle.ms %v", c.connectionsMaxIdle)
			}
		}},
		{name: "queued.max.request.bytes unbounded", cfg: Config{Settings: map[string]string{"queued.max.request.bytes": "-1"}}, validate: func(t *testing.T, c *Config) {
			if c.queuedMaxRequestBytes != -1 {
				t.Errorf("queued.max.request.bytes %d", c.queuedMaxRequestBytes)
			}
		}},
		{name: "queued.max.request.bytes below request max", cfg: Config{Settings: map[string]string{"queued.max.request.bytes": "1000"}}, wantErr: "socket.request.max.bytes"},
		{name: "queued.max.request.bytes follows request max", cfg: Config{Settings: map[string]string{"socket.request.max.bytes": "500000000"}}, validate: func(t *testing.T, c *Config) {
			if c.queuedMaxRequestBytes != 500000000 {
				t.Errorf("queued.max.request.bytes %d", c.queuedMaxRequestBytes)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.validate != nil {
				tc.validate(t, &tc.cfg)
			}
		})
	}
}

// A single node holds one replica, so New refuses a default replication
// factor above 1 unless the broker is one of a cluster (Validate accepts
// it: the cluster is attached to the validated config).
func TestNewRefusesReplicationFactorWithoutCluster(t *testing.T) {
	_, err := New(Config{DataDir: t.TempDir(), Settings: map[string]string{"default.replication.factor": "3"}})
	if err == nil || !strings.Contains(err.Error(), "default.replication.factor") {
		t.Fatalf("got error %v, want one mentioning default.replication.factor", err)
	}
}
