package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestStoreLogs(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	if !st.CleanStart() {
		t.Fatal("a new directory counts as a clean start")
	}
	if _, err := OpenStore(dir, st.logger); err == nil {
		t.Fatal("second store on the same directory")
	}
	for _, name := range []string{"", ".hidden", "a/b", "..", "x\x00"} {
		if _, err := st.OpenLog(name, testConfig()); err == nil {
			t.Errorf("OpenLog(%q) accepted", name)
		}
	}
	bad := testConfig()
	bad.SegmentBytes = -1
	if _, err := st.OpenLog("bad-0", bad); err == nil {
		t.Fatal("invalid config accepted")
	}
	a, err := st.OpenLog("a-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenLog("a-0", testConfig()); err == nil {
		t.Fatal("log opened twice")
	}
	b, err := st.OpenLog("b-1", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, a, makeBatch(1, 1, 1, 'a'), AppendOptions{Sync: true})
	mustAppend(t, b, makeBatch(1, 1, 1, 'b'), AppendOptions{Sync: true})
	names, err := st.LogNames()
	if err != nil || !slices.Equal(names, []string{"a-0", "b-1"}) {
		t.Fatalf("LogNames: %v %v", names, err)
	}

	if err := b.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b-1")); !os.IsNotExist(err) {
		t.Fatal("deleted log's directory remains:", err)
	}
	if names, _ := st.LogNames(); !slices.Equal(names, []string{"a-0"}) {
		t.Fatalf("after delete: %v", names)
	}
	// The name is free again, and starts empty.
	b, err = st.OpenLog("b-1", testConfig())
	if err != nil || b.LogEndOffset() != 0 {
		t.Fatalf("reopen deleted name: %v", err)
	}

	// A log closed on its own is reopened by name.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a, err = st.OpenLog("a-0", testConfig())
	if err != nil || a.LogEndOffset() != 1 {
		t.Fatalf("reopen closed log: %v", err)
	}

	// Leftovers of an interrupted delete are cleaned at open.
	left := filepath.Join(dir, ".c-0.123"+deletingSuffix)
	if err := os.MkdirAll(left, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := st.OpenLog("d-0", testConfig()); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := a.Append(makeBatch(1, 1, 1, 'a'), AppendOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatal("log still open after store close:", err)
	}
	st = openTestStore(t, dir)
	defer st.Close()
	if !st.CleanStart() {
		t.Fatal("clean close not detected")
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatal("interrupted delete not cleaned up")
	}
}

func TestStoreUncleanStart(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	if _, err := st.OpenLog("a-0", testConfig()); err != nil {
		t.Fatal(err)
	}
	crash(t, st)
	st = openTestStore(t, dir)
	defer st.Close()
	if st.CleanStart() {
		t.Fatal("crash seen as clean stop")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "meta.json")
	for _, content := range []string{"first", "second, longer", ""} {
		if err := WriteFileAtomic(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("got %q %v, want %q", got, err, content)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*"+tmpExt)); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), nil); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}
