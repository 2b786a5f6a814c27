package server

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/clusterstate"
	"github.com/skiffmq/skiff/storage"
)

// TestMetricsCardinalityBoundedWith10000Topics starts a broker holding
// 10,000 topics and counts the series /metrics exports: without
// skiff.metrics.partitions.enable no series is per topic or per partition
// (idle topics have none, as in Kafka), so the count does not grow with
// topics; with it, each per-partition family has one series per partition.
func TestMetricsCardinalityBoundedWith10000Topics(t *testing.T) {
	const topics = 10_000
	// On the in-memory filesystem: what is counted here is series, and
	// opening 10,000 logs on a real disk costs minutes of fsyncs.
	fsys := storage.NewMemFS()
	dir := "/data"
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Writing the metadata directly is quicker than 10,000 CreateTopics,
	// each of which rewrites and fsyncs it.
	// An empty cluster id is given a fresh one at start.
	var mf metaFile
	for i := range topics {
		var id clusterstate.TopicID
		binary.BigEndian.PutUint64(id[8:], uint64(i)+1) // unique and non-zero
		mf.Topics = append(mf.Topics, clusterstate.ImageTopic{Name: fmt.Sprintf("card-%05d", i),
			ID: id.String(), Partitions: 1})
	}
	data, err := json.Marshal(mf)
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.WriteFileAtomicFS(fsys, filepath.Join(dir, metaFileName), data); err != nil {
		t.Fatal(err)
	}

	partitionFamilies := []string{"skiff_partition_log_start_offset", "skiff_partition_log_end_offset",
		"skiff_partition_high_watermark", "skiff_partition_last_stable_offset", "skiff_partition_size_bytes"}
	// One broker for both halves: opting in is switched on between them.
	srv, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir, FS: fsys, Logger: zerolog.Nop(), HTTPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	for _, optIn := range []bool{false, true} {
		srv.metrics.partitionSeries.Store(optIn)
		series, perTopic := scrapeSeries(t, srv.HTTPAddr())
		total := 0
		for _, n := range series {
			total += n
		}
		t.Logf("partition metrics %v: %d series in %d families, %d with a topic label", optIn, total, len(series), perTopic)
		if got := series["skiff_partitions"]; got != 1 {
			t.Fatalf("skiff_partitions has %d series, want 1", got)
		}
		if !optIn {
			if perTopic != 0 {
				t.Errorf("%d series carry a topic label with %d idle topics, want 0", perTopic, topics)
			}
			for _, f := range partitionFamilies {
				if series[f] != 0 {
					t.Errorf("%s has %d series without opting in", f, series[f])
				}
			}
			// What is left is per API, per listener and the Go runtime.
			if total > 1000 {
				t.Errorf("%d series for an idle broker, want a bound independent of topics (<= 1000)", total)
			}
			continue
		}
		for _, f := range partitionFamilies {
			if series[f] != topics {
				t.Errorf("%s has %d series, want one per partition (%d)", f, series[f], topics)
			}
		}
	}
}

// scrapeSeries counts the series of each family on /metrics (a histogram
// counts as one) and the series that carry a topic label.
func scrapeSeries(t *testing.T, addr string) (map[string]int, int) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	counts, perTopic := map[string]int{}, 0
	for name, mf := range mfs {
		counts[name] = len(mf.GetMetric())
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "topic" {
					perTopic++
				}
			}
		}
	}
	return counts, perTopic
}
