package share

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type fakeTopics map[string]int32

func (f fakeTopics) TopicID(name string) ([16]byte, bool) {
	_, ok := f[name]
	return [16]byte{byte(len(name)), name[0]}, ok
}

func (f fakeTopics) TopicNameByID(id [16]byte) (string, bool) {
	for name := range f {
		if got, _ := f.TopicID(name); got == id {
			return name, true
		}
	}
	return "", false
}

func (f fakeTopics) PartitionCount(name string) (int32, bool) {
	n, ok := f[name]
	return n, ok
}

func heartbeat(g *Group, now time.Time, member string, epoch int32, topics fakeTopics, subs ...string) *kmsg.ShareGroupHeartbeatResponse {
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.Version = 1
	req.GroupID, req.MemberID, req.MemberEpoch = g.ID, member, epoch
	if subs != nil {
		req.SubscribedTopicNames = subs
	}
	return g.Heartbeat(now, req, "client", "/127.0.0.1", topics)
}

func assignedParts(resp *kmsg.ShareGroupHeartbeatResponse) []int32 {
	if resp.Assignment == nil {
		return nil
	}
	var out []int32
	for _, tp := range resp.Assignment.TopicPartitions {
		out = append(out, tp.Partitions...)
	}
	return out
}

func TestShareGroupHeartbeatAssignsAndRebalances(t *testing.T) {
	topics := fakeTopics{"t": 3}
	g := NewGroup("g", DefaultGroupConfig())
	a := heartbeat(g, t0, "a", 0, topics, "t")
	if a.ErrorCode != 0 || a.MemberEpoch != 1 || !reflect.DeepEqual(assignedParts(a), []int32{0, 1, 2}) {
		t.Fatalf("first member: err %d epoch %d parts %v", a.ErrorCode, a.MemberEpoch, assignedParts(a))
	}
	b := heartbeat(g, t0, "b", 0, topics, "t")
	if b.MemberEpoch != 2 || !reflect.DeepEqual(assignedParts(b), []int32{1}) {
		t.Fatalf("second member: epoch %d parts %v", b.MemberEpoch, assignedParts(b))
	}
	// a learns its smaller assignment and the new epoch on its next heartbeat.
	a = heartbeat(g, t0, "a", 1, topics)
	if a.MemberEpoch != 2 || !reflect.DeepEqual(assignedParts(a), []int32{0, 2}) {
		t.Fatalf("a after b joined: epoch %d parts %v", a.MemberEpoch, assignedParts(a))
	}
	// Unchanged: no assignment in the response.
	if a = heartbeat(g, t0, "a", 2, topics); a.Assignment != nil {
		t.Fatalf("unchanged assignment resent: %+v", a.Assignment)
	}
	if resp := heartbeat(g, t0, "a", 3, topics); resp.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("epoch above the coordinator's: error %d, want FENCED_MEMBER_EPOCH", resp.ErrorCode)
	}
	if resp := heartbeat(g, t0, "zz", 3, topics); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: error %d, want UNKNOWN_MEMBER_ID", resp.ErrorCode)
	}
	if resp := heartbeat(g, t0, "c", 0, topics); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("join without topics: error %d, want INVALID_REQUEST", resp.ErrorCode)
	}
	if resp := heartbeat(g, t0, "b", -1, topics); resp.ErrorCode != 0 || resp.MemberEpoch != -1 {
		t.Fatalf("leave: error %d epoch %d", resp.ErrorCode, resp.MemberEpoch)
	}
	if a = heartbeat(g, t0, "a", 2, topics); !reflect.DeepEqual(assignedParts(a), []int32{0, 1, 2}) {
		t.Fatalf("a after b left: parts %v", assignedParts(a))
	}
}

