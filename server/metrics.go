package server

import (
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/storage"
)

// Version and Commit name the build in skiff_build_info; set them with
// -ldflags "-X github.com/skiffmq/skiff/server.Version=...". Empty: taken
// from the module's build information.
var (
	Version string
	Commit  string
)

// metrics are the broker's Prometheus metrics, in the server's own
// registry (several embedded servers may share a process). Every metric
// the issue maps to a Kafka JMX name carries it in its help text.
//
// The hot path touches only what was resolved in advance: per-API
// histograms and counters built at New (one set per registered API), and
// per-topic atomics held by each partition (topicstats.go). Everything
// that is a snapshot of state (offsets, sizes, groups, lag, connections)
// is read at scrape time by the collector in metrics_collect.go, so that
// nothing keeps a label set per partition unless it is asked for.
//
// A nil *metrics (Config.DisableMetrics) is valid: every method is then a
// no-op.
type metrics struct {
	// collectors are registered into reg on the first scrape (Gather):
	// registration validates and hashes every descriptor, which would
	// otherwise be most of an embedded broker's start-up time.
	collectors []prometheus.Collector
	regOnce    sync.Once
	reg        *prometheus.Registry
	// apis holds per-API metrics by api key; nil for keys not registered.
	apis [maxAPIKey + 1]*apiMetrics

	fsync       prometheus.Histogram
	groupCommit prometheus.Histogram
	rejected    map[int16]prometheus.Counter // idempotent batches rejected, by error code; read-only after New
	rejectedEtc prometheus.Counter           // any other code

	recovery atomic.Int64 // nanoseconds New took to open and recover the logs
	// recovered is set once New has opened everything the collector
	// reads (Server.meta, groups, txn): a scrape during recovery, which
	// the HTTP listener serves, must not read them before.
	recovered atomic.Bool
	// partitionSeries is Config.PartitionMetrics, read at each scrape.
	partitionSeries atomic.Bool

	// listeners are set at Start, in listener order; listenerOf maps a
	// net.Listener to its entry and is read only by accept loops started
	// after it is set.
	listeners  atomic.Pointer[[]*listenerMetrics]
	listenerOf map[net.Listener]*listenerMetrics
}

// maxAPIKey bounds the per-API tables; Kafka's keys are below 100.
const maxAPIKey = 127

// apiMetrics are one API's request metrics (Kafka's RequestMetrics).
type apiMetrics struct {
	name string
	vecs *requestVecs
	// series is resolved on the API's first request (so that APIs never
	// called export nothing) and read without a lock afterwards.
	series atomic.Pointer[apiSeries]
	// errors counts response error codes (NONE included, as Kafka's
	// ErrorsPerSec does), by code+1 so that UNKNOWN_SERVER_ERROR (-1) has
	// a slot; codes past the table count as UNKNOWN_SERVER_ERROR.
	errors [maxErrorCode + 2]atomic.Uint64
}

const maxErrorCode = 160

// requestVecs are the labelled request metrics; apiSeries one API's
// children of them.
type requestVecs struct {
	requests                  *prometheus.CounterVec
	total, queue, local, wait *prometheus.HistogramVec
}

type apiSeries struct {
	requests                  prometheus.Counter
	total, queue, local, wait prometheus.Observer
}

// get returns the API's series, creating them on first use (the only time
// the vectors' locks are taken).
func (am *apiMetrics) get() *apiSeries {
	if s := am.series.Load(); s != nil {
		return s
	}
	v := am.vecs
	s := &apiSeries{
		requests: v.requests.WithLabelValues(am.name),
		total:    v.total.WithLabelValues(am.name),
		queue:    v.queue.WithLabelValues(am.name),
		local:    v.local.WithLabelValues(am.name),
		wait:     v.wait.WithLabelValues(am.name),
	}
	// A racing first request resolves the same children; either wins.
	am.series.CompareAndSwap(nil, s)
	return am.series.Load()
}

type listenerMetrics struct {
	name           string
	opened, closed atomic.Uint64
}

// requestBuckets go from 100µs to about 6.5s: produce and fetch on one
// node are sub-millisecond to tens of milliseconds, long polls seconds.
var requestBuckets = prometheus.ExponentialBuckets(0.0001, 2, 17)

