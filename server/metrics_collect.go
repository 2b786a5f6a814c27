package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector reads the broker's state at scrape time: topic traffic
// counters, per-partition offsets and sizes (opt-in), storage totals,
// consumer groups with their lag, transactions and connections. Nothing
// here runs on a request path, and the locks it takes (the cluster's read
// lock, each log's lock for a moment, the group coordinator's) are the
// ones an admin request takes.
type stateCollector struct {
	s *Server
	m *metrics
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descRequestErrors = desc("skiff_request_errors_total", "Error codes in responses, NONE included, by API and error (Kafka: RequestMetrics ErrorsPerSec).", "api", "error")

	descBytesIn       = desc("skiff_topic_bytes_in_total", "Record bytes appended, by topic (Kafka: BrokerTopicMetrics BytesInPerSec).", "topic")
	descRecordsIn     = desc("skiff_topic_records_in_total", "Records appended, by topic (Kafka: BrokerTopicMetrics MessagesInPerSec).", "topic")
	descBytesOut      = desc("skiff_topic_bytes_out_total", "Record bytes sent to consumers, by topic (Kafka: BrokerTopicMetrics BytesOutPerSec).", "topic")
	descRecordsOut    = desc("skiff_topic_records_out_total", "Records sent to consumers, counting whole batches, by topic (no Kafka equivalent).", "topic")
	descProduceReqs   = desc("skiff_topic_produce_requests_total", "Partitions of produce requests, by topic (Kafka: BrokerTopicMetrics TotalProduceRequestsPerSec).", "topic")
	descFetchReqs     = desc("skiff_topic_fetch_requests_total", "Partitions of fetch responses, by topic (Kafka: BrokerTopicMetrics TotalFetchRequestsPerSec).", "topic")
	descFailedProduce = desc("skiff_topic_failed_produce_requests_total", "Partitions of produce requests that failed, by topic (Kafka: BrokerTopicMetrics FailedProduceRequestsPerSec).", "topic")
	descFailedFetch   = desc("skiff_topic_failed_fetch_requests_total", "Partitions of fetch requests that failed, by topic (Kafka: BrokerTopicMetrics FailedFetchRequestsPerSec).", "topic")

	descLogStart = desc("skiff_partition_log_start_offset", "First offset of the partition (Kafka: kafka.log Log LogStartOffset). Only with skiff.metrics.partitions.enable.", "topic", "partition")
	descLogEnd   = desc("skiff_partition_log_end_offset", "Offset of the next record appended (Kafka: kafka.log Log LogEndOffset). Only with skiff.metrics.partitions.enable.", "topic", "partition")
	descHWM      = desc("skiff_partition_high_watermark", "High watermark: the offset below which records are durable and visible. Only with skiff.metrics.partitions.enable.", "topic", "partition")
	descLSO      = desc("skiff_partition_last_stable_offset", "Last stable offset, bounding read_committed consumers. Only with skiff.metrics.partitions.enable.", "topic", "partition")
	descPartSize = desc("skiff_partition_size_bytes", "Bytes of the partition's segment files (Kafka: kafka.log Log Size). Only with skiff.metrics.partitions.enable.", "topic", "partition")

	descTopics     = desc("skiff_topics", "Topics, internal ones included.")
	descPartitions = desc("skiff_partitions", "Partitions led by this broker: all of them (Kafka: ReplicaManager PartitionCount, LeaderCount).")
	descSegments   = desc("skiff_storage_segments", "Log segments of every partition (Kafka: kafka.log Log NumLogSegments, summed).")
	descLogBytes   = desc("skiff_storage_log_bytes", "Bytes of segment files in the data directory (Kafka: kafka.log Log Size, summed over the partitions of the dir).", "dir")
	descFreeBytes  = desc("skiff_storage_free_bytes", "Usable bytes left on the data directory's file system (Kafka: KIP-827 UsableBytes via DescribeLogDirs).", "dir")
	descTotalBytes = desc("skiff_storage_total_bytes", "Size of the data directory's file system (Kafka: KIP-827 TotalBytes).", "dir")
	descRecovery   = desc("skiff_storage_recovery_seconds", "Time opening and recovering the data directory took at start (Kafka: logs its log-loading time).")
	descSegFiles   = desc("skiff_storage_segment_files_open", "Sealed segment files open now, idle or being read; skiff.log.segment.files.max bounds the idle ones (Kafka keeps every segment open).")

	descGroups         = desc("skiff_groups", "Consumer groups by type and state (Kafka: group-coordinator-metrics group-count{protocol} and consumer-group-count{state}; GroupMetadataManager NumGroups<State> for classic groups).", "type", "state")
	descGroupInfo      = desc("skiff_group_info", "Always 1; the labels give the group's type and state.", "group", "type", "state")
	descGroupMembers   = desc("skiff_group_members", "Members of a group.", "group")
	descGroupCommitted = desc("skiff_group_committed_offset", "A group's committed offset for a partition (what kafka-consumer-groups --describe shows).", "group", "topic", "partition")
	descGroupLag       = desc("skiff_group_lag", "High watermark minus the group's committed offset, computed by the broker (Kafka: no broker metric; consumer records-lag or an exporter).", "group", "topic", "partition")

	descTxnOpen      = desc("skiff_transactions_open", "Transactions begun and not yet completed (no Kafka JMX equivalent).")
	descTxnCommitted = desc("skiff_transactions_committed_total", "Transactions committed since start (no Kafka JMX equivalent).")
	descTxnAborted   = desc("skiff_transactions_aborted_total", "Transactions aborted (by the client or by timeout) since start.")

	descConns       = desc("skiff_connections", "Open client connections, by listener (Kafka: socket-server-metrics connection-count).", "listener")
	descConnsOpened = desc("skiff_connections_opened_total", "Client connections accepted, by listener (Kafka: socket-server-metrics connection-creation-total).", "listener")
	descConnsClosed = desc("skiff_connections_closed_total", "Client connections closed, by listener (Kafka: socket-server-metrics connection-close-total).", "listener")
	descAuthFailed  = desc("skiff_authentication_failures_total", "Failed SASL authentications since start (Kafka: socket-server-metrics failed-authentication-total).")
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequestErrors, descBytesIn, descRecordsIn, descBytesOut, descRecordsOut,
		descProduceReqs, descFetchReqs, descFailedProduce, descFailedFetch, descLogStart, descLogEnd, descHWM, descLSO,
		descPartSize, descTopics, descPartitions, descSegments, descLogBytes, descFreeBytes, descTotalBytes, descRecovery,
		descSegFiles, descGroups, descGroupInfo, descGroupMembers, descGroupCommitted, descGroupLag, descTxnOpen, descTxnCommitted,
		descTxnAborted, descConns, descConnsOpened, descConnsClosed, descAuthFailed} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.collectRequestErrors(ch)
	if !c.m.recovered.Load() {
		return // still recovering: the state is not there yet
	}
	c.collectTopics(ch)
	c.collectGroups(ch)
	if t := c.s.txn; t != nil {
		st := t.Stats()
		ch <- prometheus.MustNewConstMetric(descTxnOpen, prometheus.GaugeValue, float64(st.Open))
		ch <- prometheus.MustNewConstMetric(descTxnCommitted, prometheus.CounterValue, float64(st.Committed))
		ch <- prometheus.MustNewConstMetric(descTxnAborted, prometheus.CounterValue, float64(st.Aborted))
	}
	var listeners []*listenerMetrics
	if p := c.m.listeners.Load(); p != nil {
		listeners = *p
	}
	for _, lm := range listeners {
		opened, closed := lm.opened.Load(), lm.closed.Load()
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(opened-min(closed, opened)), lm.name)
		ch <- prometheus.MustNewConstMetric(descConnsOpened, prometheus.CounterValue, float64(opened), lm.name)
		ch <- prometheus.MustNewConstMetric(descConnsClosed, prometheus.CounterValue, float64(closed), lm.name)
	}
	ch <- prometheus.MustNewConstMetric(descAuthFailed, prometheus.CounterValue, float64(c.s.authFailures.Load()))
}

