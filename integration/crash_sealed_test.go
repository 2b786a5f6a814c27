package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skiffmq/skiff/protocol"
)

// testFlippedByteInSealedSegment is Hardening finding 6 / acceptance 5: after
// a kill -9, one flipped byte in the last batch of segment 2 of 6 must cost
// at most that batch. Recovery used to truncate segment 2 there and delete
// every later segment, acknowledged records and all.
func testFlippedByteInSealedSegment(t *testing.T, bin string) {
	dir := t.TempDir()
	p := startSkiff(t, bin, dir)
	const topic = "sealed-flip"
	segBytes := "1048576" // the smallest segment.bytes Kafka 4 accepts
	createTopic(t, newAdmin(t, p.addr), topic, 1, map[string]*string{"segment.bytes": &segBytes})

	// ~1 KiB records, uncompressed, in batches of ~60, over six segments.
	const records = 6500
	value := func(i int) []byte { return fmt.Appendf(bytes.Repeat([]byte{'v'}, 1000), "-%06d", i) }
	cl := newClient(t, p.addr, append(producerOpts(t, p.addr), kgo.ProducerBatchMaxBytes(64<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))...)
	for i := 0; i < records; {
		var recs []*kgo.Record
		for ; len(recs) < 250 && i < records; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Value: value(i)})
		}
		produceSync(t, cl, recs...) // acknowledged after fsync
	}
	partDir := filepath.Join(dir, topic+"-0")
	segs, err := filepath.Glob(filepath.Join(partDir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(segs)
	if len(segs) < 6 {
		out, _ := exec.Command("ls", "-la", partDir).CombinedOutput()
		t.Fatalf("%d segments after producing %d records, want at least 6:\n%s", len(segs), records, out)
	}
	// The broker checkpoints the recovery point once a rolled segment is
	// durable; wait until it covers segment 2, as it would long before any
	// real crash.
	third := segmentBase(t, segs[2])
	eventually(t, 30*time.Second, "the recovery point checkpoint to pass segment 2", func() bool {
		return checkpointedRecoveryPoint(t, dir, topic, 0) >= third
	})
	p.kill9(t)

	// Flip one byte in the records of segment 2's last batch.
	b, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	var last protocol.BatchHeader
	lastPos := -1
	for pos := 0; pos < len(b); {
		h, err := protocol.ValidateBatch(b[pos:])
		if err != nil {
			t.Fatalf("%s at byte %d before the flip: %v", filepath.Base(segs[1]), pos, err)
		}
		last, lastPos = h, pos
		pos += h.Size()
	}
	b[lastPos+last.Size()-10] ^= 0x01
	if err := os.WriteFile(segs[1], b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("flipped a byte in the batch of offsets %d-%d (%d records) in %s; %d segments",
		last.BaseOffset, last.LastOffset(), last.NumRecords, filepath.Base(segs[1]), len(segs))

	p2 := startSkiff(t, bin, dir)
	if p2.cleanStart {
		t.Fatal("the start after kill -9 was reported clean")
	}
	ends, err := newAdmin(t, p2.addr).ListEndOffsets(testContext(t), topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	if end, _ := ends.Lookup(topic, 0); end.Err != nil || end.Offset != records {
		t.Fatalf("end offset after recovery %d (%v), want %d: acknowledged records were deleted", end.Offset, end.Err, records)
	}
	before := consumeRange(t, p2.addr, topic, 0, last.BaseOffset)
	after := consumeRange(t, p2.addr, topic, last.LastOffset()+1, records)
	got := append(before, after...)
	if lost := records - len(got); lost > int(last.NumRecords) {
		t.Fatalf("%d acknowledged records lost; the damaged batch held %d", lost, last.NumRecords)
	}
	for _, r := range got {
		if want := value(int(r.Offset)); !bytes.Equal(r.Value, want) {
			t.Fatalf("offset %d holds %.20q..., want %.20q...", r.Offset, r.Value[len(r.Value)-7:], want[len(want)-7:])
		}
	}
}

// segmentBase is a segment file's base offset, from its name.
func segmentBase(t *testing.T, path string) int64 {
	t.Helper()
	base, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(path), ".log"), 10, 64)
	if err != nil {
		t.Fatalf("segment name %s: %v", path, err)
	}
	return base
}

// checkpointedRecoveryPoint reads topic/partition's entry from the data
// dir's recovery-point-offset-checkpoint (Kafka's format: version, count,
// then "topic partition offset" lines), or -1.
func checkpointedRecoveryPoint(t *testing.T, dataDir, topic string, partition int32) int64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "recovery-point-offset-checkpoint"))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == topic && fields[1] == strconv.Itoa(int(partition)) {
			off, err := strconv.ParseInt(fields[2], 10, 64)
			if err == nil {
				return off
			}
		}
	}
	return -1
}

// consumeRange reads partition 0 of topic from offset from up to (not
// including) to with a fresh client and checks that the offsets are
// contiguous. A CRC error for the batch right after the range (the damaged
// one) is expected: kgo reports it after handing over the records before it.
func consumeRange(t *testing.T, addr, topic string, from, to int64) []*kgo.Record {
	t.Helper()
	if from >= to {
		return nil
	}
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}))
	ctx := testContext(t)
	var got []*kgo.Record
	for next := from; next < to; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s from %d: deadline passed at offset %d of %d", topic, from, next, to)
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !strings.Contains(err.Error(), "crc") {
				t.Fatalf("fetch %s at %d: %v", topic, next, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= to || r.Offset < next {
				return
			}
			if r.Offset != next {
				t.Fatalf("%s: offset %d where %d was expected (offsets must be contiguous)", topic, r.Offset, next)
			}
			got = append(got, r)
			next++
		})
	}
	return got
}
