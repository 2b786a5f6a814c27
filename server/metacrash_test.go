package server

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/skiffmq/skiff/storage"
)

// TestMetadataCrashSimulation crashes the machine at random points while
// topics are created and deleted (meta.json rewritten, partition logs
// created and removed) and restarts the broker from what the crash left:
// it must start, know every topic whose creation was acknowledged with all
// its partitions, not know any whose deletion was, and hold no partition
// directory of a topic it does not know. SKIFF_CRASH_SEED replays a run.
func TestMetadataCrashSimulation(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SKIFF_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	runs := 150
	if testing.Short() {
		runs = 30
	}
	probe := newMetaCrashRun(seed, 1<<62)
	probe.workload()
	total := probe.fsys.Ops()
	for i := range runs {
		r := newMetaCrashRun(seed, uint64(i))
		r.fsys.CrashAfter(1+r.rng.IntN(total), rand.New(rand.NewPCG(r.rng.Uint64(), 0)))
		r.workload()
		img := r.fsys.Crashed()
		if img == nil {
			img = r.fsys.Crash(rand.New(rand.NewPCG(r.rng.Uint64(), 0)))
		}
		if err := r.verify(img); err != nil {
			t.Fatalf("seed %d run %d (SKIFF_CRASH_SEED=%d replays it): %v", seed, i, seed, err)
		}
	}
}

type metaCrashRun struct {
	rng     *rand.Rand
	fsys    *storage.MemFS
	created map[string]int32 // acknowledged creations not since deleted
	deleted map[string]bool  // acknowledged deletions
}

func newMetaCrashRun(seed, run uint64) *metaCrashRun {
	return &metaCrashRun{rng: rand.New(rand.NewPCG(seed, run)), fsys: storage.NewMemFS(),
		created: map[string]int32{}, deleted: map[string]bool{}}
}

func (r *metaCrashRun) start(fsys storage.FS) (*Server, error) {
	return New(Config{Listen: "127.0.0.1:0", DataDir: "/data", FS: fsys})
}

func (r *metaCrashRun) workload() {
	srv, err := r.start(r.fsys)
	if err != nil {
		return // crashed while starting
	}
	defer srv.Close()
	for n := range 12 {
		if len(r.created) > 0 && r.rng.IntN(3) == 0 {
			for name := range r.created {
				if err := srv.meta.deleteTopic(name); err != nil {
					delete(r.created, name) // may or may not have happened
					return
				}
				delete(r.created, name)
				r.deleted[name] = true
				break
			}
			continue
		}
		name := fmt.Sprintf("t%d", n)
		parts := int32(1 + r.rng.IntN(3))
		if _, err := srv.meta.createTopic(name, parts, nil); err != nil {
			return
		}
		r.created[name] = parts
	}
}

func (r *metaCrashRun) verify(img *storage.MemFS) error {
	srv, err := r.start(img)
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	defer srv.Close()
	for name, parts := range r.created {
		tv, ok := srv.meta.view(name)
		if !ok || tv.partitions != parts {
			return fmt.Errorf("acknowledged topic %s (%d partitions): found %v with %d", name, parts, ok, tv.partitions)
		}
	}
	for name := range r.deleted {
		if _, ok := srv.meta.view(name); ok {
			return fmt.Errorf("topic %s is back after its deletion was acknowledged", name)
		}
	}
	names, err := srv.store.LogNames()
	if err != nil {
		return err
	}
	for _, n := range names {
		i := len(n) - 1
		for n[i] != '-' {
			i--
		}
		p, _ := strconv.Atoi(n[i+1:])
		if tv, ok := srv.meta.view(n[:i]); !ok || int32(p) >= tv.partitions {
			return fmt.Errorf("stray partition directory %s", n)
		}
	}
	return nil
}
