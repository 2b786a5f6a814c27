package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/protocol"
)

// crashSimDir is where the simulated store lives on its MemFS.
const crashSimDir = "/data"

func crashSimConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1024 // a roll every few appends
	cfg.IndexIntervalBytes = 128
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 2500
	return cfg
}

// crashSimRun is one workload on a fresh MemFS, the batches it had
// acknowledged when the crash came, and how far it asked the log start to go.
type crashSimRun struct {
	rng      *rand.Rand
	fsys     *MemFS
	acked    []ackedBatch
	maxStart int64 // the log start offset may not pass this after recovery
}

type ackedBatch struct {
	base, last int64
	body       []byte // the batch from its magic byte on: what the log may not change
}

// TestCrashSimulation crashes the machine under a log at random points of
// appends (acks=all and acks=0), rolls, retention, DeleteRecordsBefore,
// recovery point checkpoints and clean restarts (and, every fourth run,
// again while the log recovers from that), and checks every reopened
// log: it holds every acknowledged batch at the offset it was given,
// offsets only increase (gaps only where no acknowledged batch was), the index files on disk and in
// memory point at the batches they name, and the log takes appends again.
// SKIFF_CRASH_SEED replays a failing run.
func TestCrashSimulation(t *testing.T) {
	seed := crashSeed(t)
	runs := 1500
	if testing.Short() {
		runs = 300
	}
	// Measure how many mutating calls a whole workload makes, so crash
	// points spread over all of it.
	probe := &crashSimRun{rng: rand.New(rand.NewPCG(seed, 1<<62)), fsys: NewMemFS()}
	if err := probe.workload(); err != nil {
		t.Fatalf("seed %d: workload without a crash: %v", seed, err)
	}
	total := probe.fsys.Ops()
	crashes, recrashes := 0, 0
	for i := range runs {
		r := &crashSimRun{rng: rand.New(rand.NewPCG(seed, uint64(i))), fsys: NewMemFS()}
		// The crash draws from its own source: it may run on a log's goroutine.
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
		if i%4 == 0 {
			// Crash again while the log recovers: recovery must be
			// restartable at any point.
			img.CrashAfter(1+r.rng.IntN(40), rand.New(rand.NewPCG(r.rng.Uint64(), 0)))
			_ = r.verify(img) // fails where the crash came
			if again := img.Crashed(); again != nil {
				img = again
				recrashes++
			} else {
				img = img.Crash(rand.New(rand.NewPCG(r.rng.Uint64(), 0)))
			}
		}
		if err := r.verify(img); err != nil {
			t.Fatalf("seed %d run %d (SKIFF_CRASH_SEED=%d replays it): %v", seed, i, seed, err)
		}
	}
	t.Logf("seed %d: %d runs, %d crashed mid-workload, %d again during recovery, about %d mutating calls per workload",
		seed, runs, crashes, recrashes, total)
}

