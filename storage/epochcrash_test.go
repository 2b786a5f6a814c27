package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestEpochCacheCrashSimulation crashes the machine at random points of
// appends at rising leader epochs (acks=all and acks=0), truncations,
// restarts at a later offset (ResetTo) and clean restarts, and checks every reopened log's leader-epoch cache
// against its batches: the entry in force at each batch's base offset
// names that batch's epoch, and no entry starts at or past the log end.
// SKIFF_CRASH_SEED replays a failing run.
func TestEpochCacheCrashSimulation(t *testing.T) {
	seed := crashSeed(t)
	runs := 400
	if testing.Short() {
		runs = 100
	}
	probe := NewMemFS()
	if err := epochWorkload(rand.New(rand.NewPCG(seed, 1<<62)), probe); err != nil {
		t.Fatalf("seed %d: workload without a crash: %v", seed, err)
	}
	total := probe.Ops()
	for i := range runs {
		epochCrashRun(t, seed, uint64(i), total)
	}
}

func epochCrashRun(t *testing.T, seed, i uint64, total int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, i))
	fsys := NewMemFS()
	fsys.CrashAfter(1+rng.IntN(total), rand.New(rand.NewPCG(rng.Uint64(), 0)))
	err := epochWorkload(rng, fsys)
	img := fsys.Crashed()
	if img == nil {
		if err != nil {
			t.Fatalf("seed %d run %d: workload failed without a crash: %v", seed, i, err)
		}
		img = fsys.Crash(rng)
	}
	if err := verifyEpochs(img); err != nil {
		t.Fatalf("seed %d run %d: %v", seed, i, err)
	}
}

// TestTruncationDurableBeforeEpochCheckpoint replays the two crashes the
// simulation found: a truncation not yet fsynced when the checkpoint
// without the cut epochs was, and a recovery point left above the cut
// (checkpointed "soon" instead of at once), after which the open skipped
// the epochs of batches written at the cut.
func TestTruncationDurableBeforeEpochCheckpoint(t *testing.T) {
	for _, c := range []struct{ seed, run uint64 }{{1795996496505716357, 12}, {1795996517302868921, 5}} {
		probe := NewMemFS()
		if err := epochWorkload(rand.New(rand.NewPCG(c.seed, 1<<62)), probe); err != nil {
			t.Fatal(err)
		}
		epochCrashRun(t, c.seed, c.run, probe.Ops())
	}
}

func epochWorkload(rng *rand.Rand, fsys *MemFS) error {
	st, err := openSimStore(fsys)
	if err != nil {
		return err
	}
	defer func() {
		if st != nil {
			_ = st.Close()
		}
	}()
	l, err := st.OpenLog("t-0", crashSimConfig())
	if err != nil {
		return err
	}
	epoch := int32(0)
	for seq := range 50 {
		switch op := rng.IntN(20); {
		case op < 15:
			if rng.IntN(4) == 0 {
				epoch++
			}
			b := makeBatch(1+rng.IntN(3), 10+rng.IntN(100), 1_700_000_000_000+int64(seq), byte(seq))
			if _, err := l.Append(b, AppendOptions{Sync: op < 12, LeaderEpoch: epoch}); err != nil {
				return err
			}
		case op == 18 && rng.IntN(3) == 0:
			// A follower behind its leader's log start starts over.
			if err := l.ResetTo(l.LogEndOffset() + 1 + rng.Int64N(5)); err != nil {
				return err
			}
			epoch++
		case op < 18:
			leo := l.LogEndOffset()
			start := l.LogStartOffset()
			if _, err := l.TruncateTo(start + rng.Int64N(leo-start+1)); err != nil {
				return err
			}
			epoch++ // a new leader writes what follows
		default:
			if err := st.Close(); err != nil {
				return err
			}
			if st, err = openSimStore(fsys); err != nil {
				return err
			}
			if l, err = st.OpenLog("t-0", crashSimConfig()); err != nil {
				return err
			}
		}
	}
	return nil
}

func verifyEpochs(img *MemFS) error {
	st, err := openSimStore(img)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer func() { _ = st.Close() }()
	l, err := st.OpenLog("t-0", crashSimConfig())
	if err != nil {
		return fmt.Errorf("reopen log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	entries := l.mu.epochs.entries
	if n := len(entries); n > 0 && entries[n-1].start >= l.mu.leo {
		return fmt.Errorf("epoch %d starts at %d, past the log end %d", entries[n-1].epoch, entries[n-1].start, l.mu.leo)
	}
	var bad error
	err = l.scanHeadersLocked(l.mu.logStart, func(base int64, epoch int32) {
		inForce := UndefinedEpoch
		for _, e := range entries {
			if e.start <= base {
				inForce = e.epoch
			}
		}
		if inForce != epoch && bad == nil {
			bad = fmt.Errorf("batch at %d has epoch %d, the cache says %d (entries %v)", base, epoch, inForce, entries)
		}
	})
	if err != nil {
		return err
	}
	return bad
}
