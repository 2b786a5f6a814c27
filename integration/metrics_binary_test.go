package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// testHTTPAfterKill9 kills the binary while it holds data, restarts it with
// --pprof and checks the HTTP listener: it came up before the logs were
// recovered (the log lines' order says so, without timing), and once
// started it is ready and serves metrics, including the recovery time,
// and profiles.
func testHTTPAfterKill9(t *testing.T, bin string) {
	dir := t.TempDir()
	p := startSkiff(t, bin, dir)
	if p.httpAddr == "" {
		t.Fatal("the binary serves no HTTP listener by default")
	}
	createTopic(t, newAdmin(t, p.addr), "http-kill", 4, nil)
	cl := newClient(t, p.addr, append(producerOpts(t, p.addr), kgo.DefaultProduceTopic("http-kill"))...)
	var recs []*kgo.Record
	for i := range 200 {
		recs = append(recs, &kgo.Record{Value: []byte(strings.Repeat("x", i))})
	}
	produceSync(t, cl, recs...)
	cl.Close()
	p.kill9(t)

	p2 := startSkiff(t, bin, dir, "skiff.http.pprof.enable=true")
	if p2.cleanStart {
		t.Fatal("restart after SIGKILL logged clean_start=true")
	}
	order := []string{"http listening", "logs recovered", "skiff started"}
	next := 0
	p2.mu.Lock()
	for _, line := range p2.logs {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && next < len(order) && m["message"] == order[next] {
			next++
		}
	}
	p2.mu.Unlock()
	if next != len(order) {
		t.Errorf("log lines %q not in that order (matched %d):\n%s", order, next, p2.logText())
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/debug/pprof/": 200} {
		if code, body := httpGet(t, p2.httpAddr, path); code != want {
			t.Errorf("GET %s = %d %q, want %d", path, code, body, want)
		}
	}
	mfs := scrape(t, p2.httpAddr)
	if metricValue(mfs, "skiff_build_info", nil) != 1 {
		t.Error("no skiff_build_info")
	}
	if v := metricValue(mfs, "skiff_storage_recovery_seconds", nil); v <= 0 {
		t.Errorf("skiff_storage_recovery_seconds = %v after an unclean stop", v)
	}
	if v := metricValue(mfs, "process_resident_memory_bytes", nil); v <= 0 {
		t.Errorf("process_resident_memory_bytes = %v", v)
	}
}
