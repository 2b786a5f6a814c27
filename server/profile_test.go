package server

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestProfileTestSaysSoAtStart: the start log line names the profile and
// the exact settings it applied; an explicit setting wins over it, and the
// caller's Settings map is left alone.
func TestProfileTestSaysSoAtStart(t *testing.T) {
	var logs bytes.Buffer
	settings := map[string]string{"group.min.session.timeout.ms": "250"}
	srv, err := New(Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), Profile: ProfileTest, Settings: settings,
		Logger: zerolog.New(&logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "skiff started") {
			line = l
		}
	}
	for _, want := range []string{`"profile":"test"`, "group.initial.rebalance.delay.ms=10", "offsets.topic.num.partitions=1"} {
		if !strings.Contains(line, want) {
			t.Errorf("start line %q lacks %s", line, want)
		}
	}
	if got := srv.cfg.setting("group.min.session.timeout.ms"); got != "250" {
		t.Errorf("explicit group.min.session.timeout.ms became %s under the test profile", got)
	}
	if got := srv.cfg.setting("group.initial.rebalance.delay.ms"); got != "10" {
		t.Errorf("test profile group.initial.rebalance.delay.ms = %s, want 10", got)
	}
	if len(settings) != 1 {
		t.Errorf("the caller's settings were changed: %v", settings)
	}
}

func TestProfileProductionKeepsKafkaDefaults(t *testing.T) {
	for _, p := range []string{"", ProfileProduction} {
		cfg := Config{DataDir: t.TempDir(), Profile: p}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := cfg.setting("group.initial.rebalance.delay.ms"); got != "3000" {
			t.Errorf("profile %q: group.initial.rebalance.delay.ms = %s, want Kafka's 3000", p, got)
		}
	}
	cfg := Config{DataDir: t.TempDir(), Profile: "fast"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "unknown profile") {
		t.Errorf("unknown profile: %v", err)
	}
}