// crashSeed is a crash simulation's random seed: SKIFF_CRASH_SEED to replay
// a failing run, else a new one.
func crashSeed(t testing.TB) uint64 {
	s := os.Getenv("SKIFF_CRASH_SEED")
	if s == "" {
		return uint64(time.Now().UnixNano())
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func openSimStore(fsys *MemFS) (*Store, error) {
	return OpenStoreWith(crashSimDir, zerolog.Nop(), StoreOptions{FS: fsys, RecoveryPointInterval: -1})
}

// workload drives a log until the crash makes a call fail, and returns the
// first error of the filesystem (ErrCrashed when the crash came).
func (r *crashSimRun) workload() error {
	st, err := openSimStore(r.fsys)
	if err != nil {
		return err
	}
	l, err := st.OpenLog("t-0", crashSimConfig())
	if err != nil {
		_ = st.Close()
		return err
	}
	defer func() { // after a crash every call fails fast
		if st != nil {
			_ = st.Close()
		}
	}()
	seq := 0
	for range 60 {
		switch op := r.rng.IntN(20); {
		case op < 14: // append
			seq++
			b := makeBatch(1+r.rng.IntN(3), 10+r.rng.IntN(110), 1_700_000_000_000+int64(seq), byte(seq))
			body := bytes.Clone(b[16:])
			sync := op < 12
			res, err := l.Append(b, AppendOptions{Sync: sync})
			if err != nil {
				return err
			}
			if sync {
				r.acked = append(r.acked, ackedBatch{base: res.BaseOffset, last: res.LastOffset, body: body})
			}
		case op < 16:
			hw := l.HighWatermark()
			start := l.LogStartOffset()
			target := start + r.rng.Int64N(hw-start+1)
			r.maxStart = max(r.maxStart, target)
			if _, err := l.DeleteRecordsBefore(target); err != nil {
				return err
			}
		case op < 18:
			r.maxStart = max(r.maxStart, l.HighWatermark())
			if _, err := l.EnforceRetention(time.Now()); err != nil {
				return err
			}
		case op < 19:
			if err := st.CheckpointRecoveryPoints(); err != nil {
				return err
			}
		default: // clean restart
			if err := st.Close(); err != nil {
				return err
			}
			if st, err = openSimStore(r.fsys); err != nil {
				return err
			}
			if l, err = st.OpenLog("t-0", crashSimConfig()); err != nil {
				return err
			}
		}
	}
	return nil
}

// verify reopens the store from the crash image and checks the log.
func (r *crashSimRun) verify(img *MemFS) error {
	st, err := openSimStore(img)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer func() { _ = st.Close() }()
	l, err := st.OpenLog("t-0", crashSimConfig())
	if err != nil {
		return fmt.Errorf("reopen log: %w", err)
	}
	start, leo := l.LogStartOffset(), l.LogEndOffset()
	if start > r.maxStart {
		return fmt.Errorf("log start %d past the %d retention or DeleteRecords asked for", start, r.maxStart)
	}
	if hw := l.HighWatermark(); hw != leo {
		return fmt.Errorf("high watermark %d, log end %d after recovery", hw, leo)
	}
	got := map[int64][]byte{}
	next := int64(-1)
	for off := start; off < leo; {
		rr, err := l.Read(off, 1<<20, true)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if rr.Records == nil {
			break // the rest is a gap of offsets no fsync covered
		}
		for p := 0; p < len(rr.Records); {
			h, err := protocol.ValidateBatch(rr.Records[p:])
			if err != nil {
				return fmt.Errorf("read at %d: batch at byte %d: %w", off, p, err)
			}
			// Kafka's recovery leaves a gap where a rolled segment lost an
			// unsynced tail that the next segment's (equally unacknowledged)
			// data follows; readers skip it. The acknowledged batches are
			// checked below, so only duplicates and disorder are errors.
			if next >= 0 && h.BaseOffset < next {
				return fmt.Errorf("batch at %d follows one ending before %d: duplicated or reordered offsets; %s", h.BaseOffset, next, describeSegments(l))
			}
			got[h.BaseOffset] = rr.Records[p+16 : p+h.Size()]
			next = h.LastOffset() + 1
			p += h.Size()
		}
		off = next
	}
	for _, a := range r.acked {
		if a.last < start {
			continue
		}
		body, ok := got[a.base]
		if !ok {
			return fmt.Errorf("acknowledged batch %d-%d lost (log %d-%d)", a.base, a.last, start, leo)
		}
		if !bytes.Equal(body, a.body) {
			return fmt.Errorf("acknowledged batch %d-%d changed", a.base, a.last)
		}
	}
	if err := checkIndexes(l); err != nil {
		return err
	}
	// The recovered log takes appends at its end.
	res, err := l.Append(makeBatch(1, 10, 1_800_000_000_000, 'z'), AppendOptions{Sync: true})
	if err != nil || res.BaseOffset != leo {
		return fmt.Errorf("append after recovery: offset %d (log end %d), %v", res.BaseOffset, leo, err)
	}
	return nil
}

// checkIndexes checks every segment's index files on disk and its entries
// in memory: each offset entry points at the start of the batch whose last
// offset it names, within the segment's data, in increasing order; each
// time entry names an offset of the segment, in increasing order.
func checkIndexes(l *Log) error {
	l.mu.Lock()
	segs := l.mu.segs
	type seg struct {
		s         *segment
		size      int64
		next      int64
		off       []offsetEntry
		tim       []timeEntry
		lazy      *lazyIndex
		indexSave bool
	}
	var all []seg
	for _, s := range segs {
		s.acquire()
		all = append(all, seg{s: s, size: s.size, next: s.next, off: s.offIdx, tim: s.timeIdx, lazy: s.lazy, indexSave: s.indexSaved})
	}
	l.mu.Unlock()
	defer func() {
		for _, g := range all {
			g.s.release()
		}
	}()
	for _, g := range all {
		name := filepath.Base(g.s.path)
		off, tim := g.off, g.tim
		if g.lazy != nil {
			off, tim = g.lazy.entries(&l.logger)
		}
		if b, ok, err := readIndexFile(l.fs, g.s.path+indexExt); err != nil {
			return err
		} else if ok {
			if len(b)%offsetEntrySize != 0 {
				return fmt.Errorf("%s.index: %d bytes", name, len(b))
			}
			var disk []offsetEntry
			for p := 0; p < len(b); p += offsetEntrySize {
				disk = append(disk, offsetEntry{rel: binary.BigEndian.Uint32(b[p:]), pos: binary.BigEndian.Uint32(b[p+4:])})
			}
			if err := checkOffsetEntries(g.s, g.size, disk); err != nil {
				return fmt.Errorf("%s.index on disk: %w", name, err)
			}
		} else if g.indexSave && g.s.rolled {
			return fmt.Errorf("%s.index missing though saved", name)
		}
		if err := checkOffsetEntries(g.s, g.size, off); err != nil {
			return fmt.Errorf("%s offset index in memory: %w", name, err)
		}
		for i, e := range tim {
			if o := g.s.base + int64(e.rel); o >= g.next {
				return fmt.Errorf("%s time index entry %d names offset %d past the segment end %d", name, i, o, g.next)
			}
			if i > 0 && (e.ts <= tim[i-1].ts || e.rel < tim[i-1].rel) {
				return fmt.Errorf("%s time index entry %d out of order", name, i)
			}
		}
	}
	return nil
}

func checkOffsetEntries(s *segment, size int64, idx []offsetEntry) error {
	var hdr [protocol.BatchHeaderSize]byte
	for i, e := range idx {
		if i > 0 && (e.rel <= idx[i-1].rel || e.pos <= idx[i-1].pos) {
			return fmt.Errorf("entry %d out of order", i)
		}
		if int64(e.pos)+protocol.BatchHeaderSize > size {
			return fmt.Errorf("entry %d at byte %d past the data (%d bytes)", i, e.pos, size)
		}
		f, err := s.pin()
		if err != nil {
			return err
		}
		_, err = f.ReadAt(hdr[:], int64(e.pos))
		s.unpin()
		if err != nil {
			return err
		}
		h, err := protocol.ParseBatchHeader(hdr[:])
		if err != nil {
			return fmt.Errorf("entry %d at byte %d: %w", i, e.pos, err)
		}
		if h.LastOffset() != s.base+int64(e.rel) {
			return fmt.Errorf("entry %d names offset %d, the batch at byte %d ends at %d", i, s.base+int64(e.rel), e.pos, h.LastOffset())
		}
	}
	return nil
}

// describeSegments lists a log's segments for failure messages.
func describeSegments(l *Log) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := fmt.Sprintf("start %d end %d hw %d:", l.mu.logStart, l.mu.leo, l.mu.hw.offset)
	for _, s := range l.mu.segs {
		out += fmt.Sprintf(" [base %d next %d size %d rolled %v]", s.base, s.next, s.size, s.rolled)
	}
	return out
}
