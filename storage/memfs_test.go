package storage

import (
	"math/rand/v2"
	"testing"

	"github.com/rs/zerolog"
)

// TestNewLogDirectorySurvivesCrash is the regression test for a new log's
// directory (and the store's) never being fsynced in its parent: a crash
// after an acknowledged append could take the whole log away.
func TestNewLogDirectorySurvivesCrash(t *testing.T) {
	for seed := range uint64(50) {
		fsys := NewMemFS()
		st, err := OpenStoreWith("/d/store", zerolog.Nop(), StoreOptions{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		l, err := st.OpenLog("t-0", testConfig())
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, makeBatch(1, 10, 1, 'a'), AppendOptions{Sync: true})
		img := fsys.Crash(rand.New(rand.NewPCG(seed, 0)))
		_ = st.Close()

		st, err = OpenStoreWith("/d/store", zerolog.Nop(), StoreOptions{FS: img})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		l, err = st.OpenLog("t-0", testConfig())
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if leo := l.LogEndOffset(); leo != 1 {
			t.Fatalf("seed %d: log end %d after a crash, want the acknowledged batch", seed, leo)
		}
		_ = st.Close()
	}
}

// TestMemFSCrashKeepsOnlySyncedData checks the fault filesystem itself:
// synced bytes and synced directory entries survive every crash, unsynced
// ones only sometimes.
func TestMemFSCrashKeepsOnlySyncedData(t *testing.T) {
	lost, kept := 0, 0
	for seed := range uint64(200) {
		fsys := NewMemFS()
		if err := fsys.MkdirAll("/a", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := fsys.SyncDir("/"); err != nil {
			t.Fatal(err)
		}
		f, err := fsys.OpenFile("/a/f", 0x42, 0o644) // O_RDWR|O_CREATE
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("synced"), 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := fsys.SyncDir("/a"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("+unsynced"), 6); err != nil {
			t.Fatal(err)
		}
		g, err := fsys.OpenFile("/a/g", 0x42, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Sync(); err != nil { // the file, not its directory entry
			t.Fatal(err)
		}
		img := fsys.Crash(rand.New(rand.NewPCG(seed, 1)))
		if _, err := f.WriteAt([]byte("x"), 0); err == nil {
			t.Fatal("write through a file opened before the crash worked")
		}
		b, err := img.ReadFile("/a/f")
		if err != nil || len(b) < 6 || string(b[:6]) != "synced" {
			t.Fatalf("seed %d: synced data after crash: %q, %v", seed, b, err)
		}
		if len(b) > len("synced+unsynced") {
			t.Fatalf("seed %d: %q grew", seed, b)
		}
		if _, err := img.Stat("/a/g"); err != nil {
			lost++
		} else {
			kept++
		}
	}
	if lost == 0 || kept == 0 {
		t.Fatalf("an unsynced creation was lost %d times and kept %d times in 200 crashes; want both", lost, kept)
	}
}
