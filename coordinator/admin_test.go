package coordinator

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func deleteGroups(h *harness, ids ...string) map[string]int16 {
	r := kmsg.NewPtrDeleteGroupsRequest()
	r.Version = 2
	r.Groups = ids
	out := make(map[string]int16)
	for _, g := range h.g.DeleteGroups(context.Background(), r).Groups {
		out[g.Group] = g.ErrorCode
	}
	return out
}

func TestDeleteGroupsRules(t *testing.T) {
	h := newHarness(t, testConfig(), 2)
	h.stableGroup("busy", 1)
	if code := h.commit(commitReq("idle", "", -1, "t1", 0, 3)); code != 0 {
		t.Fatalf("commit %d", code)
	}
	got := deleteGroups(h, "busy", "idle", "missing")
	if got["busy"] != kerr.NonEmptyGroup.Code || got["idle"] != 0 || got["missing"] != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete: %v", got)
	}
	if off, _ := h.fetchOne("idle", "t1", 0); off != -1 {
		t.Fatalf("offset of deleted group: %d", off)
	}
	if _, ok := h.listGroups(nil, nil)["idle"]; ok {
		t.Fatal("deleted group listed")
	}
	if got := deleteGroups(h, "idle"); got["idle"] != kerr.GroupIDNotFound.Code {
		t.Fatalf("second delete: %v", got)
	}
	h.restart()
	if _, ok := h.listGroups(nil, nil)["idle"]; ok {
		t.Fatal("deleted group back after restart")
	}
	if off, _ := h.fetchOne("idle", "t1", 0); off != -1 {
		t.Fatalf("offset of deleted group after restart: %d", off)
	}
}

func offsetDelete(h *harness, groupID string, topics ...string) *kmsg.OffsetDeleteResponse {
	r := kmsg.NewPtrOffsetDeleteRequest()
	r.Group = groupID
	for _, topic := range topics {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		p := kmsg.NewOffsetDeleteRequestTopicPartition()
		p.Partition = 0
		rt.Partitions = append(rt.Partitions, p)
		r.Topics = append(r.Topics, rt)
	}
	return h.g.OffsetDelete(context.Background(), r)
}

func TestOffsetDeleteRules(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	ids, gen := h.stableGroup("g", 1) // a consumer subscribed to t1
	for _, topic := range []string{"t1", "t2"} {
		if code := h.commit(commitReq("g", ids[0], gen, topic, 0, 9)); code != 0 {
			t.Fatalf("commit %d", code)
		}
	}
	resp := offsetDelete(h, "g", "t1", "t2", "nope")
	if resp.ErrorCode != 0 ||
		resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code ||
		resp.Topics[1].Partitions[0].ErrorCode != 0 ||
		resp.Topics[2].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("offset delete: %+v", resp)
	}
	if off, _ := h.fetchOne("g", "t2", 0); off != -1 {
		t.Fatalf("t2 offset survived: %d", off)
	}
	if off, _ := h.fetchOne("g", "t1", 0); off != 9 {
		t.Fatalf("t1 offset: %d", off)
	}
	if resp := offsetDelete(h, "missing", "t1"); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("unknown group: %d", resp.ErrorCode)
	}

	// A non-consumer protocol type with members: NON_EMPTY_GROUP.
	id := h.newMemberID("connect")
	jr := joinReq("connect", id, nil)
	jr.ProtocolType = "connect"
	c := h.join(jr)
	h.waitParked("connect", 1)
	h.clock.Advance(h.cfg.InitialRebalanceDelay)
	recv(t, c)
	if resp := offsetDelete(h, "connect", "t1"); resp.ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("non-empty connect group: %d", resp.ErrorCode)
	}
}

func TestListGroupsFilters(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	h.stableGroup("stable", 1)
	if code := h.commit(commitReq("simple", "", -1, "t1", 0, 1)); code != 0 {
		t.Fatalf("commit %d", code)
	}
	id := h.newMemberID("joining")
	h.join(joinReq("joining", id, nil))
	h.waitParked("joining", 1)

	all := h.listGroups(nil, nil)
	if len(all) != 3 || all["joining"].GroupState != "PreparingRebalance" {
		t.Fatalf("all: %+v", all)
	}
	if got := h.listGroups([]string{"stable", " EMPTY "}, nil); len(got) != 2 || got["stable"].Group == "" || got["simple"].Group == "" {
		t.Fatalf("states filter: %+v", got)
	}
	if got := h.listGroups(nil, []string{"Classic"}); len(got) != 3 {
		t.Fatalf("types classic: %+v", got)
	}
	if got := h.listGroups(nil, []string{"consumer"}); len(got) != 0 {
		t.Fatalf("types consumer: %+v", got)
	}
	// v3 ignores the filters it does not have (kmsg does not send them).
	r := kmsg.NewPtrListGroupsRequest()
	r.Version = 0
	if resp := h.g.ListGroups(context.Background(), r); len(resp.Groups) != 3 {
		t.Fatalf("v0: %+v", resp.Groups)
	}
	h.clock.Advance(h.cfg.InitialRebalanceDelay) // let the parked join finish
}

func TestDescribeUnknownGroup(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	for _, v := range []int16{5, 6} {
		r := kmsg.NewPtrDescribeGroupsRequest()
		r.Version = v
		r.Groups = []string{"nope"}
		dg := h.g.DescribeGroups(context.Background(), r).Groups[0]
		if dg.State != "Dead" {
			t.Fatalf("v%d: state %q", v, dg.State)
		}
		want := int16(0)
		if v >= 6 {
			want = kerr.GroupIDNotFound.Code
		}
		if dg.ErrorCode != want {
			t.Fatalf("v%d: error %d", v, dg.ErrorCode)
		}
	}
}

func TestDescribeRebalancingGroupHidesMetadata(t *testing.T) {
	h := newHarness(t, testConfig(), 1)
	id := h.newMemberID("g")
	c := h.join(joinReq("g", id, nil))
	h.waitParked("g", 1)
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 5
	r.Groups = []string{"g"}
	dg := h.g.DescribeGroups(context.Background(), r).Groups[0]
	if dg.State != "PreparingRebalance" || dg.Protocol != "" || len(dg.Members) != 1 || len(dg.Members[0].ProtocolMetadata) != 0 {
		t.Fatalf("describe: %+v", dg)
	}
	h.clock.Advance(h.cfg.InitialRebalanceDelay)
	recv(t, c)
}
