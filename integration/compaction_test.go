package integration

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// compactionSettings make the broker's cleaner look for work every 20 ms.
var compactionSettings = map[string]string{"log.cleaner.backoff.ms": "20"}

func strp(s string) *string { return &s }

// incompressible returns n random bytes, so that a record of them rolls a
// segment whatever codec the producer uses.
func incompressible(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// partitionSize is the size DescribeLogDirs reports for topic/p.
func partitionSize(t testing.TB, adm *kadm.Client, topic string, p int32) int64 {
	t.Helper()
	all, err := adm.DescribeAllLogDirs(testContext(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, dirs := range all {
		if d, ok := dirs.LookupPartition(topic, p); ok {
			return d.Size
		}
	}
	t.Fatalf("%s/%d not described", topic, p)
	return 0
}

// consumeThrough reads partition 0 of topic from offset 0 until it has seen
// the record at last, failing on any offset that does not grow.
func consumeThrough(t testing.TB, addr, topic string, last int64, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxBytes(4 << 20),
	}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out []*kgo.Record
	prev := int64(-1)
	for prev < last {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read up to offset %d of %d before the deadline", prev, last)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if r.Offset <= prev {
				t.Fatalf("offset %d after %d", r.Offset, prev)
			}
			prev = r.Offset
			out = append(out, r)
		}
	}
	return out
}

// TestCompactionKeepsLatestValuePerKey is issue 12's first acceptance test:
// 1M records over 10k keys, compacted by the background cleaner, read from
// offset 0 by a franz-go consumer, leave exactly the latest value of each
// key at the offset it was written to.
func TestCompactionKeepsLatestValuePerKey(t *testing.T) {
	const keys, total = 10_000, 1_000_000
	n := total
	if testing.Short() {
		n = 100_000
	}
	b := startBroker(t, compactionSettings)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "table", 1, map[string]*string{
		"cleanup.policy": strp("compact"),
		"segment.bytes":  strp(fmt.Sprint(1 << 20)),
	})
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("table"), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	// 1M records take seconds, but minutes under -race on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	latest := make(map[string]int64, keys) // key -> offset of its last write
	start := time.Now()
	const chunk = 10_000
	for i := 0; i < n; i += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for j := i; j < i+chunk; j++ {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "key-%05d", j%keys), Value: fmt.Appendf(nil, "value-%07d", j)})
		}
		res := cl.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			latest[string(r.Record.Key)] = r.Record.Offset
		}
	}
	// The active segment is never cleaned: two large records under their
	// own key make sure a new one starts after the keyed data.
	big := incompressible(700 << 10)
	var last int64
	for range 2 {
		r, err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("sentinel"), Value: big}).First()
		if err != nil {
			t.Fatal(err)
		}
		last = r.Offset
	}
	t.Logf("produced %d records in %v", n, time.Since(start))
	before := partitionSize(t, adm, "table", 0)
	eventually(t, 5*time.Minute, "compaction", func() bool {
		// Left: the sentinels and 10k small records (lz4 makes the 1M
		// records about 1 MiB before).
		return partitionSize(t, adm, "table", 0) < 2*int64(len(big))+200<<10
	})
	t.Logf("partition size %d -> %d bytes", before, partitionSize(t, adm, "table", 0))

	// The size can pass under the bound while a last pass is still due
	// (the cleaner may have run while the records were being produced):
	// wait until the log holds one record per key besides the sentinels.
	var recs []*kgo.Record
	eventually(t, 5*time.Minute, "compaction of every dirty segment", func() bool {
		recs = consumeThrough(t, b.Addr(), "table", last)
		return len(recs) == keys+2
	})
	seen := make(map[string]int64, keys)
	for _, r := range recs {
		k := string(r.Key)
		if k == "sentinel" {
			continue
		}
		if _, dup := seen[k]; dup {
			t.Fatalf("key %s read twice (offsets %d and %d)", k, seen[k], r.Offset)
		}
		seen[k] = r.Offset
		if want := latest[k]; r.Offset != want {
			t.Fatalf("key %s at offset %d, its last write was at %d", k, r.Offset, want)
		}
		if want := fmt.Sprintf("value-%07d", r.Offset); string(r.Value) != want {
			t.Fatalf("key %s at %d has value %q, want %q", k, r.Offset, r.Value, want)
		}
	}
	if len(seen) != keys {
		t.Fatalf("%d keys read, want %d", len(seen), keys)
	}
}

