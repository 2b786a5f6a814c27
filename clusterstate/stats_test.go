package clusterstate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/storage"
)

// openOn opens a State over a store on fsys (MemFS or the disk).
func openOn(t *testing.T, fsys storage.FS, dir string, countTraffic bool) *State {
	t.Helper()
	store, err := storage.OpenStoreWith(dir, zerolog.Nop(), storage.StoreOptions{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	st, err := Open(Options{Backend: NewFileBackend(fsys, filepath.Join(dir, FileName)), Logs: store,
		Defaults: testDefaults, NodeID: 1, CountTraffic: countTraffic, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestTopicStatsSurviveRepublishing guards the metrics across a topic
// change: partitions count into the pointer they got when they opened,
// and the collector reads the published topic's, so a change that
// republished the topic with fresh counters would lose all later traffic.
func TestTopicStatsSurviveRepublishing(t *testing.T) {
	s := openOn(t, nil, t.TempDir(), true)
	orig := mustCreate(t, s, "counted", 1, nil)
	if orig.Stats == nil || orig.Partitions[0].Stats != orig.Stats {
		t.Fatalf("new topic: stats %p, partition's %p; want one shared non-nil pointer", orig.Stats, orig.Partitions[0].Stats)
	}
	orig.Partitions[0].Stats.Produced(true, 100, 3)

	if err := s.SetTopicConfigs("counted", map[string]string{"retention.ms": "1000"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPartitions("counted", 2); err != nil {
		t.Fatal(err)
	}
	now, _ := s.Topic("counted")
	if now == orig {
		t.Fatal("the changes did not republish the topic; the test checks nothing")
	}
	if now.Stats != orig.Stats || now.Partitions[1].Stats != orig.Stats {
		t.Fatalf("after changes: topic stats %p, new partition's %p; want the original %p", now.Stats, now.Partitions[1].Stats, orig.Stats)
	}
	now.Partitions[1].Stats.Fetched(true, 50, 2)
	if in, out := now.Stats.BytesIn.Load(), now.Stats.BytesOut.Load(); in != 100 || out != 50 {
		t.Errorf("bytes in %d, out %d; want 100 and 50", in, out)
	}

	// A topic deleted and created again is a new topic: its meters start
	// from zero, as Kafka's do.
	if err := s.DeleteTopic("counted"); err != nil {
		t.Fatal(err)
	}
	again := mustCreate(t, s, "counted", 1, nil)
	if again.Stats == orig.Stats || again.Stats.Used() {
		t.Errorf("recreated topic kept the old counters")
	}
}

func TestTopicStatsOffLeavesNilAndIgnoresCounts(t *testing.T) {
	s := openOn(t, nil, t.TempDir(), false)
	tp := mustCreate(t, s, "uncounted", 1, nil)
	if tp.Stats != nil || tp.Partitions[0].Stats != nil {
		t.Fatal("stats without CountTraffic")
	}
	tp.Partitions[0].Stats.Produced(true, 1, 1) // must not panic
	if tp.Stats.Used() {
		t.Error("nil stats report traffic")
	}
}

// TestFileBackendWritesThroughTheStoreFS guards the filesystem seam:
// meta.json must go through the FS the broker gives it, or MemFS crash
// and fault tests no longer cover the metadata.
func TestFileBackendWritesThroughTheStoreFS(t *testing.T) {
	fsys := storage.NewMemFS()
	dir := filepath.Join(t.TempDir(), "mem") // exists on MemFS only
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openOn(t, fsys, dir, false)
	mustCreate(t, s, "on-memfs", 2, nil)
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("meta.json on the real disk: %v", err)
	}
	img, _, err := NewFileBackend(fsys, path).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Topics) != 1 || img.Topics[0].Name != "on-memfs" || img.Topics[0].Partitions != 2 {
		t.Fatalf("meta.json on MemFS: %+v", img.Topics)
	}

	// A corrupt file is refused with the way out, not started over.
	if err := storage.WriteFileAtomicFS(fsys, path, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	_, _, err = NewFileBackend(fsys, path).Load(t.Context())
	if err == nil || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Fatalf("corrupt meta.json: %v; want a refusal naming the fix", err)
	}
}