func (c *stateCollector) collectRequestErrors(ch chan<- prometheus.Metric) {
	for _, am := range c.m.apis {
		if am == nil {
			continue
		}
		for i := range am.errors {
			if n := am.errors[i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(descRequestErrors, prometheus.CounterValue, float64(n), am.name, errorName(int16(i-1)))
			}
		}
	}
}

func (c *stateCollector) collectTopics(ch chan<- prometheus.Metric) {
	// One published snapshot, read without a lock: a scrape never holds
	// up a topic change, nor a change the scrape.
	topics := c.s.meta.Topics()
	var segments, logBytes int64
	nparts := 0
	perPartition := c.m.partitionSeries.Load()
	for _, t := range topics {
		if ts := t.Stats; ts.Used() {
			counter := func(d *prometheus.Desc, v uint64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), t.Name)
			}
			counter(descBytesIn, ts.BytesIn.Load())
			counter(descRecordsIn, ts.RecordsIn.Load())
			counter(descBytesOut, ts.BytesOut.Load())
			counter(descRecordsOut, ts.RecordsOut.Load())
			counter(descProduceReqs, ts.ProduceRequests.Load())
			counter(descFetchReqs, ts.FetchRequests.Load())
			counter(descFailedProduce, ts.FailedProduce.Load())
			counter(descFailedFetch, ts.FailedFetch.Load())
		}
		nparts += len(t.Partitions)
		for _, p := range t.Partitions {
			size := p.Log.Size()
			segments += int64(p.Log.SegmentCount())
			logBytes += size
			if !perPartition {
				continue
			}
			pn := strconv.Itoa(int(p.Index))
			gauge := func(d *prometheus.Desc, v int64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), t.Name, pn)
			}
			hw := p.Log.HighWatermark()
			gauge(descLogStart, p.Log.LogStartOffset())
			gauge(descLogEnd, p.Log.LogEndOffset())
			gauge(descHWM, hw)
			gauge(descLSO, min(p.Log.LastStableOffset(), hw))
			gauge(descPartSize, size)
		}
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descTopics, float64(len(topics)))
	gauge(descPartitions, float64(nparts))
	gauge(descSegments, float64(segments))
	dir := c.s.cfg.DataDir
	gauge(descLogBytes, float64(logBytes), dir)
	if total, free := diskSpace(dir); total >= 0 {
		gauge(descFreeBytes, float64(free), dir)
		gauge(descTotalBytes, float64(total), dir)
	}
	gauge(descRecovery, time.Duration(c.m.recovery.Load()).Seconds())
	gauge(descSegFiles, float64(c.s.store.OpenSegmentFiles()))
}

func (c *stateCollector) collectGroups(ch chan<- prometheus.Metric) {
	if c.s.groups == nil {
		return
	}
	type typeState struct{ typ, state string }
	counts := map[typeState]int{}
	for _, g := range c.s.groups.Stats() {
		counts[typeState{g.Type, g.State}]++
		ch <- prometheus.MustNewConstMetric(descGroupInfo, prometheus.GaugeValue, 1, g.ID, g.Type, g.State)
		ch <- prometheus.MustNewConstMetric(descGroupMembers, prometheus.GaugeValue, float64(g.Members), g.ID)
		for _, o := range g.Offsets {
			pn := strconv.Itoa(int(o.Partition))
			ch <- prometheus.MustNewConstMetric(descGroupCommitted, prometheus.GaugeValue, float64(o.Offset), g.ID, o.Topic, pn)
			if p := c.s.meta.partition(o.Topic, o.Partition); p != nil {
				lag := max(p.Log.HighWatermark()-o.Offset, 0)
				ch <- prometheus.MustNewConstMetric(descGroupLag, prometheus.GaugeValue, float64(lag), g.ID, o.Topic, pn)
			}
		}
	}
	for ts, n := range counts {
		ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(n), ts.typ, ts.state)
	}
}