// TestCompactionKeepsTransactionsReadCommitted: after compaction a
// read_committed consumer sees each key's last committed value and nothing
// of the aborted transactions, and a read_uncommitted one no aborted value
// either (aborted records are removed).
func TestCompactionKeepsTransactionsReadCommitted(t *testing.T) {
	b := startBroker(t, compactionSettings)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "txtable", 1, map[string]*string{
		"cleanup.policy":         strp("compact"),
		"internal.segment.bytes": strp("16384"),
	})
	ctx := testContext(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("txtable"), kgo.TransactionalID("compact-txn"))
	committed := map[string]string{}
	const rounds, keys = 60, 20
	for r := 0; r < rounds; r++ {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		commit := r%3 != 2
		kind := "c"
		if !commit {
			kind = "a"
		}
		var recs []*kgo.Record
		for k := 0; k < keys; k++ {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%02d", k), Value: fmt.Appendf(nil, "%s%03d-%s", kind, r, strings.Repeat("x", 100))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		if commit {
			for _, rec := range recs {
				committed[string(rec.Key)] = string(rec.Value)
			}
		}
	}
	plain := newClient(t, b.Addr(), kgo.DefaultProduceTopic("txtable"))
	end, err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("end"), Value: incompressible(17000)}).First()
	if err != nil {
		t.Fatal(err)
	}
	before := partitionSize(t, adm, "txtable", 0)
	eventually(t, 60*time.Second, "compaction", func() bool {
		// Left: the end record, 20 values and some markers.
		return partitionSize(t, adm, "txtable", 0) < 17000+10000
	})
	t.Logf("partition size %d -> %d bytes", before, partitionSize(t, adm, "txtable", 0))
	for _, iso := range []kgo.IsolationLevel{kgo.ReadCommitted(), kgo.ReadUncommitted()} {
		got := map[string]string{}
		for _, r := range consumeThrough(t, b.Addr(), "txtable", end.Offset, kgo.FetchIsolationLevel(iso)) {
			if r.Value[0] == 'a' {
				t.Fatalf("%v: aborted value %.4s of %s at offset %d", iso, r.Value, r.Key, r.Offset)
			}
			got[string(r.Key)] = string(r.Value)
		}
		for k, v := range committed {
			if got[k] != v {
				t.Fatalf("%v: key %s = %.4s, want %.4s", iso, k, got[k], v)
			}
		}
	}
}

// TestConsumerOffsetsCompactedAndReplayed: a long commit loop leaves
// __consumer_offsets compacted to about one record per group-partition,
// and a restart replays only that (plus the active segment), with every
// committed offset intact.
func TestConsumerOffsetsCompactedAndReplayed(t *testing.T) {
	settings := map[string]string{
		"log.cleaner.backoff.ms":       "20",
		"offsets.topic.num.partitions": "1",
		"offsets.topic.segment.bytes":  "16384",
	}
	b := startBroker(t, settings)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "events", 4, nil)
	ctx := testContext(t)
	const commits = 2000
	for i := 1; i <= commits; i++ {
		os := kadm.Offsets{}
		for p := int32(0); p < 4; p++ {
			os.Add(kadm.Offset{Topic: "events", Partition: p, At: int64(i)*10 + int64(p), LeaderEpoch: -1})
		}
		if _, err := adm.CommitOffsets(ctx, "loop", os); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "__consumer_offsets compaction", func() bool {
		// At most one segment of uncleaned commits besides the four
		// compacted ones: what the replay bound below allows.
		return partitionSize(t, adm, "__consumer_offsets", 0) < 16384+4096
	})
	size := partitionSize(t, adm, "__consumer_offsets", 0)
	b.Close()

	b2 := startBroker(t, settings, b.dir)
	replayed := b2.Stats().OffsetsReplayed
	t.Logf("%d commits of 4 partitions: __consumer_offsets %d bytes, %d records replayed at start", commits, size, replayed)
	// Compacted: 4 records; the active segment holds at most 16 KiB of
	// ~100-byte commits besides.
	if replayed > 4+16384/60 || replayed < 4 {
		t.Fatalf("%d records replayed after %d commits of 4 partitions", replayed, commits)
	}
	got, err := newAdmin(t, b2.Addr()).FetchOffsets(ctx, "loop")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 4; p++ {
		o, ok := got.Lookup("events", p)
		if want := int64(commits)*10 + int64(p); !ok || o.At != want {
			t.Fatalf("events/%d committed at %d (%v), want %d", p, o.At, ok, want)
		}
	}
}

