package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// openSegmentFiles counts this process's descriptors open on the segment
// files (*.log) under dir: the embedded broker's, since it runs in the
// test process.
func openSegmentFiles(t testing.TB, dir string) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) && strings.HasSuffix(target, ".log") {
			n++
		}
	}
	return n
}

// TestConsumerReadsEverySegmentWithinFileBudget: a consumer reads a topic
// of many segments from offset 0 (sendfile from the segment files) with
// skiff.log.segment.files.max=2. The broker never holds more segment files
// open than the active one, the budget and those a fetch is sending, the
// records arrive whole and in order, and the gauge reports the open files.
// Before the budget every segment held a descriptor from the roll on.
func TestConsumerReadsEverySegmentWithinFileBudget(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/fd")
	}
	settings := metricsSettings()
	settings["skiff.log.segment.files.max"] = "2"
	b := startBroker(t, settings)
	const topic = "fdbudget"
	seg := strconv.Itoa(1 << 20)
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, map[string]*string{"segment.bytes": &seg})
	const records = 120 // 100 KB each: 12 segments
	prod := newClient(t, b.Addr(), kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := 0; i < records; i += 10 {
		var rs []*kgo.Record
		for k := i; k < i+10; k++ {
			rs = append(rs, &kgo.Record{Topic: topic, Value: bytes.Repeat([]byte{byte(k)}, 100_000)})
		}
		if err := prod.ProduceSync(testContext(t), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(b.dir, topic+"-0")
	segs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(segs) < 10 {
		t.Fatalf("%d segments, want at least 10", len(segs))
	}

	cons := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(1<<20), kgo.FetchMaxBytes(1<<20))
	next, peak := int64(0), 0
	for next < records {
		fs := cons.PollFetches(testContext(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next || len(r.Value) != 100_000 || r.Value[0] != byte(next) {
				t.Fatalf("record at offset %d (%d bytes of %d), want offset %d", r.Offset, len(r.Value), r.Value[0], next)
			}
			next++
		})
		peak = max(peak, openSegmentFiles(t, dir))
	}
	// The active segment, the budget's two, and what the last fetches
	// were sending (a 1 MiB fetch spans at most two segments).
	if peak > 1+2+2 {
		t.Fatalf("%d segment files open while consuming %d segments, budget 2", peak, len(segs))
	}
	mfs := scrape(t, b.Server.HTTPAddr())
	if v := metricValue(mfs, "skiff_storage_segment_files_open", nil); v < 1 || v > 2 {
		t.Errorf("skiff_storage_segment_files_open = %v, want 1 or 2 after reading every segment", v)
	}
	t.Logf("%d segments consumed; at most %d segment files open", len(segs), peak)
}