func newMetrics(s *Server) *metrics {
	if s.cfg.DisableMetrics {
		return nil
	}
	m := &metrics{}
	m.partitionSeries.Store(s.cfg.PartitionMetrics)
	hist := func(name, help string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: requestBuckets}, []string{"api"})
		m.register(h)
		return h
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skiff_requests_total",
		Help: "Requests received, by API (Kafka: kafka.network RequestMetrics RequestsPerSec)."}, []string{"api"})
	m.register(requests)
	total := hist("skiff_request_duration_seconds", "Time from a request being read to its response being ready to send (Kafka: RequestMetrics TotalTimeMs, without ResponseSendTimeMs).")
	queue := hist("skiff_request_queue_seconds", "Time a request waited behind earlier requests of its connection before its handler ran (Kafka: RequestMetrics RequestQueueTimeMs).")
	local := hist("skiff_request_local_seconds", "Time the handler took (Kafka: RequestMetrics LocalTimeMs).")
	wait := hist("skiff_request_fsync_wait_seconds", "Time a response waited for its data to be durable (produce acks=1/all; Kafka: RequestMetrics RemoteTimeMs, which there is the replication wait).")
	vecs := &requestVecs{requests: requests, total: total, queue: queue, local: local, wait: wait}
	for _, e := range apis {
		m.apis[e.key] = &apiMetrics{name: kmsg.NameForKey(e.key), vecs: vecs}
	}

	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "skiff_storage_fsync_seconds",
		Help:    "Time of the fdatasync calls of one group-commit flush round of a partition (Kafka: kafka.log LogFlushStats LogFlushRateAndTimeMs).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 17)})
	m.groupCommit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "skiff_storage_group_commit_records",
		Help:    "Records made durable by one flush round of a partition: the group-commit batch size (no Kafka equivalent).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 16)})
	m.register(m.fsync, m.groupCommit)

	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skiff_producer_batches_rejected_total",
		Help: "Idempotent or transactional batches rejected, by reason (Kafka logs these; no JMX meter)."}, []string{"reason"})
	m.register(rejected)
	m.rejected = map[int16]prometheus.Counter{}
	for _, e := range []*kerr.Error{kerr.OutOfOrderSequenceNumber, kerr.InvalidProducerEpoch, kerr.ProducerFenced,
		kerr.InvalidTxnState, kerr.InvalidRecord, kerr.TransactionalIDAuthorizationFailed, kerr.UnknownProducerID} {
		m.rejected[e.Code] = rejected.WithLabelValues(reasonName(e))
	}
	m.rejectedEtc = rejected.WithLabelValues("other")

	version, commit := buildVersion()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "skiff_build_info",
		Help:        "Always 1; the labels name the build (Kafka: kafka.server app-info version, commit-id).",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "go": runtime.Version()}})
	buildInfo.Set(1)
	m.register(buildInfo, &stateCollector{s: s, m: m})
	return m
}

// register queues collectors for the registry.
func (m *metrics) register(cs ...prometheus.Collector) { m.collectors = append(m.collectors, cs...) }

// Gather makes metrics the /metrics handler's prometheus.Gatherer. The
// collectors are registered at the first scrape.
func (m *metrics) Gather() ([]*dto.MetricFamily, error) {
	m.regOnce.Do(func() {
		m.reg = prometheus.NewRegistry()
		m.reg.MustRegister(m.collectors...)
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	})
	return m.reg.Gather()
}

// reasonName is an error's name in lower snake case, a label value.
func reasonName(e *kerr.Error) string {
	b := []byte(e.Message)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func buildVersion() (version, commit string) {
	version, commit = Version, Commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		for _, st := range bi.Settings {
			if st.Key == "vcs.revision" && commit == "" {
				commit = st.Value
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	if commit == "" {
		commit = "unknown"
	}
	return version, commit
}

// storageObserver feeds storage's flush events into the histograms.
func (m *metrics) storageObserver() *storage.Observer {
	if m == nil {
		return nil
	}
	return &storage.Observer{FlushRound: func(d time.Duration, records int64) {
		m.fsync.Observe(d.Seconds())
		m.groupCommit.Observe(float64(records))
	}}
}

// rejectedBatch counts an idempotent or transactional batch refused with
// code.
func (m *metrics) rejectedBatch(code int16) {
	if m == nil {
		return
	}
	if c, ok := m.rejected[code]; ok {
		c.Inc()
		return
	}
	m.rejectedEtc.Inc()
}

// setListeners names the listeners once they are bound (Start).
func (m *metrics) setListeners(lns []net.Listener, specs []listenerSpec) {
	if m == nil {
		return
	}
	m.listenerOf = make(map[net.Listener]*listenerMetrics, len(lns))
	all := make([]*listenerMetrics, 0, len(lns))
	for i, ln := range lns {
		lm := &listenerMetrics{name: specs[i].name}
		all = append(all, lm)
		m.listenerOf[ln] = lm
	}
	m.listeners.Store(&all)
}

// listener returns ln's connection counters, nil without metrics.
func (m *metrics) listener(ln net.Listener) *listenerMetrics {
	if m == nil {
		return nil
	}
	return m.listenerOf[ln]
}

func (lm *listenerMetrics) connOpened() {
	if lm != nil {
		lm.opened.Add(1)
	}
}

func (lm *listenerMetrics) connClosed() {
	if lm != nil {
		lm.closed.Add(1)
	}
}
