package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffmq/skiff/skifftest"
)

// TestFaultsOverHTTPFromConfluentKafka (issue 17, acceptance 2): a Python
// test injects NOT_LEADER_OR_FOLLOWER into produce and a closed connection
// into fetch through the test-control HTTP API, and confluent-kafka
// recovers with every record once (integration/clients/confluent_faults.py
// asserts the client's side; this test checks the broker's).
func TestFaultsOverHTTPFromConfluentKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("needs python3-confluent-kafka")
	}
	ecoRequirePython(t, "confluent_kafka", "python3-confluent-kafka")
	b := skifftest.New(t, skifftest.Topic("pyfaults", 1, nil), skifftest.TestControl("127.0.0.1:0"))
	if b.TestControlURL() == "" {
		t.Fatal("TestControl option did not start the HTTP API")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(clientsDir(t), "confluent_faults.py"),
		b.Addr(), b.TestControlURL(), "pyfaults")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("confluent_faults.py: %v\nstderr: %s\nstdout: %s", err, stderr.String(), stdout.String())
	}
	var res struct {
		ProduceHits int      `json:"produce_fault_hits"`
		FetchHits   int      `json:"fetch_fault_hits"`
		Values      []string `json:"values"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("confluent_faults.py printed %q: %v", stdout.String(), err)
	}
	if res.ProduceHits != 3 || res.FetchHits != 1 || len(res.Values) != 20 {
		t.Errorf("script saw %+v", res)
	}
	// The broker's side: 20 records, once each.
	ends, err := newAdmin(t, b.Addr()).ListEndOffsets(testContext(t), "pyfaults")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("pyfaults", 0); o.Offset != 20 {
		t.Errorf("pyfaults ends at %d, want 20", o.Offset)
	}
	errorsAnswered := 0
	for _, r := range b.Requests() {
		if r.API == "Produce" && r.Action == skifftest.FaultError {
			errorsAnswered++
		}
	}
	if errorsAnswered != 3 {
		t.Errorf("broker answered %d produce requests with the fault, want 3", errorsAnswered)
	}
}
