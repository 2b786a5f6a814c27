package storage

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/protocol"
)

// idempotentBatch is a one-record batch from producer pid at epoch 0 with
// the given base sequence, stamped now (an old timestamp would make the
// producer expire at once).
func idempotentBatch(pid int64, seq int32) []byte {
	return producerBatchAt(pid, 0, seq, time.Now().UnixMilli())
}

// producerBatchAt is a one-record batch from producer pid at epoch with
// the given base sequence and timestamp.
func producerBatchAt(pid int64, epoch int16, seq int32, ts int64) []byte {
	b := makeBatch(1, 200, ts, 'p')
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	protocol.UpdateCRC(b)
	return b
}

// TestProducerStateSnapshotAtRollSurvivesCrash: a crash after several rolls
// still detects a retried batch, starting from the snapshot written at the
// last roll rather than a scan of every segment.
func TestProducerStateSnapshotAtRollSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig() // 4 KiB segments: a roll every ~15 batches
	st := openTestStore(t, dir)
	l, err := st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	var lastRes AppendResult
	for seq := int32(0); seq < 60; seq++ {
		last = idempotentBatch(7, seq)
		lastRes = mustAppend(t, l, append([]byte(nil), last...), AppendOptions{Sync: true})
	}
	if len(segmentFiles(t, l.Dir(), ".log")) < 3 {
		t.Fatal("expected several rolled segments")
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), producerSnapshotFile)); err != nil {
		t.Fatalf("no producer state snapshot after rolls: %v", err)
	}
	crash(t, st)

	st = openTestStore(t, dir)
	t.Cleanup(func() { st.Close() })
	l, err = st.OpenLog("t-0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Append(append([]byte(nil), last...), AppendOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Duplicate || res.BaseOffset != lastRes.BaseOffset {
		t.Fatalf("retry after a crash: duplicate=%v at %d, want the original at %d", res.Duplicate, res.BaseOffset, lastRes.BaseOffset)
	}
	if _, err := l.Append(idempotentBatch(7, 62), AppendOptions{Sync: true}); err == nil {
		t.Fatal("a sequence gap after a crash was accepted")
	}
	if res := mustAppend(t, l, idempotentBatch(7, 60), AppendOptions{Sync: true}); res.Duplicate || res.BaseOffset != lastRes.BaseOffset+1 {
		t.Fatalf("next in sequence: %+v", res)
	}
}

// fakeClock is a settable clock for producer expiry.
type fakeClock struct{ ms atomic.Int64 }

func (c *fakeClock) Now() time.Time   { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) set(ms int64)     { c.ms.Store(ms) }
func (c *fakeClock) advance(ms int64) { c.ms.Add(ms) }

// transactionalBatchAt is producerBatchAt with the transactional bit.
func transactionalBatchAt(pid int64, seq int32, ts int64) []byte {
	b := producerBatchAt(pid, 0, seq, ts)
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|uint16(protocol.AttrTransactional))
	protocol.UpdateCRC(b)
	return b
}

func producerIDs(l *Log) []int64 {
	var ids []int64
	for _, p := range l.Producers() {
		ids = append(ids, p.ProducerID)
	}
	return ids
}

