package coordinator

import (
	"testing"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetsTopicCreatedWithoutHoldingGroupsLock: the first write of a
// group created __consumer_offsets (opening its logs and fsyncing the
// cluster metadata) while holding Groups.mu, stalling every group
// operation meanwhile. It is now created before the lock is taken.
func TestOffsetsTopicCreatedWithoutHoldingGroupsLock(t *testing.T) {
	var g *Groups
	var created, heldDuringCreate int
	log := &memLog{}
	createLogs := func() ([]Log, error) {
		created++
		if g.mu.TryLock() {
			g.mu.Unlock()
		} else {
			heldDuringCreate++
		}
		return []Log{log}, nil
	}
	g, err := New(testConfig(), Deps{Clock: newFakeClock(), Logger: zerolog.Nop(),
		Topics: &fakeTopics{counts: map[string]int32{"t1": 3}}, CreateLogs: createLogs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)

	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, "standalone", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t1"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 42
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	for range 2 {
		resp := g.OffsetCommit(ctxFor("c"), req)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit: error %d", code)
		}
	}
	if created != 1 {
		t.Errorf("__consumer_offsets created %d times, want once", created)
	}
	if heldDuringCreate > 0 {
		t.Error("__consumer_offsets was created holding Groups.mu")
	}
	if log.next == 0 {
		t.Error("the commit was not written to the created log")
	}
}
