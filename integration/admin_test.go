package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicConfig describes one topic config through kadm.
func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testContext(t), topic)
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs of %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c
		}
	}
	t.Fatalf("%s: no config %s", topic, key)
	return kadm.Config{}
}

func produceN(t *testing.T, addr, topic string, partition int32, n int, ts time.Time) {
	t.Helper()
	cl := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	var recs []*kgo.Record
	for range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(strings.Repeat("x", 100)), Timestamp: ts})
	}
	if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, partition, err)
	}
}

func TestAlterConfigsIncrementalAndLegacy(t *testing.T) {
	b := startBroker(t, map[string]string{"log.retention.hours": "48"})
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	createTopic(t, adm, "cfg", 1, nil)

	// Broker static setting shows as STATIC_BROKER_CONFIG, with synonyms.
	c := topicConfig(t, adm, "cfg", "retention.ms")
	if *c.Value != "172800000" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("retention.ms from log.retention.hours: %v %v", *c.Value, c.Source)
	}
	if len(c.Synonyms) < 2 || c.Synonyms[0].Key != "log.retention.hours" || c.Synonyms[0].Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("synonyms: %+v", c.Synonyms)
	}

	// Incremental: SET, APPEND to a list, then DELETE.
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kmsg.StringPtr("2000000")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
	}, "cfg")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("incremental alter: %v %+v", err, rs)
	}
	if c := topicConfig(t, adm, "cfg", "max.message.bytes"); *c.Value != "2000000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("max.message.bytes after SET: %v %v", *c.Value, c.Source)
	}
	if c := topicConfig(t, adm, "cfg", "cleanup.policy"); *c.Value != "delete,compact" {
		t.Errorf("cleanup.policy after APPEND: %v", *c.Value)
	}
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
		{Op: kadm.DeleteConfig, Name: "max.message.bytes"},
	}, "cfg")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("incremental alter: %v %+v", err, rs)
	}
	if c := topicConfig(t, adm, "cfg", "max.message.bytes"); *c.Value != "1048588" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("max.message.bytes after DELETE: %v %v", *c.Value, c.Source)
	}

	// Validation: bad value, unknown key, APPEND to a non-list.
	for _, bad := range []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("soon")},
		{Op: kadm.SetConfig, Name: "no.such.config", Value: kmsg.StringPtr("1")},
		{Op: kadm.AppendConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")},
	} {
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{bad}, "cfg")
		if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
			t.Errorf("%s %s: got %v %v, want INVALID_CONFIG", bad.Name, *bad.Value, err, rs)
		}
	}
	// validate_only changes nothing.
	if rs, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kmsg.StringPtr("1048576")}}, "cfg"); err != nil || rs[0].Err != nil {
		t.Fatalf("validate only: %v %+v", err, rs)
	}
	if c := topicConfig(t, adm, "cfg", "segment.bytes"); c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("validate_only changed segment.bytes: %v", *c.Value)
	}

	// Legacy AlterConfigs replaces every override.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kmsg.StringPtr("1048576")}}, "cfg"); err != nil {
		t.Fatal(err)
	}
	rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "flush.ms", Value: kmsg.StringPtr("1000")}}, "cfg")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("legacy alter: %v %+v", err, rs)
	}
	if c := topicConfig(t, adm, "cfg", "segment.bytes"); c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("legacy alter kept segment.bytes override %v", *c.Value)
	}
	if c := topicConfig(t, adm, "cfg", "flush.ms"); *c.Value != "1000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("flush.ms %v %v", *c.Value, c.Source)
	}

	// Unknown topic; broker configs are static.
	rs, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}, "nope")
	if !errors.Is(rs[0].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %+v", rs)
	}
	brs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: kmsg.StringPtr("3")}}, 0)
	if err != nil || len(brs) != 1 || !errors.Is(brs[0].Err, kerr.InvalidRequest) {
		t.Errorf("broker alter: %v %+v", err, brs)
	}
	bcs, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil || len(bcs) != 1 || bcs[0].Err != nil {
		t.Fatalf("describe broker: %v %+v", err, bcs)
	}
	seen := map[string]kadm.Config{}
	for _, c := range bcs[0].Configs {
		seen[c.Key] = c
	}
	if c := seen["log.retention.hours"]; c.Value == nil || *c.Value != "48" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("broker log.retention.hours: %+v", c)
	}
	if c := seen["num.partitions"]; c.Value == nil || *c.Value != "1" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("broker num.partitions: %+v", c)
	}

	// Overrides survive a restart.
	b.Close()
	b2 := startBroker(t, nil, b.dir)
	if c := topicConfig(t, newAdmin(t, b2.Addr()), "cfg", "flush.ms"); *c.Value != "1000" {
		t.Errorf("flush.ms after restart: %v", *c.Value)
	}
}