// A member whose heartbeat response with a new epoch was lost comes back
// with the previous epoch. Kafka accepts it (GroupMetadataManager's
// throwIfShareGroupMemberEpochIsInvalid); Skiff fenced it, and franz-go,
// fenced, resets its share sessions and drops its pending
// acknowledgements, so their records were delivered again.
func TestShareGroupHeartbeatWithPreviousEpochIsNotFenced(t *testing.T) {
	topics := fakeTopics{"t": 3}
	g := NewGroup("g", DefaultGroupConfig())
	heartbeat(g, t0, "a", 0, topics, "t")
	heartbeat(g, t0, "b", 0, topics, "t")
	if a := heartbeat(g, t0, "a", 1, topics); a.MemberEpoch != 2 {
		t.Fatalf("a's epoch after b joined: %d, want 2", a.MemberEpoch)
	}
	// That response is lost: a heartbeats again with epoch 1.
	a := heartbeat(g, t0, "a", 1, topics)
	if a.ErrorCode != 0 || a.MemberEpoch != 2 || !reflect.DeepEqual(assignedParts(a), []int32{0, 2}) {
		t.Fatalf("previous epoch: error %d, epoch %d, parts %v; want epoch 2 with parts [0 2]", a.ErrorCode, a.MemberEpoch, assignedParts(a))
	}
	if a := heartbeat(g, t0, "a", 2, topics); a.ErrorCode != 0 || a.Assignment != nil {
		t.Fatalf("current epoch after the resend: error %d, assignment %+v", a.ErrorCode, a.Assignment)
	}
	// Two epochs back is fenced.
	heartbeat(g, t0, "c", 0, topics, "t")
	if a := heartbeat(g, t0, "a", 2, topics); a.MemberEpoch != 3 {
		t.Fatalf("a's epoch after c joined: %d, want 3", a.MemberEpoch)
	}
	if a := heartbeat(g, t0, "a", 1, topics); a.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("epoch two behind: error %d, want FENCED_MEMBER_EPOCH", a.ErrorCode)
	}
}

func TestShareGroupMoreMembersThanPartitionsShare(t *testing.T) {
	topics := fakeTopics{"t": 2}
	g := NewGroup("g", DefaultGroupConfig())
	for _, m := range []string{"a", "b", "c"} {
		heartbeat(g, t0, m, 0, topics, "t")
	}
	for m, want := range map[string]int32{"a": 0, "b": 1, "c": 0} {
		if !g.Assigned(m, TopicPartition{TopicID: [16]byte{1, 't'}, Partition: want}) {
			t.Fatalf("member %s does not have partition %d", m, want)
		}
	}
}

func TestShareGroupSessionExpiry(t *testing.T) {
	topics := fakeTopics{"t": 1}
	cfg := DefaultGroupConfig()
	g := NewGroup("g", cfg)
	heartbeat(g, t0, "a", 0, topics, "t")
	heartbeat(g, t0.Add(time.Second), "b", 0, topics, "t")
	if d, ok := g.NextDeadline(); !ok || !d.Equal(t0.Add(cfg.SessionTimeout)) {
		t.Fatalf("deadline %v, want %v", d, t0.Add(cfg.SessionTimeout))
	}
	if gone := g.Expire(t0.Add(cfg.SessionTimeout), topics); !reflect.DeepEqual(gone, []string{"a"}) {
		t.Fatalf("expired %v, want [a]", gone)
	}
	d := g.Describe(topics)
	if d.GroupState != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != "b" ||
		d.Members[0].Assignment.TopicPartitions[0].Topic != "t" {
		t.Fatalf("describe after expiry: %+v", d)
	}
	g.Expire(t0.Add(time.Hour), topics)
	if d := g.Describe(topics); d.GroupState != "Empty" || !g.Empty() {
		t.Fatalf("state %s, want Empty", d.GroupState)
	}
}

func TestShareGroupMaxSize(t *testing.T) {
	cfg := DefaultGroupConfig()
	cfg.MaxSize = 1
	g := NewGroup("g", cfg)
	heartbeat(g, t0, "a", 0, fakeTopics{"t": 1}, "t")
	if resp := heartbeat(g, t0, "b", 0, fakeTopics{"t": 1}, "t"); resp.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("error %d, want GROUP_MAX_SIZE_REACHED", resp.ErrorCode)
	}
}
