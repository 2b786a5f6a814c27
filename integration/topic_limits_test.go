package integration

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/server"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// roundTripTopic produces one record to partition 0 of topic and reads it
// back: the broker still serves ordinary traffic.
func roundTripTopic(t *testing.T, addr, topic string) {
	t.Helper()
	produceSync(t, newClient(t, addr), &kgo.Record{Topic: topic, Partition: 0, Value: []byte("round-trip")})
	got := consumeN(t, addr, topic, 1)
	if string(got[0].Value) != "round-trip" {
		t.Fatalf("consumed %q, want round-trip", got[0].Value)
	}
}

// TestTopicConfigMinimumsEnforced: segment.bytes=14 was accepted, so every
// batch opened a segment file until descriptors ran out. Kafka 4 requires
// segment.bytes >= 1 MiB (KIP-1030) and answers INVALID_CONFIG with its
// ConfigException message, at CreateTopics and both AlterConfigs; the
// broker default log.segment.bytes is checked the same way.
func TestTopicConfigMinimumsEnforced(t *testing.T) {
	b := startBroker(t, nil)
	cl := newClient(t, b.Addr())
	ctx := testContext(t)

	for _, tc := range []struct {
		topic   string
		configs [][2]string
		msg     string
	}{
		{"tiny-14", [][2]string{{"segment.bytes", "14"}}, "Invalid value 14 for configuration segment.bytes: Value must be at least 1048576"},
		{"tiny-1mib", [][2]string{{"segment.bytes", "1048575"}}, "Invalid value 1048575 for configuration segment.bytes: Value must be at least 1048576"},
		{"gzip-0", [][2]string{{"compression.gzip.level", "0"}}, "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1"},
		{"ratio", [][2]string{{"min.cleanable.dirty.ratio", "1.5"}}, "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"},
		{"policy", [][2]string{{"cleanup.policy", "forever"}}, "Invalid value forever for configuration cleanup.policy: String must be one of: delete, compact"},
		{"roll", [][2]string{{"segment.ms", "soon"}}, "Invalid value soon for configuration segment.ms: Not a number of type LONG"},
		{"lags", [][2]string{{"min.compaction.lag.ms", "10"}, {"max.compaction.lag.ms", "5"}}, "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"},
	} {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tc.topic, 1, 1
		for _, kv := range tc.configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = kv[0], kmsg.StringPtr(kv[1])
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		st := resp.Topics[0]
		if st.ErrorCode != kerr.InvalidConfig.Code || st.ErrorMessage == nil || *st.ErrorMessage != tc.msg {
			t.Errorf("CreateTopics %v: %v %v, want INVALID_CONFIG %q", tc.configs, kerr.ErrorForCode(st.ErrorCode), st.ErrorMessage, tc.msg)
		}
	}

	const topic = "sane-segments"
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1048576")})
	const want = "Invalid value 14 for configuration segment.bytes: Value must be at least 1048576"

	alter := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	ac := kmsg.NewAlterConfigsRequestResourceConfig()
	ac.Name, ac.Value = "segment.bytes", kmsg.StringPtr("14")
	ar.Configs = append(ar.Configs, ac)
	alter.Resources = append(alter.Resources, ar)
	aresp, err := alter.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if r := aresp.Resources[0]; r.ErrorCode != kerr.InvalidConfig.Code || r.ErrorMessage == nil || *r.ErrorMessage != want {
		t.Errorf("AlterConfigs segment.bytes=14: %v %v, want INVALID_CONFIG %q", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage, want)
	}

	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ir := kmsg.NewIncrementalAlterConfigsRequestResource()
	ir.ResourceType, ir.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	ic := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	ic.Name, ic.Op, ic.Value = "segment.bytes", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("14")
	ir.Configs = append(ir.Configs, ic)
	inc.Resources = append(inc.Resources, ir)
	iresp, err := inc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if r := iresp.Resources[0]; r.ErrorCode != kerr.InvalidConfig.Code || r.ErrorMessage == nil || *r.ErrorMessage != want {
		t.Errorf("IncrementalAlterConfigs segment.bytes=14: %v %v, want INVALID_CONFIG %q", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage, want)
	}
	if c := topicConfig(t, newAdmin(t, b.Addr()), topic, "segment.bytes"); c.Value == nil || *c.Value != "1048576" {
		t.Errorf("segment.bytes after refused alters: %v, want 1048576", c.Value)
	}
	roundTripTopic(t, b.Addr(), topic)

	// The broker-level default is held to the same minimum.
	_, err = server.New(server.Config{
		Listen:   "127.0.0.1:0",
		DataDir:  t.TempDir(),
		Settings: map[string]string{"log.segment.bytes": "1048575"},
		Logger:   zerolog.New(io.Discard),
	})
	if err == nil || !strings.Contains(err.Error(), "Value must be at least 1048576") {
		t.Errorf("log.segment.bytes=1048575: server.New error %v, want the segment.bytes minimum", err)
	}
}

