package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/server"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metricsSettings turn on the HTTP listener on a free port.
func metricsSettings() map[string]string {
	return map[string]string{"skiff.http.listeners": "127.0.0.1:0"}
}

// httpGet returns the status and body of GET http://addr/path.
func httpGet(t testing.TB, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// scrape fetches /metrics in the Prometheus text format and parses it.
func scrape(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

// metricValue is the value of the series of family name whose labels
// include want: a counter's or gauge's value, a histogram's sample count.
// Missing is 0 (Skiff, like Kafka, creates a series on first use).
func metricValue(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return 0
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// topicLogSize is the bytes of a topic's partition logs, from
// DescribeLogDirs: Skiff stores batches as produced, so this is exactly the
// record bytes appended.
func topicLogSize(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	dirs, err := adm.DescribeAllLogDirs(testContext(t), kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatalf("describe log dirs: %v", err)
	}
	var n int64
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) { n += p.Size })
	})
	return n
}

// TestMetricsTopicCountersMatchTraffic produces and consumes a known number
// of records with franz-go and checks that the per-topic counters moved by
// exactly the records and bytes produced and fetched, and that a rejected
// batch counts as a failed produce and as an error of the Produce API.
func TestMetricsTopicCountersMatchTraffic(t *testing.T) {
	b := startBroker(t, metricsSettings())
	adm := newAdmin(t, b.Addr())
	const topic = "metered"
	createTopic(t, adm, topic, 1, nil)
	lbl := map[string]string{"topic": topic}
	if v := metricValue(scrape(t, b.HTTPAddr()), "skiff_topic_records_in_total", lbl); v != 0 {
		t.Fatalf("records in before producing: %v", v)
	}

	const n = 57
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	ctx := testContext(t)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: []byte(fmt.Sprintf("value-%03d", i))}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	size := topicLogSize(t, adm, topic)

	// A batch with a broken CRC: a failed produce that appends nothing.
	bad := recordBatch("x")
	bad[len(bad)-1] ^= 0xff
	c := dialRaw(t, b.Addr())
	resp := roundTrip(t, c, produceV9(topic, 0, bad), 1).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.CorruptMessage.Code {
		t.Fatalf("corrupt batch answered with %v", kerr.ErrorForCode(code))
	}

	cons := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		got += fs.NumRecords()
	}
	if got != n {
		t.Fatalf("consumed %d records, want %d", got, n)
	}

	mfs := scrape(t, b.HTTPAddr())
	for _, c := range []struct {
		name string
		want float64
	}{
		{"skiff_topic_records_in_total", n},
		{"skiff_topic_bytes_in_total", float64(size)},
		{"skiff_topic_records_out_total", n},
		{"skiff_topic_bytes_out_total", float64(size)},
		{"skiff_topic_failed_produce_requests_total", 1},
		{"skiff_topic_failed_fetch_requests_total", 0},
	} {
		if got := metricValue(mfs, c.name, lbl); got != c.want {
			t.Errorf("%s{topic=%q} = %v, want %v", c.name, topic, got, c.want)
		}
	}
	if got := metricValue(mfs, "skiff_request_errors_total", map[string]string{"api": "Produce", "error": "CORRUPT_MESSAGE"}); got != 1 {
		t.Errorf("Produce CORRUPT_MESSAGE errors = %v, want 1", got)
	}
	if size == 0 {
		t.Fatal("the log is empty: the test measured nothing")
	}
}

