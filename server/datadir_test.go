package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newTestServer(t *testing.T, dir string) (*Server, error) {
	t.Helper()
	srv, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err == nil {
		t.Cleanup(func() { srv.Close() })
	}
	return srv, err
}

// Garbage in meta.json refuses the start, naming the file and the fix, and
// leaves the partition directories alone (starting without the metadata
// would delete them as strays).
func TestCorruptClusterMetadataRefusesStart(t *testing.T) {
	dir := t.TempDir()
	srv, err := newTestServer(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.meta.createTopic("orders", 2, nil); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	meta := filepath.Join(dir, metaFileName)
	if err := os.WriteFile(meta, []byte("{\"cluster_id\": \"x\", \x00\x00 garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = newTestServer(t, dir)
	if err == nil || !strings.Contains(err.Error(), meta) || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Fatalf("start on a corrupt %s: %v; want a refusal naming the file and the fix", metaFileName, err)
	}
	for _, p := range []string{"orders-0", "orders-1"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("partition directory %s after the refused start: %v", p, err)
		}
	}
}

// One data dir, one broker: a second broker on a data dir in use is refused
// with a message that says so.
func TestSecondBrokerOnSameDataDirRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := newTestServer(t, dir); err != nil {
		t.Fatal(err)
	}
	_, err := newTestServer(t, dir)
	if err == nil || !strings.Contains(err.Error(), "data directory in use") {
		t.Fatalf("second broker on the same data dir: %v, want a refusal", err)
	}
}

// Garbage in the producer id file refuses the start, naming the file and
// the fix: starting over from 0 would reuse producer ids logs still know.
func TestCorruptProducerIDFileRefusesStart(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, producerIDFile), []byte("\x00garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := newTestServer(t, dir)
	if err == nil || !strings.Contains(err.Error(), producerIDFile) || !strings.Contains(err.Error(), "block_end") {
		t.Fatalf("start on a corrupt %s: %v; want a refusal naming the file and the fix", producerIDFile, err)
	}
}
