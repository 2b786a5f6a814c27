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

var diffShareScenarios = []diffScenario{
	{name: "ShareGroupLifecycle", run: func(c *diffConn) []any {
		c.enableShareGroups()
		g, topic := c.name("g"), c.name("t")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "a", "b")
		tid := c.topicID(topic)
		member := "diffsharemember0000001"

		hb := kmsg.NewPtrShareGroupHeartbeatRequest()
		hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = g, member, []string{topic}
		desc := kmsg.NewPtrShareGroupDescribeRequest()
		desc.GroupIDs = []string{g, c.name("unknown")}

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

		// Kafka computes a new member's assignment after answering its first
		// heartbeat, Skiff in it: heartbeat until the partition is assigned
		// (not compared), then compare what follows.
		joined := c.do(hb).(*kmsg.ShareGroupHeartbeatResponse)
		epoch := joined.MemberEpoch
		eventually(c.t, 30*time.Second, c.tgt.name+": share assignment", func() bool {
			if joined.Assignment != nil && len(joined.Assignment.TopicPartitions) > 0 {
				return true
			}
			again := kmsg.NewPtrShareGroupHeartbeatRequest()
			again.GroupID, again.MemberID, again.MemberEpoch = g, member, epoch
			joined = c.do(again).(*kmsg.ShareGroupHeartbeatResponse)
			epoch = joined.MemberEpoch
			return false
		})
		return []any{c.do(desc), c.do(fetch), c.do(ackReq), c.do(offs), c.do(alter), c.do(del)}
	}},
}
