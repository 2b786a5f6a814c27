package storage

import (
	"fmt"
	"testing"

	"github.com/rs/zerolog"
)

// Regression: after a clean stop, a log whose active segment had no index
// entry (empty, or smaller than index.interval.bytes, as in every idle or
// new partition) had its index "rebuilt" and written again at each open:
// two fsyncs, two renames and a directory fsync per partition, seconds of
// start-up for a thousand partitions. The files already hold what the scan
// finds, so a clean open now writes nothing.
func TestCleanOpenOfSmallActiveSegmentsWritesNothing(t *testing.T) {
	fsys := NewMemFS()
	open := func() *Store {
		st, err := OpenStoreWith("/data", zerolog.Nop(), StoreOptions{FS: fsys, Cleaner: CleanerOptions{Disabled: true}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	cfg := testConfig()
	st := open()
	for p := range 4 {
		l, err := st.OpenLog(fmt.Sprintf("t-%d", p), cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Partition 0 stays empty; the others hold less than an index
		// interval in their active segment, after some rolled ones.
		for range p * 3 {
			mustAppend(t, l, batchOfSize(1500, 1), AppendOptions{Sync: true})
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open()
	defer st.Close()
	before := fsys.Ops()
	for p := range 4 {
		l, err := st.OpenLog(fmt.Sprintf("t-%d", p), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(p * 3); l.LogEndOffset() != want {
			t.Fatalf("t-%d ends at %d, want %d", p, l.LogEndOffset(), want)
		}
	}
	if n := fsys.Ops() - before; n != 0 {
		t.Fatalf("opening 4 cleanly stopped logs made %d writes, syncs, renames or removals", n)
	}
}