// Regression (Hardening finding 9): producer.id.expiration.ms was accepted
// and ignored, so every producer id stayed tracked forever. An idle
// producer is forgotten once its last batch timestamp is the expiration
// older than now, never one with an open transaction; a forgotten
// producer's next batch is accepted at any sequence, as Kafka accepts a
// producer it has no state for (ProducerAppendInfo.checkSequence).
func TestProducerIDExpirationForgetsIdleProducers(t *testing.T) {
	const hour = int64(time.Hour / time.Millisecond)
	clock := &fakeClock{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	clock.set(t0)
	dir := t.TempDir()
	st, err := OpenStoreWith(dir, zerolog.Nop(), StoreOptions{ProducerIDExpiration: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	l, err := st.OpenLog("t-0", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, producerBatchAt(1, 0, 0, t0), AppendOptions{Sync: true})
	mustAppend(t, l, transactionalBatchAt(2, 0, t0), AppendOptions{Sync: true})
	mustAppend(t, l, producerBatchAt(3, 0, 0, t0+30*60*1000), AppendOptions{Sync: true})

	clock.set(t0 + hour - 1)
	st.ExpireProducers()
	if got := producerIDs(l); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("before the expiration: producers %v, want [1 2 3]", got)
	}
	if _, err := l.Append(producerBatchAt(1, 0, 5, t0), AppendOptions{Sync: true}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a sequence gap from a known producer: %v, want ErrOutOfOrderSequence", err)
	}

	clock.advance(1)
	st.ExpireProducers()
	if got := producerIDs(l); !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("after the expiration: producers %v, want [2 3] (3 is younger, 2 has an open transaction)", got)
	}
	res, err := l.Append(producerBatchAt(1, 0, 5, clock.Now().UnixMilli()), AppendOptions{Sync: true})
	if err != nil || res.Duplicate {
		t.Fatalf("an expired producer's next batch at sequence 5: %+v %v, want it accepted", res, err)
	}

	// The snapshot leaves expired producers out: after a restart 3 is gone
	// too, 1 is back (it just wrote) and 2 keeps its transaction.
	clock.set(t0 + hour + hour/2)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := OpenStoreWith(dir, zerolog.Nop(), StoreOptions{ProducerIDExpiration: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st2.Close() })
	l, err = st2.OpenLog("t-0", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := producerIDs(l); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("after a restart: producers %v, want [1 2]", got)
	}
	if lso, hw := l.LastStableOffset(), l.HighWatermark(); lso != 1 || hw != 4 {
		t.Fatalf("last stable offset %d, high watermark %d: want the open transaction at 1 to hold it", lso, hw)
	}
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	var ps producerState
	ps.init()
	for pid := int64(1); pid <= 3; pid++ {
		e := ps.entry(pid * 1000)
		e.epoch, e.lastTs, e.coordEpoch = int16(pid), 5000+pid, int32(pid+10)
		for i := range int64(7) { // more than the ring holds
			e.addBatch(producerBatch{firstSeq: int32(i * 3), delta: 2, firstOffset: 100*pid + i*3})
		}
	}
	for i := range 5 { // the ring keeps the last five, oldest first
		if got, want := ps.entry(1000).batch(i).firstSeq, int32((i+2)*3); got != want {
			t.Fatalf("batch %d starts at sequence %d, want %d", i, got, want)
		}
	}
	ps.entry(2000).txnFirst = 201
	ps.ongoing[2000] = 201
	ps.entry(4000) // no batches
	wrap := ps.entry(5000)
	wrap.addBatch(producerBatch{firstSeq: math.MaxInt32 - 1, delta: 3, firstOffset: 900}) // sequence wraps
	ps.aborted = []AbortedTxn{{ProducerID: 7, FirstOffset: 1, LastOffset: 5, LastStableOffset: 1}, {ProducerID: 8, FirstOffset: 20, LastOffset: 30, LastStableOffset: 20}}

	b := encodeProducerSnapshot(&ps, 1234, 10)
	if want := snapshotHeaderSize + 5*snapshotEntrySize + (3*5+1)*snapshotBatchSize + 1*snapshotAbortedSize; len(b) != want {
		t.Fatalf("snapshot of 5 producers with 16 batches and 1 live aborted txn is %d bytes, want %d", len(b), want)
	}
	var got producerState
	got.init()
	off, err := decodeProducerSnapshot(b, &got)
	if err != nil || off != 1234 {
		t.Fatalf("decode: offset %d, %v", off, err)
	}
	if len(got.producers) != 5 || got.ongoing[2000] != 201 || len(got.ongoing) != 1 {
		t.Fatalf("decoded %d producers, ongoing %v", len(got.producers), got.ongoing)
	}
	for pid, w := range ps.producers {
		g := got.producers[pid]
		if g == nil || g.epoch != w.epoch || g.lastTs != w.lastTs || g.coordEpoch != w.coordEpoch || g.txnFirst != w.txnFirst || g.n != w.n || g.lastSeq() != w.lastSeq() {
			t.Fatalf("producer %d: got %+v, want %+v", pid, g, w)
		}
		for i := range int(w.n) {
			if g.batch(i) != w.batch(i) {
				t.Fatalf("producer %d: batch %d is %+v, want %+v", pid, i, g.batch(i), w.batch(i))
			}
		}
	}
	if !slices.Equal(got.aborted, ps.aborted[1:]) {
		t.Fatalf("aborted %v, want %v", got.aborted, ps.aborted[1:])
	}
	for _, i := range []int{0, 3, 9, len(b) - 1} {
		bad := slices.Clone(b)
		bad[i] ^= 0x20
		var ps2 producerState
		ps2.init()
		if _, err := decodeProducerSnapshot(bad, &ps2); !errors.Is(err, errCorruptSnapshot) {
			t.Fatalf("flipped byte %d: %v, want errCorruptSnapshot", i, err)
		}
	}
	if _, err := decodeProducerSnapshot(b[:len(b)-1], &got); !errors.Is(err, errCorruptSnapshot) {
		t.Fatalf("truncated snapshot: %v", err)
	}
}

// A snapshot written as JSON by an earlier version is read (it is the only
// state for the data below its offset) and replaced by a binary one.
func TestProducerStateLoadsLegacyJSONSnapshot(t *testing.T) {
	st, l := openTestLog(t, DefaultConfig())
	var last []byte
	for seq := int32(0); seq < 4; seq++ {
		last = idempotentBatch(9, seq)
		mustAppend(t, l, slices.Clone(last), AppendOptions{Sync: true})
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	logDir := l.Dir()
	if err := os.Remove(filepath.Join(logDir, producerSnapshotFile)); err != nil {
		t.Fatal(err)
	}
	// The JSON earlier versions wrote, at the log end, so nothing is
	// rescanned: only this file can tell that 9's last batch was seq 3.
	legacy := `{"offset":4,"producers":[{"id":9,"epoch":0,"batches":[` +
		`{"first_seq":2,"last_seq":2,"first_offset":2,"last_offset":2},` +
		`{"first_seq":3,"last_seq":3,"first_offset":3,"last_offset":3}],` +
		`"txn_first":-1,"last_ts":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `,"coordinator_epoch":-1}]}`
	if err := os.WriteFile(filepath.Join(logDir, legacyProducerStateFile), []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	st2 := openTestStore(t, filepath.Dir(logDir))
	t.Cleanup(func() { _ = st2.Close() })
	l, err := st2.OpenLog("t-0", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if res := mustAppend(t, l, slices.Clone(last), AppendOptions{Sync: true}); !res.Duplicate || res.BaseOffset != 3 {
		t.Fatalf("retry of the last batch: %+v, want a duplicate of offset 3", res)
	}
	if _, err := l.Append(idempotentBatch(9, 7), AppendOptions{Sync: true}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence gap: %v", err)
	}
	if err := st2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(logDir, legacyProducerStateFile)); !os.IsNotExist(err) {
		t.Fatalf("the JSON snapshot is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(logDir, producerSnapshotFile)); err != nil {
		t.Fatalf("no binary snapshot: %v", err)
	}
}

// TestIdempotentAppendDoesNotDecodeRecords: appending a producer's data
// batch updated its state by decoding every record of the batch (looking
// for a transaction marker's coordinator epoch), under the partition lock,
// so an append's cost and garbage grew with its record count. Only the
// header is read now: a 500-record batch allocates no more bytes than a
// 1-record one.
func TestIdempotentAppendDoesNotDecodeRecords(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 64 << 20 // no roll, whose file work allocates
	_, l := openTestLog(t, cfg)
	const appends = 50
	bytesPerAppend := func(pid int64, records int) uint64 {
		b := makeBatch(records, 10, time.Now().UnixMilli(), 'r')
		binary.BigEndian.PutUint64(b[43:], uint64(pid))
		binary.BigEndian.PutUint16(b[51:], 0)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range appends {
			binary.BigEndian.PutUint32(b[53:], uint32(i*records))
			protocol.UpdateCRC(b)
			if _, err := l.Append(b, AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / appends
	}
	one, many := bytesPerAppend(1, 1), bytesPerAppend(2, 500)
	t.Logf("bytes allocated per append: %d (1 record), %d (500 records)", one, many)
	if many > one+1024 {
		t.Fatalf("appending a 500-record idempotent batch allocates %d bytes, a 1-record one %d: records are being decoded", many, one)
	}
}
