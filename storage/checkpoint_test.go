package storage

import (
	"maps"
	"testing"
)

func TestRecoveryPointCheckpointFormat(t *testing.T) {
	points := map[string]int64{"orders-0": 4018, "orders-10": 7, "my-topic-2": 0, "no_partition": 5, "bad-x": 1}
	b := encodeRecoveryPoints(points)
	if want := "0\n3\nmy-topic 2 0\norders 0 4018\norders 10 7\n"; string(b) != want {
		t.Fatalf("encoded %q, want %q", b, want)
	}
	got, err := decodeRecoveryPoints(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"orders-0": 4018, "orders-10": 7, "my-topic-2": 0}; !maps.Equal(got, want) {
		t.Fatalf("decoded %v, want %v", got, want)
	}
	for _, bad := range []string{"", "1\n0\n", "0\n2\nt 0 1\n", "0\n1\nt 0\n", "0\n1\nt x 1\n", "0\n1\nt 0 -1\n", "0\n-1\n"} {
		if _, err := decodeRecoveryPoints([]byte(bad)); err == nil {
			t.Errorf("%q decoded without error", bad)
		}
	}
}

// Close checkpoints every log at its end; Delete drops the log's entry so a
// log created again under the name does not inherit it.
func TestRecoveryPointCheckpointAtCloseAndDelete(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	a, err := st.OpenLog("a-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.OpenLog("b-1", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	fillLog(t, a, 30, 1000)
	fillLog(t, b, 3, 1000)
	if err := b.Delete(); err != nil {
		t.Fatal(err)
	}
	points, err := readRecoveryPoints(OSFS, dir)
	if _, ok := points["b-1"]; ok || err != nil {
		t.Fatalf("after Delete: %v %v, want no entry for b-1", points, err)
	}
	leo := a.LogEndOffset()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	points, err = readRecoveryPoints(OSFS, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"a-0": leo}; !maps.Equal(points, want) {
		t.Fatalf("after Close: %v, want %v", points, want)
	}
}
