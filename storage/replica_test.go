package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/skiffmq/skiff/protocol"
)

func TestEpochCacheEndOffsetFor(t *testing.T) {
	c := epochCache{entries: []epochEntry{{1, 0}, {3, 10}, {6, 25}}}
	for _, tc := range []struct {
		ask       int32
		wantEpoch int32
		wantEnd   int64
	}{
		{UndefinedEpoch, UndefinedEpoch, UndefinedEpochOffset},
		{0, 0, 0},  // older than every entry: ends where the first starts
		{1, 1, 10}, // ends where 3 starts
		{2, 1, 10}, // unknown epoch between: the largest below it
		{3, 3, 25}, // ends where 6 starts
		{5, 3, 25}, // between
		{6, 6, 40}, // the newest ends at the log end
		{7, UndefinedEpoch, UndefinedEpochOffset}, // above every entry
	} {
		e, o := c.endOffsetFor(tc.ask, 40)
		if e != tc.wantEpoch || o != tc.wantEnd {
			t.Errorf("endOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.ask, e, o, tc.wantEpoch, tc.wantEnd)
		}
	}
}

func TestEpochCheckpointRoundTrip(t *testing.T) {
	c := epochCache{entries: []epochEntry{{0, 0}, {4, 17}}}
	got, err := decodeEpochCheckpoint(c.encode())
	if err != nil || len(got) != 2 || got[1] != (epochEntry{4, 17}) {
		t.Fatalf("decode = %v, %v", got, err)
	}
	if string(c.encode()) != "0\n2\n0 0\n4 17\n" {
		t.Fatalf("not Kafka's format: %q", c.encode())
	}
	for _, bad := range []string{"", "1\n0\n", "0\n2\n0 0\n", "0\n2\n3 5\n2 9\n", "0\n1\nx 1\n"} {
		if _, err := decodeEpochCheckpoint([]byte(bad)); err == nil {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
}

// TestLeaderEpochsPersistAndTruncate: appends at epochs 0, 2 and 5 build
// the cache; it survives a clean reopen through leader-epoch-checkpoint and
// a crash (rebuilt past the recovery point from the batches); truncation
// drops the epochs past the cut, on disk too.
func TestLeaderEpochsPersistAndTruncate(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	l, err := st.OpenLog("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range []int32{0, 0, 2, 2, 5} {
		mustAppend(t, l, makeBatch(2, 10, int64(i), 'a'), AppendOptions{LeaderEpoch: e, Sync: true})
	}
	if e, o := l.EndOffsetForEpoch(2); e != 2 || o != 8 {
		t.Fatalf("EndOffsetForEpoch(2) = %d, %d; want 2, 8", e, o)
	}
	if e, o := l.EndOffsetForEpoch(5); e != 5 || o != 10 {
		t.Fatalf("EndOffsetForEpoch(5) = %d, %d; want 5, 10", e, o)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := OSFS.ReadFile(filepath.Join(dir, "t-0", leaderEpochFile))
	if err != nil || string(data) != "0\n3\n0 0\n2 4\n5 8\n" {
		t.Fatalf("checkpoint %q, %v", data, err)
	}

	st = openTestStore(t, dir)
	l, err = st.OpenLog("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := l.LatestEpoch(); got != 5 {
		t.Fatalf("after reopen LatestEpoch = %d", got)
	}
	// A new epoch appended without a flush, then a crash: the checkpoint
	// lacks epoch 7, and the open finds it in the batches.
	mustAppend(t, l, makeBatch(1, 10, 9, 'b'), AppendOptions{LeaderEpoch: 7})
	crash(t, st)
	st = openTestStore(t, dir)
	l, err = st.OpenLog("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if e, o := l.EndOffsetForEpoch(5); e != 5 || o != 10 {
		t.Fatalf("after crash EndOffsetForEpoch(5) = %d, %d; want 5, 10", e, o)
	}
	if l.LogEndOffset() != 11 || l.LatestEpoch() != 7 {
		t.Fatalf("after crash LatestEpoch = %d, want 7", l.LatestEpoch())
	}

	leo, err := l.TruncateTo(6)
	if err != nil || leo != 6 {
		t.Fatalf("TruncateTo(6) = %d, %v", leo, err)
	}
	if e, o := l.EndOffsetForEpoch(2); e != 2 || o != 6 {
		t.Fatalf("after truncation EndOffsetForEpoch(2) = %d, %d; want 2, 6", e, o)
	}
	if e, _ := l.EndOffsetForEpoch(5); e != UndefinedEpoch {
		t.Fatalf("epoch 5 survived the truncation: %d", e)
	}
	data, _ = OSFS.ReadFile(filepath.Join(dir, "t-0", leaderEpochFile))
	if string(data) != "0\n2\n0 0\n2 4\n" {
		t.Fatalf("checkpoint after truncation %q", data)
	}
}

// TestAppendReplicatedKeepsOffsetsAndEpochs: a follower's copy of a
// leader's batches is byte for byte the leader's, offsets, epochs and
// producer state included, and a batch that does not continue the log is
// refused.
func TestAppendReplicatedKeepsOffsetsAndEpochs(t *testing.T) {
	_, leader := openTestLog(t, testConfig())
	for i := range 6 {
		mustAppend(t, leader, makeBatch(3, 50, int64(i), byte('a'+i)), AppendOptions{LeaderEpoch: int32(i / 2), Sync: true})
	}
	fr, err := leader.ReadFileReplica(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	src := readFileBytes(t, fr)
	fr.Release()

	_, follower := openTestLog(t, testConfig())
	half := batches(t, src)[0].Size() * 2
	if _, err := follower.AppendReplicated(append([]byte(nil), src[:half]...)); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.AppendReplicated(append([]byte(nil), src[:half]...)); !errors.Is(err, ErrReplicaOffset) {
		t.Fatalf("repeated batches: %v, want ErrReplicaOffset", err)
	}
	if _, err := follower.AppendReplicated(append([]byte(nil), src[half:]...)); err != nil {
		t.Fatal(err)
	}
	if err := follower.Flush(follower.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	follower.SetHighWatermarkCap(math.MaxInt64, false)
	fr, err = follower.ReadFile(0, 1<<20, true, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	got := readFileBytes(t, fr)
	fr.Release()
	if !bytes.Equal(got, src) {
		t.Fatalf("follower's log differs from the leader's (%d vs %d bytes)", len(got), len(src))
	}
	if e, o := follower.EndOffsetForEpoch(1); e != 1 || o != 12 {
		t.Fatalf("follower EndOffsetForEpoch(1) = %d, %d", e, o)
	}
}

// TestHighWatermarkCap: a leader's high watermark stops at the cap however
// far its own flush got, never goes down when the cap does; a follower's
// follows its leader's down.
func TestHighWatermarkCap(t *testing.T) {
	_, l := openTestLog(t, testConfig())
	l.SetHighWatermarkCap(0, false)
	for i := range 4 {
		mustAppend(t, l, makeBatch(2, 10, int64(i), 'x'), AppendOptions{Sync: true})
	}
	if hw := l.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d past a cap of 0", hw)
	}
	l.SetHighWatermarkCap(5, false) // inside the third batch: rounds down
	if hw := l.HighWatermark(); hw != 4 {
		t.Fatalf("HW %d, want 4", hw)
	}
	l.SetHighWatermarkCap(2, false)
	if hw := l.HighWatermark(); hw != 4 {
		t.Fatalf("leader HW went down to %d", hw)
	}
	l.SetHighWatermarkCap(2, true)
	if hw := l.HighWatermark(); hw != 2 {
		t.Fatalf("follower HW %d, want 2", hw)
	}
	l.SetHighWatermarkCap(math.MaxInt64, false)
	if hw := l.HighWatermark(); hw != 8 {
		t.Fatalf("HW %d after lifting the cap, want 8", hw)
	}
}

// TestTruncateToThenAppend: a truncated log takes new appends at the cut
// (across a deleted segment too), reads back whole, and reopens after a
// crash with exactly the new content.
func TestTruncateToThenAppend(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	l, err := st.OpenLog("t-0", testConfig()) // 4 KiB segments
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustAppend(t, l, makeBatch(1, 500, int64(i), 'a'), AppendOptions{Sync: true})
	}
	if l.SegmentCount() < 3 {
		t.Fatalf("want several segments, have %d", l.SegmentCount())
	}
	if leo, err := l.TruncateTo(5); err != nil || leo != 5 {
		t.Fatalf("TruncateTo = %d, %v", leo, err)
	}
	if hw := l.HighWatermark(); hw != 5 {
		t.Fatalf("HW %d after truncation to 5", hw)
	}
	for i := range 3 {
		mustAppend(t, l, makeBatch(1, 500, int64(100+i), 'z'), AppendOptions{Sync: true})
	}
	hs := readAll(t, l)
	if len(hs) != 8 || hs[5].BaseOffset != 5 || hs[7].BaseOffset != 7 {
		t.Fatalf("after truncate+append read %d batches", len(hs))
	}
	crash(t, st)
	st = openTestStore(t, dir)
	t.Cleanup(func() { _ = st.Close() })
	l, err = st.OpenLog("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if leo := l.LogEndOffset(); leo != 8 {
		t.Fatalf("reopened LEO %d, want 8", leo)
	}
	if hs := readAll(t, l); len(hs) != 8 || hs[7].MaxTimestamp != 102 {
		t.Fatalf("reopened log: %d batches", len(hs))
	}
}

func readFileBytes(t testing.TB, fr FileRead) []byte {
	t.Helper()
	var out []byte
	for _, r := range fr.Ranges {
		b := make([]byte, r.Len)
		if _, err := r.File.ReadAt(b, r.Offset); err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// TestResetToStartsOverAtOffset: a follower far behind its leader's log
// start empties its log and continues from there, across a restart.
func TestResetToStartsOverAtOffset(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	l, err := st.OpenLog("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		mustAppend(t, l, makeBatch(1, 500, int64(i), 'a'), AppendOptions{LeaderEpoch: 1, Sync: true})
	}
	if err := l.ResetTo(100); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 100 || l.LogEndOffset() != 100 || l.LatestEpoch() != UndefinedEpoch {
		t.Fatalf("after reset: start %d end %d epoch %d", l.LogStartOffset(), l.LogEndOffset(), l.LatestEpoch())
	}
	b := makeBatch(2, 10, 5, 'z')
	binary.BigEndian.PutUint64(b, 100) // the leader's offsets
	protocol.SetPartitionLeaderEpoch(b, 4)
	if _, err := l.AppendReplicated(b); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openTestStore(t, dir)
	t.Cleanup(func() { _ = st.Close() })
	l, err = st.OpenLog("t-0", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 100 || l.LogEndOffset() != 102 || l.SegmentCount() != 1 {
		t.Fatalf("reopened: start %d end %d segments %d", l.LogStartOffset(), l.LogEndOffset(), l.SegmentCount())
	}
	if e, o := l.EndOffsetForEpoch(4); e != 4 || o != 102 {
		t.Fatalf("EndOffsetForEpoch(4) = %d, %d", e, o)
	}
}

// TestTruncateIntoSealedSegmentWhoseFileWasClosed is the regression test
// for truncating into a sealed segment after main's file budget: its file
// is read-only or closed then, and the segment, active again, took the
// next append through it (EBADF, which failed the log). The cut segment
// now continues on a descriptor of its own.
func TestTruncateIntoSealedSegmentWhoseFileWasClosed(t *testing.T) {
	_, l := sealedLog(t, 6)
	if _, err := l.ReadFile(5, 1000, true, 1<<62); err != nil { // the budget closes the others
		t.Fatal(err)
	}
	if fileOpen(l, 2) {
		t.Fatal("segment 2's file is open; the test needs it closed")
	}
	if leo, err := l.TruncateTo(3); err != nil || leo != 3 {
		t.Fatalf("TruncateTo(3) = %d, %v", leo, err)
	}
	mustAppend(t, l, batchOfSize(1000, 100), AppendOptions{Sync: true})
	if leo := l.LogEndOffset(); leo != 4 {
		t.Fatalf("log end %d after appending at the cut, want 4", leo)
	}
	hs := readAll(t, l)
	if len(hs) != 4 || hs[3].BaseOffset != 3 || hs[3].MaxTimestamp != 100 {
		t.Fatalf("read %d batches after truncate+append", len(hs))
	}
}
