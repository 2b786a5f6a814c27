package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/protocol"
)

// kv is one record for keyedBatch; a nil value is a tombstone.
type kv struct {
	key   string
	value []byte
}

func val(s string) []byte { return []byte(s) }

// keyedBatch builds a batch of keyed records at ts with codec, from
// producer pid (-1: none) at epoch 0 with base sequence seq.
func keyedBatch(t testing.TB, ts int64, codec protocol.Codec, pid int64, seq int32, txn bool, recs ...kv) []byte {
	t.Helper()
	rs := make([]protocol.Record, len(recs))
	for i, r := range recs {
		rs[i] = protocol.Record{OffsetDelta: int32(i), Key: []byte(r.key), Value: r.value}
	}
	h := protocol.BatchHeader{BaseTimestamp: ts, MaxTimestamp: ts, ProducerID: pid, ProducerEpoch: -1, BaseSequence: -1}
	if pid >= 0 {
		h.ProducerEpoch, h.BaseSequence = 0, seq
	}
	if txn {
		h.Attributes |= protocol.AttrTransactional
	}
	b, err := protocol.BuildBatch(nil, h, codec, rs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func markerBatch(t testing.TB, ts int64, pid int64, commit bool) []byte {
	t.Helper()
	b, err := protocol.BuildControlBatch(nil, protocol.BatchHeader{BaseTimestamp: ts, MaxTimestamp: ts, ProducerID: pid}, commit, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compactStore opens a store with the background cleaner off (tests call
// Compact themselves) and a fake clock at ms.
func compactStore(t testing.TB, dir string, clock *fakeClock) *Store {
	t.Helper()
	st, err := OpenStoreWith(dir, zerolog.Nop(), StoreOptions{Now: clock.Now, Cleaner: CleanerOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func compactConfig() Config {
	cfg := testConfig()
	cfg.Compact = true
	cfg.MinCleanableDirtyRatio = 0
	cfg.SegmentBytes = 2048
	return cfg
}

// record is one record as read back: its offset, key and value.
type record struct {
	offset int64
	key    string
	value  []byte
	batch  protocol.BatchHeader
}

// readRecords reads every record of the log, checking offsets grow.
func readRecords(t testing.TB, l *Log) []record {
	t.Helper()
	var out []record
	off := l.LogStartOffset()
	last := int64(-1)
	for {
		rr, err := l.Read(off, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if rr.Records == nil {
			return out
		}
		for p := 0; p < len(rr.Records); {
			h, err := protocol.ValidateBatch(rr.Records[p:])
			if err != nil {
				t.Fatalf("batch at byte %d: %v", p, err)
			}
			if h.BaseOffset <= last {
				t.Fatalf("batch at %d after offset %d", h.BaseOffset, last)
			}
			recs, err := protocol.DecodeRecords(rr.Records[p:p+h.Size()], nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				o := h.BaseOffset + int64(r.OffsetDelta)
				if o <= last || o > h.LastOffset() {
					t.Fatalf("record offset %d after %d in batch [%d, %d]", o, last, h.BaseOffset, h.LastOffset())
				}
				last = o
				out = append(out, record{offset: o, key: string(r.Key), value: r.Value, batch: h})
			}
			last = max(last, h.LastOffset())
			off = h.LastOffset() + 1
			p += h.Size()
		}
	}
}

// latestByKey returns, for each key, the offset and value of its last record.
func latestByKey(recs []record) map[string]record {
	m := map[string]record{}
	for _, r := range recs {
		m[r.key] = r
	}
	return m
}

func mustCompact(t testing.TB, l *Log, now int64) CompactStats {
	t.Helper()
	st, err := l.Compact(time.UnixMilli(now))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// fillKeyed appends rounds of updates to keys k0..k(n-1), one batch per
// round, and returns the log's records before compaction.
func fillKeyed(t testing.TB, l *Log, codec protocol.Codec, keys, rounds int, ts int64) {
	t.Helper()
	for r := 0; r < rounds; r++ {
		recs := make([]kv, keys)
		for k := range recs {
			recs[k] = kv{key: fmt.Sprintf("k%d", k), value: val(fmt.Sprintf("v%d-%d", k, r))}
		}
		mustAppend(t, l, keyedBatch(t, ts, codec, -1, 0, false, recs...), AppendOptions{Sync: true})
	}
}

// TestCompactKeepsLatestValuePerKey: after compaction every key's latest
// record is still at its offset with its value, nothing else of the
// cleanable range remains, the active segment is untouched, and each
// rewritten batch keeps its codec.
func TestCompactKeepsLatestValuePerKey(t *testing.T) {
	for _, codec := range []protocol.Codec{protocol.CodecNone, protocol.CodecZstd, protocol.CodecLZ4} {
		t.Run(codec.String(), func(t *testing.T) {
			clock := &fakeClock{}
			clock.set(1_000_000)
			st := compactStore(t, t.TempDir(), clock)
			defer st.Close()
			l, err := st.OpenLog("t-0", compactConfig())
			if err != nil {
				t.Fatal(err)
			}
			fillKeyed(t, l, codec, 20, 60, 1000)
			// The first cleaning groups the full segments by their sizes
			// before cleaning: one each. The second merges the small ones.
			if s := mustCompact(t, l, clock.Now().UnixMilli()); !s.Cleaned || s.SegmentsOut != s.SegmentsIn {
				t.Fatalf("first cleaning %+v", s)
			}
			fillKeyed(t, l, codec, 20, 30, 1000)
			before := readRecords(t, l)
			want := latestByKey(before)
			segsBefore := len(l.mu.segs)
			stats := mustCompact(t, l, clock.Now().UnixMilli())
			if !stats.Cleaned || stats.SegmentsOut >= stats.SegmentsIn {
				t.Fatalf("stats %+v: want a cleaning that merges segments", stats)
			}
			after := readRecords(t, l)
			if got := latestByKey(after); len(got) != len(want) {
				t.Fatalf("%d keys after, %d before", len(got), len(want))
			}
			for k, w := range want {
				g := latestByKey(after)[k]
				if g.offset != w.offset || string(g.value) != string(w.value) {
					t.Fatalf("key %s: got offset %d %q, want %d %q", k, g.offset, g.value, w.offset, w.value)
				}
			}
			activeBase := l.mu.segs[len(l.mu.segs)-1].base
			seen := map[string]bool{}
			for _, r := range after {
				if r.offset < activeBase && seen[r.key] {
					t.Fatalf("key %s kept twice below the active segment (offset %d)", r.key, r.offset)
				}
				if r.offset < activeBase {
					seen[r.key] = true
				}
				if r.batch.Codec() != codec {
					t.Fatalf("batch at %d has codec %s, want %s", r.batch.BaseOffset, r.batch.Codec(), codec)
				}
			}
			if len(l.mu.segs) >= segsBefore {
				t.Fatalf("%d segments after, %d before", len(l.mu.segs), segsBefore)
			}
			// The cleaned log opens again, cleanly and after a crash.
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st2 := compactStore(t, st.Dir(), clock)
			defer st2.Close()
			l2, err := st2.OpenLog("t-0", compactConfig())
			if err != nil {
				t.Fatal(err)
			}
			if got := readRecords(t, l2); len(got) != len(after) {
				t.Fatalf("%d records after reopen, %d before", len(got), len(after))
			}
		})
	}
}

// TestCompactGroupsSegmentsBySize: Kafka's grouping keeps each group within
// segment.bytes and 2^31 offsets of its first segment.
func TestCompactGroupsSegmentsBySize(t *testing.T) {
	seg := func(base, size int64) *segment { return &segment{base: base, size: size} }
	segs := []*segment{seg(0, 400), seg(10, 300), seg(20, 400), seg(30, 0), seg(40, 100), seg(maxRelOffset+15, 10)}
	ends := []int64{10, 20, 30, 40, maxRelOffset + 15, maxRelOffset + 25}
	got := groupSegments(segs, ends, 1000)
	// 400+300 fit, +400 not; the empty one always joins; the last would
	// fit by size but not by offsets.
	want := [][2]int{{0, 2}, {2, 5}, {5, 6}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("groups %v, want %v", got, want)
	}
}

// TestCompactHonoursMinCompactionLag: segments with records newer than
// min.compaction.lag.ms are not cleaned; once the clock passes, they are.
func TestCompactHonoursMinCompactionLag(t *testing.T) {
	clock := &fakeClock{}
	clock.set(10_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	cfg := compactConfig()
	cfg.MinCompactionLagMs = 5_000
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	fillKeyed(t, l, protocol.CodecNone, 10, 40, 8_000)
	if s := mustCompact(t, l, clock.Now().UnixMilli()); s.Cleaned {
		t.Fatalf("cleaned records 2 s old with a 5 s lag: %+v", s)
	}
	clock.set(13_001)
	if s := mustCompact(t, l, clock.Now().UnixMilli()); !s.Cleaned {
		t.Fatalf("not cleaned once the lag passed: %+v", s)
	}
}

// TestCompactHonoursDirtyRatioAndMaxLag: a log below
// min.cleanable.dirty.ratio is left alone until max.compaction.lag.ms
// passes for its first dirty segment.
func TestCompactHonoursDirtyRatioAndMaxLag(t *testing.T) {
	clock := &fakeClock{}
	clock.set(100_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	cfg := compactConfig()
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	fillKeyed(t, l, protocol.CodecNone, 10, 40, 90_000)
	mustCompact(t, l, clock.Now().UnixMilli()) // all clean now
	fillKeyed(t, l, protocol.CodecNone, 10, 8, 95_000)
	ratio, _ := l.DirtyRatio(clock.Now())
	if ratio <= 0 || ratio >= 0.9 {
		t.Fatalf("dirty ratio %g", ratio)
	}
	cfg.MinCleanableDirtyRatio = 0.9
	cfg.MaxCompactionLagMs = 10_000
	l.SetConfig(cfg)
	if s := mustCompact(t, l, clock.Now().UnixMilli()); s.Cleaned {
		t.Fatalf("cleaned at ratio %g below 0.9: %+v", ratio, s)
	}
	clock.set(105_001)
	if s := mustCompact(t, l, clock.Now().UnixMilli()); !s.Cleaned {
		t.Fatalf("not cleaned after max.compaction.lag.ms: %+v", s)
	}
}

// TestCompactRemovesTombstonesAfterDeleteRetention: a tombstone outlives
// the cleaning that first keeps it by delete.retention.ms, then goes, with
// the older values of its key.
func TestCompactRemovesTombstonesAfterDeleteRetention(t *testing.T) {
	clock := &fakeClock{}
	clock.set(1_000_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 60_000
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	fillKeyed(t, l, protocol.CodecNone, 10, 20, 1000)
	mustAppend(t, l, keyedBatch(t, 1000, protocol.CodecNone, -1, 0, false, kv{key: "k3"}, kv{key: "k7"}), AppendOptions{Sync: true})
	fillKeyed(t, l, protocol.CodecNone, 2, 40, 1000) // k0, k1 only: rolls past the tombstones
	tombstones := func() []string {
		var ks []string
		for _, r := range readRecords(t, l) {
			if r.value == nil {
				ks = append(ks, r.key)
			}
		}
		return ks
	}
	mustCompact(t, l, clock.Now().UnixMilli())
	if got := tombstones(); fmt.Sprint(got) != "[k3 k7]" {
		t.Fatalf("tombstones after the first cleaning: %v", got)
	}
	if _, ok := latestByKey(readRecords(t, l))["k3"]; !ok {
		t.Fatal("k3 gone entirely")
	}
	clock.advance(59_000)
	if s := mustCompact(t, l, clock.Now().UnixMilli()); s.Cleaned {
		t.Fatalf("cleaned again before the horizon: %+v", s)
	}
	clock.advance(1_001)
	if s := mustCompact(t, l, clock.Now().UnixMilli()); !s.Cleaned {
		t.Fatalf("not cleaned at the horizon: %+v", s)
	}
	if got := tombstones(); len(got) != 0 {
		t.Fatalf("tombstones after delete.retention.ms: %v", got)
	}
	for _, r := range readRecords(t, l) {
		if r.key == "k3" || r.key == "k7" {
			t.Fatalf("deleted key %s still has a record at %d", r.key, r.offset)
		}
	}
}

// TestCompactTransactions: aborted records go, committed ones are
// deduplicated like any other, the aborted transaction leaves the index
// once its data is gone, markers go once nothing needs them and their
// horizon passed, and each producer's last batch stays (possibly empty).
func TestCompactTransactions(t *testing.T) {
	clock := &fakeClock{}
	clock.set(1_000_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 1000
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := clock.Now().UnixMilli()
	// Producer 7 commits a=1, then aborts a=2 b=2; producer 8 commits b=3.
	mustAppend(t, l, keyedBatch(t, ts, protocol.CodecNone, 7, 0, true, kv{"a", val("1")}), AppendOptions{Sync: true})
	mustAppend(t, l, markerBatch(t, ts, 7, true), AppendOptions{Sync: true})
	mustAppend(t, l, keyedBatch(t, ts, protocol.CodecNone, 7, 1, true, kv{"a", val("2")}, kv{"b", val("2")}), AppendOptions{Sync: true})
	mustAppend(t, l, markerBatch(t, ts, 7, false), AppendOptions{Sync: true})
	mustAppend(t, l, keyedBatch(t, ts, protocol.CodecNone, 8, 0, true, kv{"b", val("3")}), AppendOptions{Sync: true})
	mustAppend(t, l, markerBatch(t, ts, 8, true), AppendOptions{Sync: true})
	mustAppend(t, l, keyedBatch(t, ts, protocol.CodecNone, 7, 3, true, kv{"c", val("7")}), AppendOptions{Sync: true})
	mustAppend(t, l, markerBatch(t, ts, 7, true), AppendOptions{Sync: true})
	fillKeyed(t, l, protocol.CodecNone, 4, 40, ts) // other keys: roll past the transactions
	if n := len(l.AbortedTxns(0, 1000)); n != 1 {
		t.Fatalf("%d aborted transactions before", n)
	}
	values := func() map[string]string {
		m := map[string]string{}
		for _, r := range readRecords(t, l) {
			if r.batch.IsControl() || (r.key != "a" && r.key != "b") {
				continue
			}
			m[r.key] = string(r.value)
		}
		return m
	}
	for pass := 0; pass < 3; pass++ {
		fillKeyed(t, l, protocol.CodecNone, 4, 40, ts) // dirty again
		if s := mustCompact(t, l, clock.Now().UnixMilli()); !s.Cleaned {
			t.Fatalf("pass %d did not clean", pass)
		}
		if got := values(); got["a"] != "1" || got["b"] != "3" {
			t.Fatalf("pass %d: committed values %v, want a=1 b=3", pass, got)
		}
		clock.advance(2000)
	}
	for _, r := range readRecords(t, l) {
		if string(r.value) == "2" {
			t.Fatalf("aborted record %s=2 at %d survived", r.key, r.offset)
		}
	}
	if got := l.AbortedTxns(0, 1000); len(got) != 0 {
		t.Fatalf("aborted index still holds %+v after its data went", got)
	}
	markers := map[int64]bool{}
	for _, h := range readHeaders(t, l) {
		if h.IsControl() {
			markers[h.BaseOffset] = true
		}
	}
	// Offsets: 0 a=1, 1 commit, 2-3 aborted, 4 abort, 5 b=3, 6 commit,
	// 7 c=7, 8 commit. The commit markers' data stays, so do they.
	if markers[4] || !markers[1] || !markers[6] || !markers[8] {
		t.Fatalf("markers left at %v: want the abort marker (4) gone and the commit markers kept", markers)
	}
	// Each producer's last batch stays so its sequence survives a rebuild
	// of the producer state from the log.
	lasts := map[int64]bool{}
	for _, p := range l.Producers() {
		lasts[p.ProducerID] = true
	}
	hs := readHeaders(t, l)
	for pid := range lasts {
		found := false
		for _, h := range hs {
			if h.ProducerID == pid {
				found = true
			}
		}
		if !found {
			t.Fatalf("no batch of live producer %d kept", pid)
		}
	}
	// A crash that loses the snapshot rebuilds the same producers.
	crash(t, st)
	_ = os.Remove(filepath.Join(l.Dir(), producerSnapshotFile))
	st2 := compactStore(t, st.Dir(), clock)
	defer st2.Close()
	l2, err := st2.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l2.Producers() {
		delete(lasts, p.ProducerID)
	}
	if len(lasts) != 0 {
		t.Fatalf("producers %v lost after a rebuild from the compacted log", lasts)
	}
}

// TestCompactLeavesOpenTransactionsAlone: nothing at or past the last
// stable offset is cleaned.
func TestCompactLeavesOpenTransactionsAlone(t *testing.T) {
	clock := &fakeClock{}
	clock.set(1_000_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	l, err := st.OpenLog("t-0", compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	ts := clock.Now().UnixMilli()
	fillKeyed(t, l, protocol.CodecNone, 4, 20, ts)
	open := l.LogEndOffset()
	mustAppend(t, l, keyedBatch(t, ts, protocol.CodecNone, 9, 0, true, kv{"k0", val("txn")}), AppendOptions{Sync: true})
	fillKeyed(t, l, protocol.CodecNone, 4, 40, ts)
	mustCompact(t, l, ts)
	var past int
	for _, r := range readRecords(t, l) {
		if r.offset >= open {
			past++
		}
	}
	if want := 1 + 4*40; past != want {
		t.Fatalf("%d records at or past the open transaction, want %d", past, want)
	}
}

// TestCompactDedupeBufferBoundsEachPass: with a dedupe map too small for
// the dirty part, cleaning takes several passes and ends with the same log
// as one big pass.
func TestCompactDedupeBufferBoundsEachPass(t *testing.T) {
	clock := &fakeClock{}
	clock.set(1_000_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	l, err := st.OpenLog("t-0", compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < 30; r++ {
		recs := make([]kv, 10)
		for k := range recs {
			recs[k] = kv{key: fmt.Sprintf("r%d-k%d", r%15, k), value: val(fmt.Sprint(r))}
		}
		mustAppend(t, l, keyedBatch(t, 1000, protocol.CodecNone, -1, 0, false, recs...), AppendOptions{Sync: true})
	}
	want := latestByKey(readRecords(t, l))
	passes := 0
	for ; passes < 100; passes++ {
		s, err := l.compact(clock.Now().UnixMilli(), 40*offsetMapEntryBytes, newThrottler(0, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !s.Cleaned {
			break
		}
		if s.Keys > 40 {
			t.Fatalf("pass %d held %d keys, over the 40 the buffer allows", passes, s.Keys)
		}
	}
	if passes < 2 {
		t.Fatalf("%d passes, want several", passes)
	}
	got := latestByKey(readRecords(t, l))
	for k, w := range want {
		if got[k].offset != w.offset {
			t.Fatalf("key %s at %d, want %d", k, got[k].offset, w.offset)
		}
	}
	activeBase := l.mu.segs[len(l.mu.segs)-1].base
	if n := countBelow(readRecords(t, l), activeBase); n > len(want) {
		t.Fatalf("%d records below the active segment for %d keys", n, len(want))
	}
}

func countBelow(recs []record, off int64) int {
	n := 0
	for _, r := range recs {
		if r.offset < off {
			n++
		}
	}
	return n
}

// TestCompactSwapCrashAtEveryStep: a crash at each step of the swap leaves
// a log that opens, reads in order, and holds every key's latest value:
// the old segments before the swap is decided, the cleaned one after.
func TestCompactSwapCrashAtEveryStep(t *testing.T) {
	steps := []string{"cleaned", "renamed-" + timeIndexExt, "renamed-" + indexExt, "renamed-" + logExt, "swap",
		"remove-0", "remove-1", "final-" + timeIndexExt, "final-" + indexExt, "final-" + logExt}
	for _, step := range steps {
		t.Run(strings.TrimPrefix(step, "."), func(t *testing.T) {
			clock := &fakeClock{}
			clock.set(1_000_000)
			st := compactStore(t, t.TempDir(), clock)
			l, err := st.OpenLog("t-0", compactConfig())
			if err != nil {
				t.Fatal(err)
			}
			fillKeyed(t, l, protocol.CodecNone, 20, 60, 1000)
			mustCompact(t, l, clock.Now().UnixMilli())
			fillKeyed(t, l, protocol.CodecNone, 20, 30, 1000) // the next cleaning merges segments
			before := readRecords(t, l)
			want := latestByKey(before)
			compactCrashAt = func(s string) bool { return s == step }
			_, err = l.Compact(clock.Now())
			compactCrashAt = nil
			if !errors.Is(err, errCompactCrash) {
				t.Fatalf("compact: %v, want the simulated crash", err)
			}
			crash(t, st)
			st2 := compactStore(t, st.Dir(), clock)
			defer st2.Close()
			l2, err := st2.OpenLog("t-0", compactConfig())
			if err != nil {
				t.Fatal(err)
			}
			after := readRecords(t, l2)
			got := latestByKey(after)
			for k, w := range want {
				if got[k].offset != w.offset || string(got[k].value) != string(w.value) {
					t.Fatalf("key %s: %d %q, want %d %q", k, got[k].offset, got[k].value, w.offset, w.value)
				}
			}
			for _, name := range segmentFilesAll(t, l2.Dir()) {
				if strings.HasSuffix(name, swapExt) || strings.HasSuffix(name, cleanedExt) {
					t.Fatalf("%s left after recovery", name)
				}
			}
			// And it compacts to the same result from there.
			mustCompact(t, l2, clock.Now().UnixMilli())
			if got := latestByKey(readRecords(t, l2)); len(got) != len(want) {
				t.Fatalf("%d keys after compacting again, want %d", len(got), len(want))
			}
		})
	}
}

func segmentFilesAll(t testing.TB, dir string) []string {
	t.Helper()
	names, err := listCompactDir(OSFS, dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// readHeaders returns the header of every batch in the log, empty ones
// included.
func readHeaders(t testing.TB, l *Log) []protocol.BatchHeader {
	t.Helper()
	var hs []protocol.BatchHeader
	off := l.LogStartOffset()
	for {
		rr, err := l.Read(off, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if rr.Records == nil {
			return hs
		}
		for _, h := range batches(t, rr.Records) {
			hs = append(hs, h)
			off = h.LastOffset() + 1
		}
	}
}

// TestCompactedSegmentEndsWhereItsSegmentsEnded: a read at an offset
// compaction removed from the end of a cleaned segment finds the next
// batch, even when the segment holds more than the read asks for. A
// cleaned segment ending in a gap made such a read return nothing below
// the high watermark, which stopped the coordinators' replay early.
func TestCompactedSegmentEndsWhereItsSegmentsEnded(t *testing.T) {
	clock := &fakeClock{}
	clock.set(1_000_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	l, err := st.OpenLog("t-0", compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Each segment keeps its one-off keys and loses its trailing updates
	// of shared keys.
	for r := 0; r < 60; r++ {
		mustAppend(t, l, keyedBatch(t, 1000, protocol.CodecNone, -1, 0, false, kv{fmt.Sprintf("once-%d", r), val(strings.Repeat("x", 150))}), AppendOptions{Sync: true})
		mustAppend(t, l, keyedBatch(t, 1000, protocol.CodecNone, -1, 0, false, kv{"shared", val(fmt.Sprint(r))}, kv{"shared", val("y")}), AppendOptions{Sync: true})
	}
	mustCompact(t, l, clock.Now().UnixMilli())
	for i := 0; i+1 < len(l.mu.segs); i++ {
		end := l.mu.segs[i+1].base
		rr, err := l.Read(end-1, 100, true)
		if err != nil {
			t.Fatal(err)
		}
		hs := batches(t, rr.Records)
		if len(hs) == 0 || hs[0].LastOffset() < end-1 {
			t.Fatalf("read at %d, the last offset of segment %d, got %+v", end-1, l.mu.segs[i].base, hs)
		}
	}
}

// TestStoreCleanerCompactsInBackground: the store's own cleaner thread
// finds a due log and compacts it, and Close stops it.
func TestStoreCleanerCompactsInBackground(t *testing.T) {
	st, err := OpenStoreWith(t.TempDir(), zerolog.Nop(), StoreOptions{Cleaner: CleanerOptions{Backoff: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.OpenLog("t-0", compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	fillKeyed(t, l, protocol.CodecNone, 20, 60, time.Now().UnixMilli()) // ~40 KiB in 2 KiB segments
	// The cleaner may start while the log fills; in the end what is left is
	// the active segment and about one record per key.
	checkFor(t, 30*time.Second, func() error {
		if n := len(readRecords(t, l)); l.Size() > 3*compactConfig().SegmentBytes || n > 20*10 {
			return fmt.Errorf("size %d, %d records", l.Size(), n)
		}
		return nil
	})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFindTimestampSkipsEmptiedBatches: a batch compaction emptied (kept
// for its producer fields or to end its segment) is not the answer to a
// timestamp lookup; the next batch with records is.
func TestFindTimestampSkipsEmptiedBatches(t *testing.T) {
	clock := &fakeClock{}
	clock.set(1_000_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	l, err := st.OpenLog("t-0", compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	for r := int64(0); r < 60; r++ {
		mustAppend(t, l, keyedBatch(t, 1000+r, protocol.CodecNone, -1, 0, false, kv{"k", val(strings.Repeat("v", 100))}), AppendOptions{Sync: true})
	}
	mustCompact(t, l, clock.Now().UnixMilli())
	empty := false
	for _, h := range readHeaders(t, l) {
		empty = empty || h.NumRecords == 0
	}
	if !empty {
		t.Fatal("no emptied batch to look past")
	}
	b, ok, err := l.FindTimestamp(1001)
	if err != nil || !ok {
		t.Fatalf("FindTimestamp: %v %v", ok, err)
	}
	if h := batches(t, b)[0]; h.NumRecords == 0 {
		t.Fatalf("answered with an empty batch at %d", h.BaseOffset)
	}
}

// TestMaxTimestampBatchSkipsEmptiedBatches: the batch with the largest
// timestamp, emptied by compaction but kept as its producer's last, no
// longer answers ListOffsets' max-timestamp lookup; the largest record
// left does.
func TestMaxTimestampBatchSkipsEmptiedBatches(t *testing.T) {
	clock := &fakeClock{}
	clock.set(1_000_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	l, err := st.OpenLog("t-0", compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	ts := clock.Now().UnixMilli()
	mustAppend(t, l, keyedBatch(t, ts+5000, protocol.CodecNone, 5, 0, false, kv{"k", val("old")}), AppendOptions{Sync: true})
	for r := int64(0); r < 60; r++ {
		mustAppend(t, l, keyedBatch(t, ts+r, protocol.CodecNone, -1, 0, false, kv{"k", val(strings.Repeat("v", 100))}), AppendOptions{Sync: true})
	}
	mustCompact(t, l, clock.Now().UnixMilli())
	b, ok, err := l.MaxTimestampBatch()
	if err != nil || !ok {
		t.Fatalf("MaxTimestampBatch: %v %v", ok, err)
	}
	if h := batches(t, b)[0]; h.NumRecords == 0 {
		t.Fatalf("answered with the emptied batch at %d", h.BaseOffset)
	}
}

// TestCompactHonoursIORate: log.cleaner.io.max.bytes.per.second holds a
// cleaning to its rate (a lower bound on its duration only).
func TestCompactHonoursIORate(t *testing.T) {
	clock := &fakeClock{}
	clock.set(1_000_000)
	st := compactStore(t, t.TempDir(), clock)
	defer st.Close()
	l, err := st.OpenLog("t-0", compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	fillKeyed(t, l, protocol.CodecNone, 20, 60, 1000)
	const rate = 100_000 // bytes per second
	start := time.Now()
	s, err := l.compact(clock.Now().UnixMilli(), 1<<20, newThrottler(rate, nil))
	if err != nil {
		t.Fatal(err)
	}
	moved := s.BytesRead + s.BytesWritten
	if min := time.Duration(float64(moved-rate/10) / rate * float64(time.Second)); time.Since(start) < min {
		t.Fatalf("moved %d bytes in %v at %d B/s, want at least %v", moved, time.Since(start), rate, min)
	}
}
