package integration

import (
	"context"
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
