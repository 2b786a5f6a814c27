package integration

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupAdmin checks kadm's group administration against Kafka's
// answers for three groups: one that only has committed offsets (Kafka's
// "simple group"), a live classic group and a live KIP-848 group; then
// deletes offsets and groups and checks that the broker remembers it all
// across a restart.
func TestGroupAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, groupSettings(), dir)
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	const topic = "admin"
	createTopic(t, adm, topic, 3, nil)

	// A group that only has committed offsets.
	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: topic, Partition: 0, At: 5, LeaderEpoch: 0, Metadata: "first"})
	commits.Add(kadm.Offset{Topic: topic, Partition: 1, At: 7, LeaderEpoch: -1})
	if rs, err := adm.CommitOffsets(ctx, "simple", commits); err != nil || rs.Error() != nil {
		t.Fatalf("commit to a new group: %v %v", err, rs.Error())
	}

	// A live classic group and a live KIP-848 group on the same topic.
	o := newOwnership()
	classic := startKgoMember(t, o, b.Addr(), "classic", topic, "classic-member", kgo.Balancers(kgo.RangeBalancer()), kgo.DisableAutoCommit())
	waitClassicBalanced(t, o, adm, "classic", topic, 3)
	commitSync(t, classic, topic, map[int32]int64{0: 1, 1: 2, 2: 3})
	o848 := newOwnership()
	next := startKgoMember(t, o848, b.Addr(), "next", topic, "next-member", kgo.ServerSideBalancer(), kgo.Balancers(kgo.StickyBalancer()), kgo.DisableAutoCommit())
	waitConsumerBalanced(t, o848, adm, "next", topic, 3)
	commitSync(t, next, topic, map[int32]int64{2: 9})
	// franz-go commits its member id as the offsets' metadata.
	classicID, _ := classic.cl.GroupMetadata()
	nextID, _ := next.cl.GroupMetadata()

	// ListGroups: every group, with its type, protocol type and state.
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []kadm.ListedGroup{
		{Group: "simple", GroupType: "classic", ProtocolType: "", State: "Empty"},
		{Group: "classic", GroupType: "classic", ProtocolType: "consumer", State: "Stable"},
		{Group: "next", GroupType: "consumer", ProtocolType: "consumer", State: "Stable"},
	} {
		if got := listed[want.Group]; got != want {
			t.Errorf("ListGroups %s: got %+v, want %+v", want.Group, got, want)
		}
	}
	if len(listed) != 3 {
		t.Errorf("ListGroups lists %v, want simple, classic and next", listed.Groups())
	}
	for _, tc := range []struct {
		states, types []string
		want          []string
	}{
		{states: []string{"Empty"}, want: []string{"simple"}},
		{states: []string{"stable"}, want: []string{"classic", "next"}}, // Kafka matches states case-insensitively
		{types: []string{"consumer"}, want: []string{"next"}},
		{types: []string{"classic"}, states: []string{"Stable"}, want: []string{"classic"}},
	} {
		got, err := adm.ListGroupsByType(ctx, tc.types, tc.states...)
		if err != nil || !slices.Equal(got.Groups(), tc.want) {
			t.Errorf("ListGroups types %v states %v: got %v (%v), want %v", tc.types, tc.states, got.Groups(), err, tc.want)
		}
	}

	// DescribeGroups: classic groups only; the simple group is Empty with
	// no protocol; a KIP-848 group is "not found" to it, as in Kafka 4.
	ds, err := adm.DescribeGroups(ctx, "simple", "classic", "next", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if d := ds["simple"]; d.Err != nil || d.State != "Empty" || d.ProtocolType != "" || d.Protocol != "" || len(d.Members) != 0 {
		t.Errorf("describe simple group: %+v", d)
	}
	if d := ds["classic"]; d.Err != nil || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 1 ||
		d.Members[0].ClientID != "classic-member" || d.Members[0].ClientHost != "/127.0.0.1" ||
		!slices.Equal(d.JoinTopics(), []string{topic}) || len(d.AssignedPartitions()[topic]) != 3 {
		t.Errorf("describe classic group: %+v", d)
	}
	for _, id := range []string{"next", "nobody"} {
		if d := ds[id]; !errors.Is(d.Err, kerr.GroupIDNotFound) || d.State != "Dead" {
			t.Errorf("describe %s: state %q error %v, want Dead with GROUP_ID_NOT_FOUND", id, d.State, d.Err)
		}
	}
	cds, err := adm.DescribeConsumerGroups(ctx, "classic", "next")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(cds["classic"].Err, kerr.GroupIDNotFound) {
		t.Errorf("ConsumerGroupDescribe of a classic group: %v, want GROUP_ID_NOT_FOUND", cds["classic"].Err)
	}
	if d := cds["next"]; d.Err != nil || d.State != "Stable" || len(d.Members) != 1 || d.Members[0].ClientID != "next-member" {
		t.Errorf("ConsumerGroupDescribe of the KIP-848 group: %+v", d)
	}

	// FetchOffsets: exactly what was committed, metadata and leader epoch
	// included; nothing (and no error) for a group that does not exist.
	wantOffsets(t, adm, "simple", map[int32]kadm.Offset{
		0: {Topic: topic, Partition: 0, At: 5, LeaderEpoch: 0, Metadata: "first"},
		1: {Topic: topic, Partition: 1, At: 7, LeaderEpoch: -1},
	})
	wantOffsets(t, adm, "classic", map[int32]kadm.Offset{
		0: {Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1, Metadata: classicID},
		1: {Topic: topic, Partition: 1, At: 2, LeaderEpoch: -1, Metadata: classicID},
		2: {Topic: topic, Partition: 2, At: 3, LeaderEpoch: -1, Metadata: classicID},
	})
	wantOffsets(t, adm, "next", map[int32]kadm.Offset{2: {Topic: topic, Partition: 2, At: 9, LeaderEpoch: -1, Metadata: nextID}})
	wantOffsets(t, adm, "nobody", nil)

	// DeleteOffsets: refused per partition while a live group consumes the
	// topic; allowed for the simple group; GROUP_ID_NOT_FOUND for none.
	for _, g := range []string{"classic", "next"} {
		rs, err := adm.DeleteOffsets(ctx, g, kadm.TopicsSet{topic: {0: {}}})
		if err != nil || !errors.Is(rs[topic][0], kerr.GroupSubscribedToTopic) {
			t.Errorf("DeleteOffsets of %s, which consumes the topic: %v %v, want GROUP_SUBSCRIBED_TO_TOPIC", g, err, rs)
		}
	}
	if rs, err := adm.DeleteOffsets(ctx, "simple", kadm.TopicsSet{topic: {0: {}}}); err != nil || rs[topic][0] != nil {
		t.Errorf("DeleteOffsets of the simple group: %v %v", err, rs)
	}
	if _, err := adm.DeleteOffsets(ctx, "nobody", kadm.TopicsSet{topic: {0: {}}}); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("DeleteOffsets of a group that does not exist: %v, want GROUP_ID_NOT_FOUND", err)
	}
	wantOffsets(t, adm, "simple", map[int32]kadm.Offset{1: {Topic: topic, Partition: 1, At: 7, LeaderEpoch: -1}})

	// DeleteGroups: live groups are not empty; unknown ones are not found.
	rs, err := adm.DeleteGroups(ctx, "classic", "next", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	for g, want := range map[string]error{"classic": kerr.NonEmptyGroup, "next": kerr.NonEmptyGroup, "nobody": kerr.GroupIDNotFound} {
		if !errors.Is(rs[g].Err, want) {
			t.Errorf("DeleteGroups %s: %v, want %v", g, rs[g].Err, want)
		}
	}

	// Once the members leave, both groups are Empty with their offsets,
	// which may now be deleted.
	classic.leave()
	next.leave()
	listed, err = adm.ListGroups(ctx, "Empty")
	if err != nil || !slices.Equal(listed.Groups(), []string{"classic", "next", "simple"}) {
		t.Errorf("empty groups: %v (%v), want classic, next and simple", listed.Groups(), err)
	}
	if rs, err := adm.DeleteOffsets(ctx, "classic", kadm.TopicsSet{topic: {0: {}}}); err != nil || rs[topic][0] != nil {
		t.Errorf("DeleteOffsets of the emptied classic group: %v %v", err, rs)
	}
	if rs, err := adm.DeleteGroups(ctx, "next", "simple"); err != nil || rs["next"].Err != nil || rs["simple"].Err != nil {
		t.Fatalf("DeleteGroups of empty groups: %v %+v", err, rs)
	}
	checkAfterDeletes := func(adm *kadm.Client) {
		t.Helper()
		listed, err := adm.ListGroups(ctx)
		if err != nil || !slices.Equal(listed.Groups(), []string{"classic"}) {
			t.Errorf("groups after the deletes: %v (%v), want classic", listed.Groups(), err)
		}
		ds, err := adm.DescribeGroups(ctx, "simple")
		if err != nil || !errors.Is(ds["simple"].Err, kerr.GroupIDNotFound) {
			t.Errorf("describe a deleted group: %v %+v", err, ds["simple"])
		}
		wantOffsets(t, adm, "simple", nil)
		wantOffsets(t, adm, "next", nil)
		wantOffsets(t, adm, "classic", map[int32]kadm.Offset{
			1: {Topic: topic, Partition: 1, At: 2, LeaderEpoch: -1, Metadata: classicID},
			2: {Topic: topic, Partition: 2, At: 3, LeaderEpoch: -1, Metadata: classicID},
		})
	}
	checkAfterDeletes(adm)

	// The broker restarts: deletions and the remaining offsets persist.
	b.Close()
	b = startBroker(t, groupSettings(), dir)
	checkAfterDeletes(newAdmin(t, b.Addr()))
}

// wantOffsets checks a group's committed offsets of every topic against
// want (partitions of the "admin" topic).
func wantOffsets(t *testing.T, adm *kadm.Client, group string, want map[int32]kadm.Offset) {
	t.Helper()
	got, err := adm.FetchOffsets(testContext(t), group)
	if err != nil {
		t.Errorf("FetchOffsets %s: %v", group, err)
		return
	}
	n := 0
	got.Each(func(r kadm.OffsetResponse) {
		n++
		w, ok := want[r.Partition]
		r.Offset.TopicID = kadm.TopicID{}
		if !ok || r.Err != nil || r.Offset != w {
			t.Errorf("FetchOffsets %s: got %+v (%v), want %+v", group, r.Offset, r.Err, w)
		}
	})
	if n != len(want) {
		t.Errorf("FetchOffsets %s: %d offsets, want %d", group, n, len(want))
	}
}