func TestLowerRetentionTakesEffectAtOnce(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	createTopic(t, adm, "old-data", 1, map[string]*string{"internal.segment.bytes": kmsg.StringPtr("1024")})
	produceN(t, b.Addr(), "old-data", 0, 30, time.Now().Add(-2*time.Hour))
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("3600000")}}, "old-data")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, rs)
	}
	starts, err := adm.ListStartOffsets(ctx, "old-data")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("old-data", 0); o.Offset != 30 {
		t.Errorf("log start offset %d after lowering retention.ms, want 30 (every segment expired)", o.Offset)
	}
}

func TestCreatePartitionsThenProduce(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	createTopic(t, adm, "grow", 1, nil)

	rs, err := adm.UpdatePartitions(ctx, 1, "grow")
	if err != nil || !errors.Is(rs["grow"].Err, kerr.InvalidPartitions) {
		t.Errorf("same count: %v %+v", err, rs)
	}
	rs, err = adm.ValidateCreatePartitions(ctx, 2, "grow")
	if err != nil || rs.Error() != nil {
		t.Fatalf("validate: %v %+v", err, rs)
	}
	rs, err = adm.CreatePartitions(ctx, 2, "grow")
	if err != nil || rs.Error() != nil {
		t.Fatalf("create partitions: %v %+v", err, rs)
	}
	rs, _ = adm.UpdatePartitions(ctx, 2, "grow")
	if !errors.Is(rs["grow"].Err, kerr.InvalidPartitions) {
		t.Errorf("decrease: %+v", rs)
	}
	rs, _ = adm.CreatePartitions(ctx, 1, "missing")
	if !errors.Is(rs["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %+v", rs)
	}
	td, err := adm.ListTopics(ctx, "grow")
	if err != nil || len(td["grow"].Partitions) != 3 {
		t.Fatalf("metadata after create partitions: %v %+v", err, td)
	}
	for p := range int32(3) {
		produceN(t, b.Addr(), "grow", p, 2, time.Now())
	}
	ends, err := adm.ListEndOffsets(ctx, "grow")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		if o, _ := ends.Lookup("grow", p); o.Offset != 2 {
			t.Errorf("partition %d end offset %d, want 2", p, o.Offset)
		}
	}
	// The new partitions are there after a restart.
	b.Close()
	b2 := startBroker(t, nil, b.dir)
	td, err = newAdmin(t, b2.Addr()).ListTopics(testContext(t), "grow")
	if err != nil || len(td["grow"].Partitions) != 3 {
		t.Fatalf("after restart: %v %+v", err, td)
	}
}

func TestDeleteRecordsMovesStartOffset(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	createTopic(t, adm, "trim", 2, nil)
	produceN(t, b.Addr(), "trim", 0, 10, time.Now())
	produceN(t, b.Addr(), "trim", 1, 5, time.Now())

	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "trim", Partition: 0, At: 4})
	offs.Add(kadm.Offset{Topic: "trim", Partition: 1, At: -1}) // the high watermark
	rs, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["trim"][0]; r.Err != nil || r.LowWatermark != 4 {
		t.Errorf("partition 0: %+v", r)
	}
	if r := rs["trim"][1]; r.Err != nil || r.LowWatermark != 5 {
		t.Errorf("partition 1: %+v", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "trim")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("trim", 0); o.Offset != 4 {
		t.Errorf("start offset of 0: %d", o.Offset)
	}
	if o, _ := starts.Lookup("trim", 1); o.Offset != 5 {
		t.Errorf("start offset of 1: %d", o.Offset)
	}

	offs = kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "trim", Partition: 0, At: 11})
	rs, _ = adm.DeleteRecords(ctx, offs)
	if r := rs["trim"][0]; !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Errorf("beyond the high watermark: %+v", r)
	}
}

func TestDescribeLogDirsSizesGrow(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	createTopic(t, adm, "sized", 1, nil)
	size := func() (int64, kadm.DescribedLogDir) {
		t.Helper()
		all, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		dirs := all[0]
		if len(dirs) != 1 || dirs.Error() != nil {
			t.Fatalf("log dirs: %+v", dirs)
		}
		p, ok := dirs.LookupPartition("sized", 0)
		if !ok {
			t.Fatalf("sized/0 not described: %+v", dirs)
		}
		return p.Size, dirs.Sorted()[0]
	}
	before, dir := size()
	if !strings.HasPrefix(dir.Dir, "/") || dir.TotalBytes <= 0 || dir.UsableBytes <= 0 || dir.UsableBytes > dir.TotalBytes {
		t.Errorf("dir %q total %d usable %d", dir.Dir, dir.TotalBytes, dir.UsableBytes)
	}
	produceN(t, b.Addr(), "sized", 0, 50, time.Now())
	after, _ := size()
	if after <= before || after < 50*100 {
		t.Errorf("size %d -> %d after 50 records of 100 bytes", before, after)
	}
}

func TestOffsetForLeaderEpochAfterRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, nil, dir)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "epochs", 1, nil)
	produceN(t, b.Addr(), "epochs", 0, 7, time.Now())
	b.Close()

	b2 := startBroker(t, nil, dir)
	adm = newAdmin(t, b2.Addr())
	ctx := testContext(t)
	var req kadm.OffsetForLeaderEpochRequest
	req.Add("epochs", 0, 0)
	res, err := adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := res["epochs"][0]; r.Err != nil || r.LeaderEpoch != 0 || r.EndOffset != 7 {
		t.Errorf("epoch 0: %+v, want epoch 0 end 7", r)
	}
	req = nil
	req.Add("epochs", 0, 3)
	res, err = adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := res["epochs"][0]; r.Err != nil || r.LeaderEpoch != -1 || r.EndOffset != -1 {
		t.Errorf("epoch 3: %+v, want undefined", r)
	}

	// A client that believes in a newer leader epoch is told it is unknown.
	raw := kmsg.NewPtrOffsetForLeaderEpochRequest()
	raw.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "epochs"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch, rp.LeaderEpoch = 5, 0
	rt.Partitions = append(rt.Partitions, rp)
	raw.Topics = append(raw.Topics, rt)
	resp := request[*kmsg.OffsetForLeaderEpochResponse](t, ctx, newClient(t, b2.Addr()), raw)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("current epoch 5: %v", kerr.ErrorForCode(code))
	}
}

// adminScriptResult is what integration/clients/admin.{py,js} print.
type adminScriptResult struct {
	Topics            []string                   `json:"topics"`
	TopicsAfterDelete []string                   `json:"topics_after_delete"`
	TopicsAfterDelJS  []string                   `json:"topicsAfterDelete"`
	Groups            []string                   `json:"groups"`
	GroupState        string                     `json:"group_state"`
	GroupStateJS      string                     `json:"groupState"`
	Offsets           map[string]int64           `json:"offsets"`
	Configs           map[string]json.RawMessage `json:"configs"`
	Partitions        int                        `json:"partitions"`
}

// runAdminScript prepares a group with committed offsets, runs a client
// library's admin script against the broker and checks what it saw. A
// missing interpreter or library fails the test: .ci/run installs them.
func runAdminScript(t *testing.T, name string, args ...string) adminScriptResult {
	t.Helper()
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "committed", 2, nil)
	produceN(t, b.Addr(), "committed", 1, 3, time.Now())
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "committed", Partition: 1, At: 3, LeaderEpoch: -1})
	if cr, err := adm.CommitOffsets(testContext(t), "script-group", offs); err != nil || cr.Error() != nil {
		t.Fatalf("commit: %v %v", err, cr.Error())
	}

	if _, err := exec.LookPath(args[0]); err != nil {
		t.Fatalf("%s is not installed (.ci/run installs it): %v", args[0], err)
	}
	cmd := exec.CommandContext(testContext(t), args[0], append(args[1:], b.Addr(), "script-topic", "script-group")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	var res adminScriptResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s printed %q: %v", name, out, err)
	}
	t.Logf("%s: %s", name, out)

	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	if !has(res.Topics, "script-topic") || !has(res.Topics, "committed") {
		t.Errorf("%s: topics %v", name, res.Topics)
	}
	if after := append(res.TopicsAfterDelete, res.TopicsAfterDelJS...); has(after, "script-topic") {
		t.Errorf("%s: topic still listed after delete: %v", name, after)
	}
	if !has(res.Groups, "script-group") {
		t.Errorf("%s: groups %v", name, res.Groups)
	}
	if state := res.GroupState + res.GroupStateJS; state != "Empty" {
		t.Errorf("%s: group state %q, want Empty", name, state)
	}
	if res.Offsets["committed/1"] != 3 {
		t.Errorf("%s: offsets %v, want committed/1 at 3", name, res.Offsets)
	}
	if len(res.Configs) < 30 {
		t.Errorf("%s: only %d configs described", name, len(res.Configs))
	}
	return res
}