// TestCompactionRemovesTombstonesAfterDeleteRetention: deleted keys keep
// their tombstone through the first cleaning and lose it, with every older
// value, once delete.retention.ms has passed (100 ms here; the storage
// tests drive the same rule with a fake clock).
func TestCompactionRemovesTombstonesAfterDeleteRetention(t *testing.T) {
	b := startBroker(t, compactionSettings)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "deletes", 1, map[string]*string{
		"cleanup.policy":         strp("compact"),
		"internal.segment.bytes": strp("16384"),
		"delete.retention.ms":    strp("100"),
	})
	ctx := testContext(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("deletes"))
	var recs []*kgo.Record
	for k := 0; k < 100; k++ {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%03d", k), Value: incompressible(100)})
	}
	for k := 0; k < 100; k += 2 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%03d", k)}) // tombstone
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	end, err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("end"), Value: incompressible(17000)}).First()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "tombstones to go", func() bool {
		tombstones, deleted, live := 0, 0, 0
		for _, r := range consumeThrough(t, b.Addr(), "deletes", end.Offset) {
			k := string(r.Key)
			switch {
			case k == "end":
			case r.Value == nil:
				tombstones++
			case k[len(k)-1]%2 == 0:
				deleted++
			default:
				live++
			}
		}
		if deleted > 0 && tombstones == 0 {
			t.Fatalf("%d values of deleted keys left without their tombstones", deleted)
		}
		return tombstones == 0 && deleted == 0 && live == 50
	})
}

// TestTransactionStateCompactedAndReplayed: __transaction_state compacts
// to the latest state of each transactional id, and after a restart the
// id resumes with a newer epoch (a replay of stale state would hand out an
// old one) and its earlier transactions stay committed.
func TestTransactionStateCompactedAndReplayed(t *testing.T) {
	settings := map[string]string{
		"log.cleaner.backoff.ms":               "20",
		"transaction.state.log.num.partitions": "1",
		"transaction.state.log.segment.bytes":  "16384",
	}
	b := startBroker(t, settings)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "ledger", 1, nil)
	ctx := testContext(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("ledger"), kgo.TransactionalID("ledger-writer"))
	const txns = 300
	for i := 0; i < txns; i++ {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	_, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 300 transactions write about 60 KiB of state; compacted, what is
	// left is the active segment and a few records.
	eventually(t, 60*time.Second, "__transaction_state compaction", func() bool {
		return partitionSize(t, adm, "__transaction_state", 0) < 16384+4096
	})
	t.Logf("__transaction_state: %d bytes after %d transactions", partitionSize(t, adm, "__transaction_state", 0), txns)
	cl.Close()
	b.Close()

	b2 := startBroker(t, settings, b.dir)
	cl2 := newClient(t, b2.Addr(), kgo.DefaultProduceTopic("ledger"), kgo.TransactionalID("ledger-writer"))
	if err := cl2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl2.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if _, epoch2, err := cl2.ProducerID(ctx); err != nil || epoch2 <= epoch {
		t.Fatalf("epoch after restart %d (%v), want above %d", epoch2, err, epoch)
	}
	got := consumeN(t, b2.Addr(), "ledger", txns+1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if string(got[0].Value) != "0" || string(got[txns].Value) != "after" {
		t.Fatalf("read_committed: first %q, last %q", got[0].Value, got[txns].Value)
	}
}
