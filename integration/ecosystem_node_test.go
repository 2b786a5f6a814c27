package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKafkaJSEcosystem drives KafkaJS (from integration/clients/node_modules;
// npm ci there, .ci/run does it): admin, gzip with keys and headers (the
// other codecs need codec packages KafkaJS does not ship), a group resuming
// from its commits, the idempotent producer, and transactions (with offsets
// sent to them) read by read_committed and read_uncommitted consumers. The shared checks are in
// ecosystem_python_test.go.
func TestKafkaJSEcosystem(t *testing.T) {
	dir := clientsDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil {
		t.Fatalf("kafkajs is not installed in %s (run npm ci there; .ci/run does it): %v", dir, err)
	}
	b := startBroker(t, ecosystemSettings())
	res := runEcosystemScript(t, b, "kjs", "node", filepath.Join(dir, "kafkajs_ecosystem.js"))
	if res.Codecs["gzip"] != ecoPartitions*ecoPerPartition {
		t.Errorf("script consumed %d gzip records", res.Codecs["gzip"])
	}
	adm := newAdmin(t, b.Addr())
	checkEcoAdmin(t, adm, "kjs")
	checkEcoCodecs(t, b, "kjs", []string{"gzip"})
	checkEcoGroup(t, adm, "kjs")
	checkEcoIdempotent(t, b, "kjs")
	checkEcoTransactions(t, b, adm, "kjs")
}
