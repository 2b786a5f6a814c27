package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skiffmq/skiff/server"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBinaryTestProfileAndControl: `skiff --profile test --test-control
// host:port` says so at start and serves the fault-injection API, which
// a client then feels; without --test-control nothing listens for it.
func TestBinaryTestProfileAndControl(t *testing.T) {
	bin := buildSkiff(t)
	p := startSkiff(t, bin, t.TempDir(), "--profile=test", "--test-control=127.0.0.1:0")
	var started, control map[string]any
	for _, line := range strings.Split(p.logText(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch {
		case m["message"] == "skiff started":
			started = m
		case m["test_control"] != nil:
			control = m
		}
	}
	if started["profile"] != server.ProfileTest {
		t.Errorf("start line %v does not name the test profile", started)
	}
	for _, want := range server.ProfileSettings(server.ProfileTest) {
		if s, _ := started["profile_settings"].(string); !strings.Contains(s, want) {
			t.Errorf("start line's profile settings %q lack %s", s, want)
		}
	}
	addr, _ := control["test_control"].(string)
	if addr == "" {
		t.Fatalf("no log line gives the test-control address:\n%s", p.logText())
	}
	url := "http://" + addr
	resp, err := http.Post(url+"/v1/faults", "application/json",
		bytes.NewBufferString(`{"api": "Produce", "topic": "bin", "error": "NOT_LEADER_OR_FOLLOWER", "times": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/faults: %s", resp.Status)
	}
	cl := newClient(t, p.addr, kgo.DefaultProduceTopic("bin"), kgo.AllowAutoTopicCreation(), kgo.MetadataMinAge(10*time.Millisecond))
	if err := cl.ProduceSync(testContext(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(url + "/v1/requests?api=Produce")
	if err != nil {
		t.Fatal(err)
	}
	var seen struct{ Requests []server.RequestSeen }
	json.NewDecoder(resp.Body).Decode(&seen)
	resp.Body.Close()
	hit := 0
	for _, r := range seen.Requests {
		if r.Action == server.FaultError {
			hit++
		}
	}
	if hit != 1 || len(seen.Requests) < 2 {
		t.Errorf("produce requests %+v: want one answered by the fault, then the retry", seen.Requests)
	}

	plain := startSkiff(t, bin, t.TempDir())
	if strings.Contains(plain.logText(), "test_control") {
		t.Errorf("test control enabled without --test-control:\n%s", plain.logText())
	}
	if !strings.Contains(plain.logText(), `"profile":"production"`) {
		t.Errorf("default start line does not say production:\n%s", plain.logText())
	}
}
