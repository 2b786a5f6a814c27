package integration

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// setShareGroupConfig sets a share group config through
// IncrementalAlterConfigs on a GROUP resource, as Kafka 4.2's tools do.
func setShareGroupConfig(t *testing.T, cl *kgo.Client, group, name, value string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = name, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(value)
	res.Configs = append(res.Configs, c)
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatalf("IncrementalAlterConfigs: %v", err)
	}
	if err := kerr.ErrorForCode(resp.Resources[0].ErrorCode); err != nil {
		t.Fatalf("set %s=%s on group %s: %v", name, value, group, err)
	}
}

// shareStartOffset asks DescribeShareGroupOffsets for SPSO of partition 0.
func shareStartOffset(t *testing.T, cl *kgo.Client, group, topic string) int64 {
	t.Helper()
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	g := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	g.GroupID = group
	g.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
	req.Groups = append(req.Groups, g)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatalf("DescribeShareGroupOffsets: %v", err)
	}
	rg := resp.Groups[0]
	if rg.ErrorCode != 0 || len(rg.Topics) != 1 || len(rg.Topics[0].Partitions) != 1 {
		t.Fatalf("DescribeShareGroupOffsets: %+v", rg)
	}
	return rg.Topics[0].Partitions[0].StartOffset
}

// TestShareGroupFranzGoConsumesEverything drives franz-go's share consumer:
// every produced record is delivered once, accepted, and SPSO reaches the
// end of the log; ListGroups shows the share group and DeleteGroups
// removes it once its member left.
func TestShareGroupFranzGoConsumesEverything(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	const topic, group, n = "share-kgo", "share-kgo-group", 50
	createTopic(t, adm, topic, 1, nil)
	admin := newClient(t, b.Addr())
	produceN(t, b.Addr(), topic, 0, n, time.Now())
	setShareGroupConfig(t, admin, group, "share.auto.offset.reset", "earliest")

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic), kgo.ShareGroup(group))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	ctx := testContext(t)
	for len(seen) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, e := range fs.Errors() {
			t.Fatalf("fetch error: %v", e)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[r.Offset]++ })
		cl.MarkAcks(kgo.AckAccept, fs.Records()...)
	}
	if err := cl.FlushAcks(ctx); err != nil {
		t.Fatalf("FlushAcks: %v", err)
	}
	for v, c := range seen {
		if c != 1 {
			t.Fatalf("offset %d delivered %d times", v, c)
		}
	}
	if len(seen) != n {
		t.Fatalf("consumed %d distinct records, want %d", len(seen), n)
	}
	eventually(t, 10*time.Second, "SPSO at the log end", func() bool { return shareStartOffset(t, admin, group, topic) == n })

	listed, err := adm.ListGroups(ctx, "Stable")
	if err != nil || len(listed) != 1 || listed[group].ProtocolType != "share" {
		t.Fatalf("ListGroups(Stable): %v %+v", err, listed)
	}
	cl.Close()
	eventually(t, 10*time.Second, "share group deleted", func() bool {
		resp, err := adm.DeleteGroups(context.Background(), group)
		return err == nil && resp[group].Err == nil
	})
	if listed, _ := adm.ListGroups(ctx); len(listed) != 0 {
		t.Fatalf("groups after delete: %+v", listed)
	}
}

// describeGroupConfigs returns a group's configs with their sources.
func describeGroupConfigs(t *testing.T, cl *kgo.Client, group string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("DescribeConfigs GROUP %s: %v %+v", group, err, resp)
	}
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = c
	}
	return out
}

// TestShareGroupConfigsSurviveRestart: share group configs set through
// IncrementalAlterConfigs on a GROUP resource are described as
// GROUP_CONFIG, kept across a restart, and go away with the group.
func TestShareGroupConfigsSurviveRestart(t *testing.T) {
	b := startBroker(t, nil)
	cl := newClient(t, b.Addr())
	const group = "share-cfg-group"
	setShareGroupConfig(t, cl, group, "share.record.lock.duration.ms", "20000")
	setShareGroupConfig(t, cl, group, "share.isolation.level", "read_committed")
	check := func(when string, cl *kgo.Client) {
		t.Helper()
		cfgs := describeGroupConfigs(t, cl, group)
		for name, want := range map[string]string{
			"share.record.lock.duration.ms": "20000",
			"share.isolation.level":         "read_committed",
		} {
			c := cfgs[name]
			if c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSourceGroupConfig {
				t.Fatalf("%s: %s = %v (source %v), want %s from GROUP_CONFIG", when, name, c.Value, c.Source, want)
			}
		}
		if c := cfgs["share.auto.offset.reset"]; c.Value == nil || *c.Value != "latest" || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("%s: share.auto.offset.reset %+v, want the default latest", when, c)
		}
	}
	check("before restart", cl)
	b.Close()
	b = startBroker(t, nil, b.dir)
	cl = newClient(t, b.Addr())
	check("after restart", cl)

	// A share group exists once a member joined; deleting it drops its configs.
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "share-cfg", 1, nil)
	tds, err := adm.ListTopics(testContext(t), "share-cfg")
	if err != nil {
		t.Fatal(err)
	}
	m := joinShareGroup(t, cl, group, "member-1", "share-cfg", tds["share-cfg"].ID)
	leave := kmsg.NewPtrShareGroupHeartbeatRequest()
	leave.GroupID, leave.MemberID, leave.MemberEpoch = group, m.id, -1
	if resp, err := leave.RequestWith(testContext(t), cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("leave: %v %+v", err, resp)
	}
	if resp, err := adm.DeleteGroups(testContext(t), group); err != nil || resp[group].Err != nil {
		t.Fatalf("DeleteGroups: %v %+v", err, resp)
	}
	if c := describeGroupConfigs(t, cl, group)["share.isolation.level"]; c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("share.isolation.level after DeleteGroups: source %v, want DEFAULT_CONFIG", c.Source)
	}
}

// TestShareGroupReadCommittedSkipsAborted: with share.isolation.level
// read_committed, the records of an aborted transaction are never
// delivered (they are archived), the committed ones are, once.
func TestShareGroupReadCommittedSkipsAborted(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	const topic, group = "share-rc", "share-rc-group"
	createTopic(t, adm, topic, 1, nil)
	ctx := testContext(t)
	txn := newClient(t, b.Addr(), kgo.TransactionalID("share-rc-txn"), kgo.DefaultProduceTopic(topic))
	for _, commit := range []bool{false, true} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			v := "aborted"
			if commit {
				v = "committed"
			}
			if err := txn.ProduceSync(ctx, kgo.StringRecord(v+strconv.Itoa(i))).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	cl := newClient(t, b.Addr())
	setShareGroupConfig(t, cl, group, "share.auto.offset.reset", "earliest")
	setShareGroupConfig(t, cl, group, "share.isolation.level", "read_committed")

	sc := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ShareGroup(group))
	var got []string
	for len(got) < 3 && ctx.Err() == nil {
		fs := sc.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		sc.MarkAcks(kgo.AckAccept, fs.Records()...)
	}
	if strings.Join(got, ",") != "committed0,committed1,committed2" {
		t.Fatalf("read_committed share consumer got %q, want the committed records only", got)
	}
	if err := sc.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	// 3 aborted records, their marker, 3 committed, their marker.
	eventually(t, 20*time.Second, "SPSO past the aborted records", func() bool {
		pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		sc.PollFetches(pollCtx) // lets the client acknowledge the markers' gaps
		return shareStartOffset(t, cl, group, topic) >= 7
	})
}