// TestMetricsRequestHistogramsCountRequests sends a known number of
// requests of two APIs on a raw connection and checks that each API's
// request counter and its total, queue, local and fsync-wait histograms
// counted exactly those.
func TestMetricsRequestHistogramsCountRequests(t *testing.T) {
	b := startBroker(t, metricsSettings())
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "timed", 1, nil)
	adm.Close() // no more traffic besides the raw connection's
	before := scrape(t, b.HTTPAddr())

	c := dialRaw(t, b.Addr())
	const metadatas, produces = 7, 5
	corr := int32(0)
	for range metadatas {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		corr++
		roundTrip(t, c, req, corr)
	}
	for i := range produces {
		corr++
		resp := roundTrip(t, c, produceV9("timed", 0, recordBatch(strconv.Itoa(i))), corr).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
	after := scrape(t, b.HTTPAddr())

	for api, want := range map[string]float64{"Metadata": metadatas, "Produce": produces} {
		lbl := map[string]string{"api": api}
		for _, name := range []string{"skiff_requests_total", "skiff_request_duration_seconds", "skiff_request_queue_seconds",
			"skiff_request_local_seconds", "skiff_request_fsync_wait_seconds"} {
			if got := metricValue(after, name, lbl) - metricValue(before, name, lbl); got != want {
				t.Errorf("%s{api=%q} moved by %v, want %v", name, api, got, want)
			}
		}
	}
	if got := metricValue(after, "skiff_request_errors_total", map[string]string{"api": "Produce", "error": "NONE"}) -
		metricValue(before, "skiff_request_errors_total", map[string]string{"api": "Produce", "error": "NONE"}); got != produces {
		t.Errorf("Produce NONE error codes moved by %v, want %v", got, produces)
	}
	// acks=all waits for the fsync: some time must have been spent there.
	if h := findHistogram(after, "skiff_request_fsync_wait_seconds", "Produce"); h == nil || h.GetSampleSum() <= 0 {
		t.Errorf("Produce fsync wait histogram has no time: %v", h)
	}
	if v := metricValue(after, "skiff_storage_fsync_seconds", nil); v < 1 {
		t.Errorf("skiff_storage_fsync_seconds counted %v flush rounds, want at least 1", v)
	}
}

func findHistogram(mfs map[string]*dto.MetricFamily, name, api string) *dto.Histogram {
	for _, m := range mfs[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "api" && lp.GetValue() == api {
				return m.GetHistogram()
			}
		}
	}
	return nil
}

// TestMetricsGroupLag commits a known offset for a group and checks that
// the broker reports the committed offset and the lag (high watermark
// minus committed offset), and the group's state.
func TestMetricsGroupLag(t *testing.T) {
	b := startBroker(t, metricsSettings())
	adm := newAdmin(t, b.Addr())
	const topic, group = "lagging", "lag-group"
	createTopic(t, adm, topic, 2, nil)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testContext(t)
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Partition: 0, Value: []byte{byte(i)}})
	}
	for i := range 3 {
		recs = append(recs, &kgo.Record{Partition: 1, Value: []byte{byte(i)}})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: topic, Partition: 1, At: 3, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, group, offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	mfs := scrape(t, b.HTTPAddr())
	for _, c := range []struct {
		partition          string
		committed, wantLag float64
	}{{"0", 4, 10 - 4}, {"1", 3, 0}} {
		lbl := map[string]string{"group": group, "topic": topic, "partition": c.partition}
		if got := metricValue(mfs, "skiff_group_committed_offset", lbl); got != c.committed {
			t.Errorf("committed offset of partition %s = %v, want %v", c.partition, got, c.committed)
		}
		if _, ok := findSeries(mfs, "skiff_group_lag", lbl); !ok {
			t.Errorf("no lag series for partition %s", c.partition)
		}
		if got := metricValue(mfs, "skiff_group_lag", lbl); got != c.wantLag {
			t.Errorf("lag of partition %s = %v, want %v", c.partition, got, c.wantLag)
		}
	}
	if got := metricValue(mfs, "skiff_group_info", map[string]string{"group": group, "state": "Empty"}); got != 1 {
		t.Errorf("group %s is not reported Empty: %v", group, got)
	}
}