func clientsDir(t *testing.T) string {
	dir, err := filepath.Abs("clients")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestKafkaPythonAdmin drives kafka-python's KafkaAdminClient. It uses the
// system python, for which Debian's python3-kafka is installed.
func TestKafkaPythonAdmin(t *testing.T) {
	res := runAdminScript(t, "kafka-python", "/usr/bin/python3", filepath.Join(clientsDir(t), "admin.py"))
	var retention struct {
		Value  string `json:"value"`
		Source int    `json:"source"`
	}
	json.Unmarshal(res.Configs["retention.ms"], &retention)
	if retention.Value != "3600000" || retention.Source != int(kmsg.ConfigSourceDynamicTopicConfig) {
		t.Errorf("retention.ms: %+v", retention)
	}
	var segment struct {
		Value  string `json:"value"`
		Source int    `json:"source"`
	}
	json.Unmarshal(res.Configs["segment.bytes"], &segment)
	if segment.Value != "1073741824" || segment.Source != int(kmsg.ConfigSourceDefaultConfig) {
		t.Errorf("segment.bytes: %+v", segment)
	}
}

// TestKafkaJSAdmin drives KafkaJS's admin client from
// integration/clients/node_modules (npm ci there; .ci/run does it).
func TestKafkaJSAdmin(t *testing.T) {
	dir := clientsDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil {
		t.Fatalf("kafkajs is not installed in %s (run npm ci there; .ci/run does it): %v", dir, err)
	}
	res := runAdminScript(t, "kafkajs", "node", filepath.Join(dir, "admin.js"))
	if res.Partitions != 3 {
		t.Errorf("partitions %d", res.Partitions)
	}
	var retention struct {
		Value     string `json:"value"`
		IsDefault bool   `json:"isDefault"`
	}
	json.Unmarshal(res.Configs["retention.ms"], &retention)
	if retention.Value != "3600000" || retention.IsDefault {
		t.Errorf("retention.ms: %+v", retention)
	}
	var segment struct {
		Value     string `json:"value"`
		IsDefault bool   `json:"isDefault"`
	}
	json.Unmarshal(res.Configs["segment.bytes"], &segment)
	if segment.Value != "1073741824" || !segment.IsDefault {
		t.Errorf("segment.bytes: %+v", segment)
	}
}

func TestClientQuotasStoredAndMatched(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	alice := kmsg.StringPtr("alice")
	entries := []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: alice}, {Type: "client-id", Name: kmsg.StringPtr("app")}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 2048}, {Key: "request_percentage", Value: 12.5}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 512}}}, // default user
		{Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: kmsg.StringPtr("10.0.0.1")}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 5}}},
	}
	res, err := adm.AlterClientQuotas(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("%v: %v %s", r.Entity, r.Err, r.ErrMessage)
		}
	}
	for _, bad := range []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 1}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: kmsg.StringPtr("1.2.3.4")}, {Type: "user", Name: alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 1}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1.5}}},
	} {
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{bad})
		if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.InvalidRequest) {
			t.Errorf("%v: %v %+v, want INVALID_REQUEST", bad.Entity, err, res)
		}
	}

	count := func(adm *kadm.Client, strict bool, comps ...kadm.DescribeClientQuotaComponent) int {
		t.Helper()
		d, err := adm.DescribeClientQuotas(ctx, strict, comps)
		if err != nil {
			t.Fatalf("describe %+v: %v", comps, err)
		}
		return len(d)
	}
	exactAlice := kadm.DescribeClientQuotaComponent{Type: "user", MatchName: alice, MatchType: 0}
	defaultUser := kadm.DescribeClientQuotaComponent{Type: "user", MatchType: 1}
	anyUser := kadm.DescribeClientQuotaComponent{Type: "user", MatchType: 2}
	for _, tc := range []struct {
		name   string
		strict bool
		comps  []kadm.DescribeClientQuotaComponent
		want   int
	}{
		{"everything", false, nil, 4},
		{"exact alice", false, []kadm.DescribeClientQuotaComponent{exactAlice}, 2},
		{"exact alice strict", true, []kadm.DescribeClientQuotaComponent{exactAlice}, 1},
		{"default user", false, []kadm.DescribeClientQuotaComponent{defaultUser}, 1},
		{"any user", false, []kadm.DescribeClientQuotaComponent{anyUser}, 3},
		{"any user strict", true, []kadm.DescribeClientQuotaComponent{anyUser}, 2},
	} {
		if got := count(adm, tc.strict, tc.comps...); got != tc.want {
			t.Errorf("%s: %d entities, want %d", tc.name, got, tc.want)
		}
	}

	// Removing the only value removes the entity; the rest survive a restart.
	res, err = adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: kadm.ClientQuotaEntity{{Type: "user"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("remove: %v %+v", err, res)
	}
	b.Close()
	b2 := startBroker(t, nil, b.dir)
	adm2 := newAdmin(t, b2.Addr())
	if got := count(adm2, false); got != 3 {
		t.Errorf("after restart: %d entities, want 3", got)
	}
	d, err := adm2.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{exactAlice})
	if err != nil || len(d) != 1 || len(d[0].Values) != 1 || d[0].Values[0].Key != "producer_byte_rate" || d[0].Values[0].Value != 1024 {
		t.Errorf("alice after restart: %v %+v", err, d)
	}
}

