package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// confluent-kafka 2.x comes from PyPI, not Debian (whose python3-confluent-kafka
// is 1.7.0, without the KIP-848 consumer). .ci/run installs this exact
// version with pip --target into the user's cache directory; the tests put
// that directory on the system python's PYTHONPATH.
const confluent2Version = "2.16.1"

// confluent2Dir is where .ci/run installs confluent-kafka 2.x:
// $XDG_CACHE_HOME (else ~/.cache)/skiff/pypi/confluent-kafka-VERSION.
func confluent2Dir(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the PyPI packages: %v", err)
	}
	return filepath.Join(cache, "skiff", "pypi", "confluent-kafka-"+confluent2Version)
}

// confluent2Env is the environment that makes /usr/bin/python3 import
// confluent-kafka 2.x. Skipped with -short; otherwise a missing install
// fails the test.
func confluent2Env(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs confluent-kafka " + confluent2Version + " from PyPI; skipped with -short")
	}
	dir := confluent2Dir(t)
	env := []string{"PYTHONPATH=" + dir}
	cmd := exec.Command("/usr/bin/python3", "-c", "import confluent_kafka; print(confluent_kafka.version())")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != confluent2Version+"\n" {
		t.Fatalf("confluent-kafka %s is not installed in %s (.ci/run does it: /usr/bin/python3 -m pip install --target %s confluent-kafka==%s): %v\n%s",
			confluent2Version, dir, dir, confluent2Version, err, out)
	}
	return env
}

// TestConfluentKafkaPython2KIP848 runs librdkafka's KIP-848 consumer
// (group.protocol=consumer) from confluent-kafka 2.x: two members split a
// topic through the broker's assignor, with only the moved partitions
// revoked; every record is read once by its owner; their commits land; the
// group is a consumer-protocol group that ends Empty with the commits kept.
func TestConfluentKafkaPython2KIP848(t *testing.T) {
	env := confluent2Env(t)
	b := startBroker(t, ecosystemSettings())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(clientsDir(t), "confluent_kip848.py"), b.Addr(), "k848")
	cmd.Env = append(os.Environ(), env...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("confluent_kip848.py: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	var res struct {
		Versions map[string]string  `json:"versions"`
		Split    map[string][]int32 `json:"split"`
		Records  int                `json:"records"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("confluent_kip848.py printed %q: %v", out, err)
	}
	t.Logf("versions %v; split %v; %d records", res.Versions, res.Split, res.Records)

	adm := newAdmin(t, b.Addr())
	group := "k848-848"
	offs, err := adm.FetchOffsets(testContext(t), group)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(4) {
		if o, ok := offs.Lookup(group, p); !ok || o.At != 10 {
			t.Errorf("%s committed partition %d: %+v (found %v), want 10", group, p, o, ok)
		}
	}
	// ConsumerGroupDescribe answers only for consumer-protocol groups.
	eventually(t, 30*time.Second, group+" Empty after both members left", func() bool {
		d, _, err := consumerView(testContext(t), adm, group, group)
		return err == nil && d.State == "Empty" && len(d.Members) == 0
	})
}