func findSeries(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (*dto.Metric, bool) {
next:
	for _, m := range mfs[name].GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// TestHealthAndReadinessAcrossRecovery restarts a broker on a data dir
// that was not shut down cleanly and checks /healthz and /readyz at each
// stage: during recovery (through Config.Lifecycle, so no timing is
// involved) the process is live but not ready; once started it is ready;
// once Close begins it is live and not ready; after Close nothing answers.
func TestHealthAndReadinessAcrossRecovery(t *testing.T) {
	dir := t.TempDir()
	{
		b := startBroker(t, nil, dir)
		adm := newAdmin(t, b.Addr())
		const parts = 64
		createTopic(t, adm, "recovered", parts, nil)
		prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("recovered"))
		var recs []*kgo.Record
		for i := range 4 * parts {
			recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(i))})
		}
		if err := prod.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		prod.Close()
		adm.Close()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Without the clean-shutdown marker the next start recovers every log
	// as after a crash.
	if err := os.Remove(filepath.Join(dir, ".skiff_cleanshutdown")); err != nil {
		t.Fatalf("removing the clean-shutdown marker: %v", err)
	}

	type probe struct{ health, ready int }
	seen := map[server.Stage]probe{}
	check := func(stage server.Stage, addr string) {
		h, _ := httpGet(t, addr, "/healthz")
		r, _ := httpGet(t, addr, "/readyz")
		seen[stage] = probe{h, r}
		if stage == server.StageRecovering {
			// /metrics answers too, with what exists before recovery.
			scrape(t, addr)
		}
	}
	srv, err := server.New(server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, Logger: zerolog.Nop(),
		HTTPListen: "127.0.0.1:0", Lifecycle: check,
	})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	if got := seen[server.StageRecovering]; got != (probe{200, 503}) {
		t.Errorf("during recovery /healthz, /readyz = %v, want 200, 503", got)
	}
	addr := srv.HTTPAddr()
	if code, _ := httpGet(t, addr, "/readyz"); code != 503 {
		t.Errorf("recovered but not started: /readyz = %d, want 503", code)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if code, body := httpGet(t, addr, "/readyz"); code != 200 {
		t.Errorf("started: /readyz = %d %q, want 200", code, body)
	}
	mfs := scrape(t, addr)
	if v := metricValue(mfs, "skiff_storage_recovery_seconds", nil); v <= 0 {
		t.Errorf("skiff_storage_recovery_seconds = %v, want > 0", v)
	}
	if v := metricValue(mfs, "skiff_partitions", nil); v < 64 {
		t.Errorf("skiff_partitions = %v, want at least 64", v)
	}
	if code, _ := httpGet(t, addr, "/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without pprof = %d, want 404", code)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if got := seen[server.StageStopping]; got != (probe{200, 503}) {
		t.Errorf("while stopping /healthz, /readyz = %v, want 200, 503", got)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("/healthz still answers after Close")
	}
}

// TestMetricsOpenMetricsAndPprof checks content negotiation (OpenMetrics
// on request) and that pprof is served only when asked for.
func TestMetricsOpenMetricsAndPprof(t *testing.T) {
	s := metricsSettings()
	s["skiff.http.pprof.enable"] = "true"
	b := startBroker(t, s)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+b.HTTPAddr()+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("Content-Type %q, want OpenMetrics", ct)
	}
	if !strings.HasSuffix(string(body), "# EOF\n") || !strings.Contains(string(body), "skiff_build_info{") {
		t.Errorf("OpenMetrics body lacks # EOF or skiff_build_info:\n%.500s", body)
	}
	if code, body := httpGet(t, b.HTTPAddr(), "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d, want 200 with profiles", code)
	}
}

// TestGrafanaDashboardUsesExportedMetrics checks that every metric the
// dashboard in deploy/ queries is one Skiff exports, after a workload that
// makes each family appear (per-partition series opted in).
func TestGrafanaDashboardUsesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana/skiff-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}

	s := metricsSettings()
	s["skiff.metrics.partitions.enable"] = "true"
	b := startBroker(t, s)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "dash", 1, nil)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("dash"))
	ctx := testContext(t)
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons := newClient(t, b.Addr(), kgo.ConsumeTopics("dash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if fs := cons.PollFetches(ctx); fs.Err0() != nil || fs.NumRecords() != 1 {
		t.Fatalf("consume: %v, %d records", fs.Err0(), fs.NumRecords())
	}
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "dash", Partition: 0, At: 1, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, "dash-group", offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	mfs := scrape(t, b.HTTPAddr())

	name := regexp.MustCompile(`\b((?:skiff|go|process)_[a-z0-9_]+)`)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				queried++
				family := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if f := strings.TrimSuffix(m, suffix); f != m {
						if _, ok := mfs[f]; ok {
							family = f
						}
					}
				}
				if _, ok := mfs[family]; !ok {
					t.Errorf("panel %q queries %s, which /metrics does not export", p.Title, m)
				}
			}
		}
	}
	if queried < 30 {
		t.Fatalf("found only %d metric references in the dashboard", queried)
	}
}
