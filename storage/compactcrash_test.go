package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/protocol"
)

// compactCrashRun is one workload of keyed appends and compactions on a
// fresh MemFS, and the latest acknowledged record of each key.
type compactCrashRun struct {
	t      testing.TB
	rng    *rand.Rand
	fsys   *MemFS
	latest map[string]ackedRecord
}

type ackedRecord struct {
	offset int64
	value  string
}

const compactCrashTopic = "c-0"

func compactCrashConfig() Config {
	cfg := compactConfig()
	cfg.SegmentBytes = 512 // a roll every few appends, so there is always something to clean
	cfg.IndexIntervalBytes = 64
	return cfg
}

func openCompactCrashStore(fsys *MemFS) (*Store, error) {
	return OpenStoreWith(crashSimDir, zerolog.Nop(), StoreOptions{FS: fsys, RecoveryPointInterval: -1,
		Now: func() time.Time { return time.UnixMilli(2_000_000_000_000) }, Cleaner: CleanerOptions{Disabled: true}})
}

// TestCompactionCrashSimulation crashes the machine at random points of a
// workload of keyed appends, compactions (writing the cleaned segments,
// the swap, the cleaner checkpoint) and clean restarts, and checks every
// reopened log: for each key, its latest acknowledged record is still
// there at its offset, or a later record of the key is (compaction may
// then have dropped it); offsets only increase; indexes point at their
// batches; the log takes appends. SKIFF_CRASH_SEED replays a failing run.
func TestCompactionCrashSimulation(t *testing.T) {
	seed := crashSeed(t)
	runs := 1000
	if testing.Short() {
		runs = 200
	}
	probe := &compactCrashRun{t: t, rng: rand.New(rand.NewPCG(seed, 1<<62)), fsys: NewMemFS(), latest: map[string]ackedRecord{}}
	if err := probe.workload(); err != nil {
		t.Fatalf("seed %d: workload without a crash: %v", seed, err)
	}
	total := probe.fsys.Ops()
	crashes := 0
	for i := range runs {
		r := &compactCrashRun{t: t, rng: rand.New(rand.NewPCG(seed, uint64(i))), fsys: NewMemFS(), latest: map[string]ackedRecord{}}
		r.fsys.CrashAfter(1+r.rng.IntN(total), rand.New(rand.NewPCG(r.rng.Uint64(), 0)))
		err := r.workload()
		img := r.fsys.Crashed()
		if img != nil {
			crashes++
		} else {
			if err != nil {
				t.Fatalf("seed %d run %d: workload failed without a crash: %v", seed, i, err)
			}
			img = r.fsys.Crash(r.rng)
		}
		if err := r.verify(img); err != nil {
			t.Fatalf("seed %d run %d (SKIFF_CRASH_SEED=%d replays it): %v", seed, i, seed, err)
		}
	}
	t.Logf("seed %d: %d runs, %d crashed mid-workload, about %d mutating calls per workload", seed, runs, crashes, total)
}

func (r *compactCrashRun) workload() error {
	st, err := openCompactCrashStore(r.fsys)
	if err != nil {
		return err
	}
	defer func() {
		if st != nil {
			_ = st.Close()
		}
	}()
	l, err := st.OpenLog(compactCrashTopic, compactCrashConfig())
	if err != nil {
		return err
	}
	for seq := range 80 {
		switch op := r.rng.IntN(10); {
		case op < 7: // a keyed append, acknowledged after its fsync
			key := fmt.Sprintf("k%d", r.rng.IntN(6))
			value := fmt.Sprintf("v%d", seq)
			b := keyedBatch(r.t, 1_900_000_000_000, protocol.CodecNone, -1, 0, false, kv{key: key, value: val(value)})
			res, err := l.Append(b, AppendOptions{Sync: true})
			if err != nil {
				return err
			}
			r.latest[key] = ackedRecord{offset: res.BaseOffset, value: value}
		case op < 9:
			if _, err := l.Compact(time.UnixMilli(2_000_000_000_000)); err != nil {
				return err
			}
		default: // clean restart
			if err := st.Close(); err != nil {
				st = nil
				return err
			}
			if st, err = openCompactCrashStore(r.fsys); err != nil {
				return err
			}
			if l, err = st.OpenLog(compactCrashTopic, compactCrashConfig()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *compactCrashRun) verify(img *MemFS) error {
	st, err := openCompactCrashStore(img)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer func() { _ = st.Close() }()
	l, err := st.OpenLog(compactCrashTopic, compactCrashConfig())
	if err != nil {
		return fmt.Errorf("reopen log: %w", err)
	}
	type seen struct {
		value string
		found bool
	}
	at := map[int64]string{}     // offset -> key
	values := map[int64]string{} // offset -> value
	lastByKey := map[string]int64{}
	last := int64(-1)
	for off := l.LogStartOffset(); ; {
		rr, err := l.Read(off, 1<<20, true)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if rr.Records == nil {
			break
		}
		for p := 0; p < len(rr.Records); {
			h, err := protocol.ValidateBatch(rr.Records[p:])
			if err != nil {
				return fmt.Errorf("read at %d: batch at byte %d: %w", off, p, err)
			}
			if h.BaseOffset <= last {
				return fmt.Errorf("batch at %d after offset %d: duplicated or reordered; %s", h.BaseOffset, last, describeSegments(l))
			}
			recs, err := protocol.DecodeRecords(rr.Records[p:p+h.Size()], nil)
			if err != nil {
				return fmt.Errorf("batch at %d: %w", h.BaseOffset, err)
			}
			for _, rec := range recs {
				o := h.BaseOffset + int64(rec.OffsetDelta)
				at[o], values[o] = string(rec.Key), string(rec.Value)
				lastByKey[string(rec.Key)] = max(lastByKey[string(rec.Key)], o)
			}
			last = h.LastOffset()
			off = last + 1
			p += h.Size()
		}
	}
	for key, a := range r.latest {
		if at[a.offset] == key && values[a.offset] == a.value {
			continue
		}
		if newest, ok := lastByKey[key]; ok && newest > a.offset {
			continue // a later (unacknowledged but surviving) write of the key
		}
		return fmt.Errorf("key %s: acknowledged value %s at %d lost (log %d-%d); %s",
			key, a.value, a.offset, l.LogStartOffset(), l.LogEndOffset(), describeSegments(l))
	}
	if err := checkIndexes(l); err != nil {
		return err
	}
	leo := l.LogEndOffset()
	res, err := l.Append(makeBatch(1, 10, 1_950_000_000_000, 'z'), AppendOptions{Sync: true})
	if err != nil || res.BaseOffset != leo {
		return fmt.Errorf("append after recovery: offset %d (log end %d), %v", res.BaseOffset, leo, err)
	}
	return nil
}
