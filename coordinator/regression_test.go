package coordinator

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Bugs found by running franz-go's kgo integration suite against Skiff.

// TestRegexSubscriptionMatchesInternalTopics: Kafka resolves a KIP-848
// regex against every topic, internal ones included (franz-go's
// Test848RegexBrokerResolves subscribes to __consumer_offsets this way).
func TestRegexSubscriptionMatchesInternalTopics(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	h.topics.set("__consumer_offsets", 3)
	m := &cgMember{h: h, group: "cg", id: "a"}
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.RebalanceTimeoutMillis = "cg", "a", 30_000
	re := `__consumer_offsets`
	r.SubscribedTopicRegex = &re
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	mustOK(t, m.send(r))
	if m.count() != 3 || !m.has("__consumer_offsets", 2) {
		t.Fatalf("regex matching an internal topic assigned %v", m.owned)
	}
}

// TestTxnOffsetCommitFromConsumerGroupMember: a transactional offset
// commit from a KIP-848 member is checked against its member epoch, not
// refused with UNSUPPORTED_VERSION as a pre-v9 OffsetCommit would be
// (franz-go's TestTxnEtl with the 848 balancers).
func TestTxnOffsetCommitFromConsumerGroupMember(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	a, _ := h.cgJoin("cg", "a", nil, "t1")
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 5
	req.TransactionalID, req.Group = "txn", "cg"
	req.ProducerID, req.ProducerEpoch = 7, 0
	req.Generation, req.MemberID = a.epoch, "a"
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "t1"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 42
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := h.g.TxnOffsetCommit(context.Background(), req)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("transactional commit from a consumer-group member: error %d, want 0", code)
	}
	req.Generation = a.epoch + 1
	resp = h.g.TxnOffsetCommit(context.Background(), req)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code == 0 {
		t.Fatal("transactional commit with a wrong member epoch was accepted")
	}
}