// TestCreateMillionPartitionsRefused: CreateTopics with num_partitions =
// 1,000,000 ran for 24 s, exhausted file descriptors, answered
// UNKNOWN_SERVER_ERROR and stalled every other client. Kafka 4's controller
// refuses a request adding more than 10,000 partitions up front with
// POLICY_VIOLATION; CreatePartitions is refused the same way. Another
// client is served meanwhile, and nothing is created.
func TestCreateMillionPartitionsRefused(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	const topic = "bounded"
	createTopic(t, adm, topic, 1, nil)

	huge := kmsg.NewPtrCreateTopicsRequest()
	huge.TimeoutMillis = 60000
	for _, tc := range []struct {
		name       string
		partitions int32
	}{{"million", 1_000_000}, {"split-a", 5_000}, {"split-b", 5_001}} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = tc.name, tc.partitions, 1
		huge.Topics = append(huge.Topics, rt)
	}
	done := make(chan *kmsg.CreateTopicsResponse, 1)
	go func() {
		resp, err := huge.RequestWith(ctx, newClient(t, b.Addr()))
		if err != nil {
			t.Errorf("CreateTopics: %v", err)
		}
		done <- resp
	}()
	// Another client is answered while (or after) the huge request runs.
	other := newClient(t, b.Addr())
	eventually(t, 30*time.Second, "another client's metadata request to be answered", func() bool {
		_, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, other)
		return err == nil
	})
	resp := <-done
	if resp == nil {
		t.FailNow()
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != kerr.PolicyViolation.Code || st.ErrorMessage == nil || *st.ErrorMessage != "Excessively large number of partitions per request." {
			t.Errorf("CreateTopics %s: %v %v, want POLICY_VIOLATION \"Excessively large number of partitions per request.\"", st.Topic, kerr.ErrorForCode(st.ErrorCode), st.ErrorMessage)
		}
	}

	grow := kmsg.NewPtrCreatePartitionsRequest()
	grow.TimeoutMillis = 60000
	gt := kmsg.NewCreatePartitionsRequestTopic()
	gt.Topic, gt.Count = topic, 1_000_000
	grow.Topics = append(grow.Topics, gt)
	gresp, err := grow.RequestWith(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if st := gresp.Topics[0]; st.ErrorCode != kerr.PolicyViolation.Code || st.ErrorMessage == nil || *st.ErrorMessage != "Unable to perform excessively large batch operation." {
		t.Errorf("CreatePartitions to 1,000,000: %v %v, want POLICY_VIOLATION", kerr.ErrorForCode(st.ErrorCode), st.ErrorMessage)
	}

	listed, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"million", "split-a", "split-b"} {
		if listed.Has(name) {
			t.Errorf("refused topic %s was created", name)
		}
	}
	if d := listed[topic]; len(d.Partitions) != 1 {
		t.Errorf("%s has %d partitions after the refused CreatePartitions, want 1", topic, len(d.Partitions))
	}
	roundTripTopic(t, b.Addr(), topic)
}