// TestSingleNodeClusterAnswers checks the APIs a multi-broker cluster needs
// are answered as a one-node cluster would.
func TestSingleNodeClusterAnswers(t *testing.T) {
	b := startBroker(t, nil)
	cl := newClient(t, b.Addr())
	adm := kadm.NewClient(cl)
	ctx := testContext(t)
	createTopic(t, adm, "a", 3, nil)
	createTopic(t, adm, "b", 2, nil)

	el, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"a": {0: {}}, "zzz": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := el["a"][0]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
		t.Errorf("elect a/0: %+v", r)
	}
	if r := el["zzz"][0]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("elect zzz/0: %+v", r)
	}

	ar := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = "a"
	for p, replicas := range [][]int32{{0}, {1}, nil} {
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition, rp.Replicas = int32(p), replicas
		rt.Partitions = append(rt.Partitions, rp)
	}
	ar.Topics = append(ar.Topics, rt)
	aresp := request[*kmsg.AlterPartitionAssignmentsResponse](t, ctx, cl, ar)
	want := []int16{0, kerr.InvalidReplicaAssignment.Code, kerr.NoReassignmentInProgress.Code}
	for i, p := range aresp.Topics[0].Partitions {
		if p.ErrorCode != want[i] {
			t.Errorf("reassign a/%d: %v, want %v", p.Partition, kerr.ErrorForCode(p.ErrorCode), kerr.ErrorForCode(want[i]))
		}
	}
	lr, err := adm.ListPartitionReassignments(ctx, nil)
	if err != nil || len(lr) != 0 {
		t.Errorf("list reassignments: %v %+v", err, lr)
	}

	// DescribeTopicPartitions pages through __consumer_offsets-free
	// topics a (3) and b (2) two partitions at a time.
	var seen []string
	var cursor *kmsg.DescribeTopicPartitionsRequestCursor
	for range 10 {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.ResponsePartitionLimit = 2
		req.Cursor = cursor
		for _, n := range []string{"b", "a"} {
			rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
			rt.Topic = n
			req.Topics = append(req.Topics, rt)
		}
		resp := request[*kmsg.DescribeTopicPartitionsResponse](t, ctx, cl, req)
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				seen = append(seen, *tp.Topic+"/"+strconv.Itoa(int(p.Partition)))
			}
		}
		if resp.NextCursor == nil {
			break
		}
		cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
	}
	if got := strings.Join(seen, " "); got != "a/0 a/1 a/2 b/0 b/1" {
		t.Errorf("paged partitions %q", got)
	}

	// metadata.version is finalized at 27 (Kafka 4.1-IV1), the only level
	// Skiff has; see TestFeatureLevels for the rest of UpdateFeatures.
	uf, err := adm.UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "metadata.version", MaxVersionLevel: 20, UpgradeType: 2})
	if !errors.Is(err, kerr.InvalidUpdateVersion) && (err != nil || !errors.Is(uf["metadata.version"].Err, kerr.InvalidUpdateVersion)) {
		t.Errorf("metadata.version downgrade to 20: %v %+v, want INVALID_UPDATE_VERSION", err, uf)
	}

	acls := kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("a").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	cr, err := adm.CreateACLs(ctx, acls)
	if err != nil || len(cr) == 0 || !errors.Is(cr[0].Err, kerr.SecurityDisabled) {
		t.Errorf("create acls: %v %+v", err, cr)
	}
	dr, err := adm.DeleteACLs(ctx, acls)
	if err != nil || len(dr) == 0 || !errors.Is(dr[0].Err, kerr.SecurityDisabled) {
		t.Errorf("delete acls: %v %+v", err, dr)
	}

	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.EndpointType = 2 // controllers
	dresp := request[*kmsg.DescribeClusterResponse](t, ctx, cl, dc)
	if dresp.ErrorCode != kerr.MismatchedEndpointType.Code {
		t.Errorf("describe cluster for controllers: %v", kerr.ErrorForCode(dresp.ErrorCode))
	}
}
