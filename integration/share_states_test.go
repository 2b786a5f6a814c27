package integration

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// shareMember drives the share group protocol with raw requests, so a
// test sees acquired ranges and delivery counts exactly as on the wire.
type shareMember struct {
	t            *testing.T
	cl           *kgo.Client
	group, id    string
	topicID      [16]byte
	sessionEpoch int32
}

func joinShareGroup(t *testing.T, cl *kgo.Client, group, member, topic string, topicID [16]byte) *shareMember {
	t.Helper()
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.MemberEpoch, req.SubscribedTopicNames = group, member, 0, []string{topic}
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil || resp.ErrorCode != 0 || resp.MemberEpoch <= 0 || resp.Assignment == nil {
		t.Fatalf("ShareGroupHeartbeat join: %v %+v", err, resp)
	}
	return &shareMember{t: t, cl: cl, group: group, id: member, topicID: topicID}
}

type ack struct {
	first, last int64
	typ         int8
}

// fetch sends a ShareFetch carrying acks and returns the acquired ranges
// and the partition's acknowledgement error code.
func (m *shareMember) fetch(maxWait time.Duration, acks ...ack) ([]kmsg.ShareFetchResponseTopicPartitionAcquiredRecord, int16) {
	m.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID = &m.group, &m.id
	req.ShareSessionEpoch = m.sessionEpoch
	req.MaxWaitMillis, req.MinBytes, req.MaxRecords, req.BatchSize = int32(maxWait/time.Millisecond), 1, 100, 100
	if m.sessionEpoch == 0 || len(acks) > 0 {
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = m.topicID
		rp := kmsg.NewShareFetchRequestTopicPartition()
		for _, a := range acks {
			rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{
				FirstOffset: a.first, LastOffset: a.last, AcknowledgeTypes: []int8{a.typ}})
		}
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(testContext(m.t), m.cl)
	if err != nil || resp.ErrorCode != 0 {
		m.t.Fatalf("ShareFetch epoch %d: %v %+v", m.sessionEpoch, err, resp)
	}
	m.sessionEpoch++
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				m.t.Fatalf("ShareFetch partition error %d", rp.ErrorCode)
			}
			return rp.AcquiredRecords, rp.AcknowledgeErrorCode
		}
	}
	return nil, 0
}

// acknowledge sends a ShareAcknowledge and returns the partition's error code.
func (m *shareMember) acknowledge(acks ...ack) int16 {
	m.t.Helper()
	req := kmsg.NewPtrShareAcknowledgeRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, m.sessionEpoch
	rt := kmsg.NewShareAcknowledgeRequestTopic()
	rt.TopicID = m.topicID
	rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
	for _, a := range acks {
		rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{
			FirstOffset: a.first, LastOffset: a.last, AcknowledgeTypes: []int8{a.typ}})
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(m.t), m.cl)
	if err != nil || resp.ErrorCode != 0 || len(resp.Topics) != 1 {
		m.t.Fatalf("ShareAcknowledge: %v %+v", err, resp)
	}
	m.sessionEpoch++
	return resp.Topics[0].Partitions[0].ErrorCode
}

func acquired(first, last int64, count int16) kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
	return kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{FirstOffset: first, LastOffset: last, DeliveryCount: count}
}

// fetchUntil repeats empty ShareFetches until records are acquired (a lock
// must expire first) and returns them.
func (m *shareMember) fetchUntil(what string) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
	m.t.Helper()
	var got []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord
	eventually(m.t, 20*time.Second, what, func() bool {
		got, _ = m.fetch(500 * time.Millisecond)
		return len(got) > 0
	})
	return got
}

