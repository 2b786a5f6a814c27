package integration

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Share group (KIP-932) scenarios.
func init() { diffScenarioLists = append(diffScenarioLists, diffShareScenarios) }

// enableShareGroups finalizes share.version=1 on the reference Kafka,
// whose format step leaves share groups off in 4.1 (every share API then
// answers UNSUPPORTED_VERSION); Skiff has them on. Not compared.
func (c *diffConn) enableShareGroups() {
	c.t.Helper()
	if c.tgt.name != "kafka" {
		return
	}
	req := kmsg.NewPtrUpdateFeaturesRequest()
	f := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	f.Feature, f.MaxVersionLevel, f.UpgradeType = "share.version", 1, 1
	req.FeatureUpdates = append(req.FeatureUpdates, f)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, newClient(c.t, c.tgt.addr))
	if err != nil || resp.ErrorCode != 0 {
		c.t.Fatalf("kafka: UpdateFeatures share.version=1: %v %+v", err, resp)
	}
	for _, r := range resp.Results {
		if r.ErrorCode != 0 {
			c.t.Fatalf("kafka: UpdateFeatures share.version=1: %+v", r)
		}
	}
}

// joinShareAssigned joins member to share group g and heartbeats until
// topic's partition is assigned (not compared): Kafka computes a new
// member's assignment after answering its first heartbeat, Skiff in it.
func (c *diffConn) joinShareAssigned(g, member, topic string) {
	c.t.Helper()
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = g, member, []string{topic}
	resp := c.do(hb).(*kmsg.ShareGroupHeartbeatResponse)
	eventually(c.t, 30*time.Second, c.tgt.name+": share assignment", func() bool {
		if resp.ErrorCode != 0 {
			c.t.Fatalf("%s: ShareGroupHeartbeat: error %d", c.tgt.name, resp.ErrorCode)
		}
		if resp.Assignment != nil && len(resp.Assignment.TopicPartitions) > 0 {
			return true
		}
		again := kmsg.NewPtrShareGroupHeartbeatRequest()
		again.GroupID, again.MemberID, again.MemberEpoch = g, member, resp.MemberEpoch
		resp = c.do(again).(*kmsg.ShareGroupHeartbeatResponse)
		return false
	})
}

// dropEmptyShareFetchPartitions removes the partitions that carry nothing
// (no records, no errors): Kafka sometimes lists a partition whose
// share-partition is still initializing and sometimes not, so their
// presence is timing, not behaviour.
func dropEmptyShareFetchPartitions(resp *kmsg.ShareFetchResponse) *kmsg.ShareFetchResponse {
	topics := resp.Topics[:0]
	for _, t := range resp.Topics {
		parts := t.Partitions[:0]
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 || p.AcknowledgeErrorCode != 0 || len(p.Records) > 0 || len(p.AcquiredRecords) > 0 {
				parts = append(parts, p)
			}
		}
		if t.Partitions = parts; len(parts) > 0 {
			topics = append(topics, t)
		}
	}
	resp.Topics = topics
	return resp
}

func diffShareAck(first, last int64, typ int8) kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch {
	return kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{FirstOffset: first, LastOffset: last, AcknowledgeTypes: []int8{typ}}
}

var diffShareScenarios = []diffScenario{
	{name: "ShareFetchAcknowledge", run: func(c *diffConn) []any {
		c.enableShareGroups()
		g, topic := c.name("g"), c.name("t")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "a", "b", "c")
		tid := c.topicID(topic)
		member := "diffsharemember0000002"

		cfg := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, g
		res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "share.auto.offset.reset", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("earliest")}}
		cfg.Resources = append(cfg.Resources, res)
		out := []any{c.do(cfg)}
		c.joinShareAssigned(g, member, topic)

		epoch := int32(0)
		fetch := func() *kmsg.ShareFetchResponse {
			req := kmsg.NewPtrShareFetchRequest()
			req.GroupID, req.MemberID, req.ShareSessionEpoch = &g, &member, epoch
			req.MaxWaitMillis, req.MinBytes, req.MaxRecords, req.BatchSize = 500, 1, 10, 10
			if epoch == 0 {
				ft := kmsg.NewShareFetchRequestTopic()
				ft.TopicID = tid
				ft.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}
				req.Topics = append(req.Topics, ft)
			}
			epoch++
			return c.do(req).(*kmsg.ShareFetchResponse)
		}
		// Kafka initializes the share-partition asynchronously: fetch until
		// records come (not compared), then compare the fetch that got them.
		var got *kmsg.ShareFetchResponse
		eventually(c.t, 30*time.Second, c.tgt.name+": acquired records", func() bool {
			got = fetch()
			return len(got.Topics) == 1 && len(got.Topics[0].Partitions) == 1 && len(got.Topics[0].Partitions[0].AcquiredRecords) > 0
		})
		out = append(out, got)

		ack := kmsg.NewPtrShareAcknowledgeRequest()
		ack.GroupID, ack.MemberID, ack.ShareSessionEpoch = &g, &member, epoch
		epoch++
		at := kmsg.NewShareAcknowledgeRequestTopic()
		at.TopicID = tid
		at.Partitions = []kmsg.ShareAcknowledgeRequestTopicPartition{{Partition: 0, AcknowledgementBatches: []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{
			diffShareAck(0, 0, 1), diffShareAck(1, 1, 2), diffShareAck(2, 2, 3),
		}}}
		ack.Topics = append(ack.Topics, at)
		out = append(out, c.do(ack))
		out = append(out, fetch()) // offset 1 again, second delivery

		offs := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		og := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		og.GroupID = g
		og.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
		offs.Groups = append(offs.Groups, og)
		return append(out, c.do(offs))
	}},
	{name: "ShareGroupLifecycle", run: func(c *diffConn) []any {
		c.enableShareGroups()
		g, topic := c.name("g"), c.name("t")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "a", "b")
		tid := c.topicID(topic)
		member := "diffsharemember0000001"

		// One group per request: Kafka and Skiff order a mixed answer differently.
		desc := kmsg.NewPtrShareGroupDescribeRequest()
		desc.GroupIDs = []string{g}
		descUnknown := kmsg.NewPtrShareGroupDescribeRequest()
		descUnknown.GroupIDs = []string{c.name("unknown")}

		fetch := kmsg.NewPtrShareFetchRequest()
		fetch.GroupID, fetch.MemberID, fetch.MaxRecords, fetch.BatchSize = &g, &member, 10, 10
		ft := kmsg.NewShareFetchRequestTopic()
		ft.TopicID = tid
		ft.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}
		fetch.Topics = append(fetch.Topics, ft)

		ackReq := kmsg.NewPtrShareAcknowledgeRequest()
		ackReq.GroupID, ackReq.MemberID, ackReq.ShareSessionEpoch = &g, &member, 0 // epoch 0 cannot acknowledge

		offs := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		og := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		og.GroupID = g
		og.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
		offs.Groups = append(offs.Groups, og)

		alter := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		alter.GroupID = g // the group has a member: NON_EMPTY_GROUP
		alter.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0, StartOffset: 0}}}}
		del := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		del.GroupID = g
		del.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: topic}}

		c.joinShareAssigned(g, member, topic)
		return []any{c.do(desc), c.do(descUnknown), dropEmptyShareFetchPartitions(c.do(fetch).(*kmsg.ShareFetchResponse)), c.do(ackReq), c.do(offs), c.do(alter), c.do(del)}
	}},
}
