package server

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestObservabilitySettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantErr  string
		validate func(t *testing.T, c *Config)
	}{
		{name: "off by default", cfg: Config{}, validate: func(t *testing.T, c *Config) {
			if c.HTTPListen != "" || c.Pprof || c.DisableMetrics || c.PartitionMetrics {
				t.Errorf("defaults: http %q pprof %v disable %v partitions %v", c.HTTPListen, c.Pprof, c.DisableMetrics, c.PartitionMetrics)
			}
		}},
		{name: "kafka-style listener", cfg: Config{Settings: map[string]string{
			"skiff.http.listeners": "HTTP://0.0.0.0:9644", "skiff.http.pprof.enable": "true",
			"skiff.metrics.partitions.enable": "true", "skiff.metrics.enable": "false",
		}}, validate: func(t *testing.T, c *Config) {
			if c.HTTPListen != "0.0.0.0:9644" || !c.Pprof || !c.DisableMetrics || !c.PartitionMetrics {
				t.Errorf("got http %q pprof %v disable %v partitions %v", c.HTTPListen, c.Pprof, c.DisableMetrics, c.PartitionMetrics)
			}
		}},
		{name: "setting overrides field", cfg: Config{HTTPListen: "localhost:1", Settings: map[string]string{"skiff.http.listeners": ""}},
			validate: func(t *testing.T, c *Config) {
				if c.HTTPListen != "" {
					t.Errorf("an empty skiff.http.listeners must turn the listener off, got %q", c.HTTPListen)
				}
			}},
		{name: "https refused", cfg: Config{Settings: map[string]string{"skiff.http.listeners": "HTTPS://:9644"}}, wantErr: "only HTTP"},
		{name: "no port", cfg: Config{HTTPListen: "localhost"}, wantErr: "http listener"},
		{name: "bad boolean", cfg: Config{Settings: map[string]string{"skiff.http.pprof.enable": "yes"}}, wantErr: "skiff.http.pprof.enable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			err := cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.validate(t, &cfg)
		})
	}
}

// TestObservabilitySettingsAreNotKafkaConfigs checks that DescribeConfigs
// does not list the skiff.* settings: Kafka clients and tools would not
// know them.
func TestObservabilitySettingsAreNotKafkaConfigs(t *testing.T) {
	for _, d := range brokerConfigDefs {
		if strings.HasPrefix(d.name, "skiff.") {
			t.Errorf("%s is listed as a Kafka broker config", d.name)
		}
	}
}

func TestCountErrorsLikeKafka(t *testing.T) {
	errs := func(resp kmsg.Response) map[string]uint64 {
		am := &apiMetrics{}
		am.countErrors(resp)
		out := map[string]uint64{}
		for i := range am.errors {
			if n := am.errors[i].Load(); n > 0 {
				out[errorName(int16(i-1))] = n
			}
		}
		return out
	}
	// Fetch: the top-level code and one per partition.
	fetch := kmsg.NewPtrFetchResponse()
	ft := kmsg.NewFetchResponseTopic()
	for _, code := range []int16{0, kerr.OffsetOutOfRange.Code, 0} {
		p := kmsg.NewFetchResponseTopicPartition()
		p.ErrorCode = code
		ft.Partitions = append(ft.Partitions, p)
	}
	fetch.Topics = append(fetch.Topics, ft)
	if got := errs(fetch); got["NONE"] != 3 || got["OFFSET_OUT_OF_RANGE"] != 1 || len(got) != 2 {
		t.Errorf("fetch: %v", got)
	}
	// A response walked by reflection: CreateTopics has a code per topic.
	ct := kmsg.NewPtrCreateTopicsResponse()
	for _, code := range []int16{kerr.TopicAlreadyExists.Code, 0, -1, 999} {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.ErrorCode = code
		ct.Topics = append(ct.Topics, rt)
	}
	if got := errs(ct); got["TOPIC_ALREADY_EXISTS"] != 1 || got["NONE"] != 1 || got["UNKNOWN_SERVER_ERROR"] != 2 {
		t.Errorf("create topics: %v", got)
	}
}

// TestRequestMetricsDoNotAllocate guards the hot path: recording a
// produce request (histograms, counter, error codes) allocates nothing.
func TestRequestMetricsDoNotAllocate(t *testing.T) {
	s := &Server{cfg: Config{}}
	m := newMetrics(s)
	resp := kmsg.NewPtrProduceResponse()
	rt := kmsg.NewProduceResponseTopic()
	rt.Partitions = append(rt.Partitions, kmsg.NewProduceResponseTopicPartition())
	resp.Topics = append(resp.Topics, rt)
	times := reqTimes{read: m.now(), start: m.now(), end: m.now()}
	m.request(int16(kmsg.Produce), &times, resp) // resolves the series once
	var ts topicStats
	if n := testing.AllocsPerRun(100, func() {
		m.request(int16(kmsg.Produce), &times, resp)
		ts.Produced(true, 100, 3)
		countFetch([]fetchResult{{stats: &ts}})
	}); n != 0 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}

// BenchmarkRequestMetrics is what metrics add to one produce request of
// one partition on the hot path: the clock reads, the request histograms,
// the error count and the topic counters.
func BenchmarkRequestMetrics(b *testing.B) {
	m := newMetrics(&Server{cfg: Config{}})
	resp := kmsg.NewPtrProduceResponse()
	rt := kmsg.NewProduceResponseTopic()
	rt.Partitions = append(rt.Partitions, kmsg.NewProduceResponseTopicPartition())
	resp.Topics = append(resp.Topics, rt)
	var ts topicStats
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			times := reqTimes{read: m.now()}
			times.start = m.now()
			ts.Produced(true, 1000, 10)
			times.end = m.now()
			m.request(int16(kmsg.Produce), &times, resp)
		}
	})
}