// TestShareAcknowledgeRedeliveryArchiveAndRestart walks KIP-932's record
// states on the wire: redelivery with a higher delivery count after a lock
// times out, ACCEPT/RELEASE/REJECT, state surviving a broker restart
// (delivery counts included) and archiving at group.share.delivery.count.limit.
func TestShareAcknowledgeRedeliveryArchiveAndRestart(t *testing.T) {
	settings := map[string]string{
		"group.share.record.lock.duration.ms": "1000",
		"group.share.delivery.count.limit":    "3",
	}
	b := startBroker(t, settings)
	adm := newAdmin(t, b.Addr())
	const topic, group = "share-states", "share-states-group"
	createTopic(t, adm, topic, 1, nil)
	produceN(t, b.Addr(), topic, 0, 5, time.Now()) // offsets 0-4, one batch
	cl := newClient(t, b.Addr())
	setShareGroupConfig(t, cl, group, "share.auto.offset.reset", "earliest")
	tds, err := adm.ListTopics(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	tid := tds[topic].ID

	m := joinShareGroup(t, cl, group, "member-1", topic, tid)
	got, _ := m.fetch(5 * time.Second)
	if want := []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{acquired(0, 4, 1)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first fetch acquired %+v, want %+v", got, want)
	}
	// Nothing is acknowledged: after the 1s lock the records come back.
	got = m.fetchUntil("redelivery after the acquisition lock timed out")
	if want := []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{acquired(0, 4, 2)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("redelivered %+v, want %+v", got, want)
	}
	if code := m.acknowledge(ack{0, 0, 1}, ack{1, 1, 2}, ack{2, 2, 3}); code != 0 {
		t.Fatalf("accept 0, release 1, reject 2: error %d", code)
	}
	// Acknowledging a released record again is refused.
	if code := m.acknowledge(ack{1, 1, 1}); code != 121 {
		t.Fatalf("second ack of offset 1: error %d, want INVALID_RECORD_STATE (121)", code)
	}
	if spso := shareStartOffset(t, cl, group, topic); spso != 1 {
		t.Fatalf("SPSO %d after accepting offset 0, want 1", spso)
	}

	// Restart: the state comes back from __share_group_state. The locks on
	// 3-4 are gone, and their two deliveries still count.
	b.Close()
	b = startBroker(t, settings, b.dir)
	cl = newClient(t, b.Addr())
	if spso := shareStartOffset(t, cl, group, topic); spso != 1 {
		t.Fatalf("SPSO %d after restart, want 1", spso)
	}
	m = joinShareGroup(t, cl, group, "member-2", topic, tid)
	got, _ = m.fetch(5 * time.Second)
	want := []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{acquired(1, 1, 3), acquired(3, 4, 3)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart acquired %+v, want %+v (2 rejected, counts kept)", got, want)
	}
	// Third delivery: releasing 1 archives it, and 3-4 archive when their
	// lock expires. SPSO then passes the whole log and nothing is left.
	if _, code := m.fetch(0, ack{1, 1, 2}); code != 0 {
		t.Fatalf("release of offset 1 piggybacked on ShareFetch: error %d", code)
	}
	eventually(t, 20*time.Second, "SPSO past the archived records", func() bool {
		m.fetch(200 * time.Millisecond)
		return shareStartOffset(t, cl, group, topic) == 5
	})
	if got, _ := m.fetch(300 * time.Millisecond); len(got) != 0 {
		t.Fatalf("archived records delivered again: %+v", got)
	}
}

// TestShareFetchRenewAckOnlyAcknowledges: KIP-1222's renewing ShareFetch
// (v2, IsRenewAck) extends locks and fetches nothing, even with records
// waiting; RENEW without IsRenewAck and a renewing fetch with fetch limits
// are INVALID_REQUEST.
func TestShareFetchRenewAckOnlyAcknowledges(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	const topic, group = "share-renew", "share-renew-group"
	createTopic(t, adm, topic, 1, nil)
	produceN(t, b.Addr(), topic, 0, 5, time.Now())
	cl := newClient(t, b.Addr())
	setShareGroupConfig(t, cl, group, "share.auto.offset.reset", "earliest")
	tds, err := adm.ListTopics(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	m := joinShareGroup(t, cl, group, "member-1", topic, tds[topic].ID)
	m.sessionEpoch = 0
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.MaxWaitMillis, req.MinBytes, req.MaxRecords, req.BatchSize = &m.group, &m.id, 5000, 1, 2, 2
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = m.topicID
	rt.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testContext(t), cl)
	if err != nil || resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions[0].AcquiredRecords) != 1 {
		t.Fatalf("first fetch: %v %+v", err, resp)
	}
	renew := func(isRenew bool, maxRecords int32, epoch int32) *kmsg.ShareFetchResponse {
		r := kmsg.NewPtrShareFetchRequest()
		r.GroupID, r.MemberID, r.ShareSessionEpoch, r.IsRenewAck, r.MaxRecords = &m.group, &m.id, epoch, isRenew, maxRecords
		r.MaxBytes = 0 // kmsg defaults it to MaxInt32; a renewing fetch sends 0
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = m.topicID
		rt.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0, AcknowledgementBatches: []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{
			{FirstOffset: 0, LastOffset: 1, AcknowledgeTypes: []int8{4}},
		}}}
		r.Topics = append(r.Topics, rt)
		got, err := r.RequestWith(testContext(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := renew(false, 0, 1); got.ErrorCode != 42 { // INVALID_REQUEST
		t.Fatalf("RENEW without IsRenewAck: error %d, want INVALID_REQUEST", got.ErrorCode)
	}
	if got := renew(true, 10, 1); got.ErrorCode != 42 {
		t.Fatalf("renewing fetch with MaxRecords 10: error %d, want INVALID_REQUEST", got.ErrorCode)
	}
	got := renew(true, 0, 1)
	if got.ErrorCode != 0 || len(got.Topics) != 1 {
		t.Fatalf("renewing fetch: %+v", got)
	}
	p := got.Topics[0].Partitions[0]
	if p.AcknowledgeErrorCode != 0 || len(p.AcquiredRecords) != 0 || len(p.Records) != 0 {
		t.Fatalf("renewing fetch answered ack error %d and %d acquired ranges; want 0 and none", p.AcknowledgeErrorCode, len(p.AcquiredRecords))
	}
}

// TestShareGroupHeartbeatOnConsumerGroupID: a group id that names a
// consumer group (here one with only committed offsets) cannot become a
// share group: GROUP_ID_NOT_FOUND, as Kafka answers.
func TestShareGroupHeartbeatOnConsumerGroupID(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "share-clash", 1, nil)
	offsets := kadm.Offsets{}
	offsets.AddOffset("share-clash", 0, 0, -1)
	if resp, err := adm.CommitOffsets(testContext(t), "clash-group", offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.SubscribedTopicNames = "clash-group", "member-1", []string{"share-clash"}
	resp, err := req.RequestWith(testContext(t), newClient(t, b.Addr()))
	if err != nil || resp.ErrorCode != 69 {
		t.Fatalf("ShareGroupHeartbeat on a consumer group's id: %v error %d, want GROUP_ID_NOT_FOUND (69)", err, resp.ErrorCode)
	}
}
