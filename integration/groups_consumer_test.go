package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-848 consumer groups: the broker assigns partitions and members
// reconcile to their targets one heartbeat at a time.

// settle applies change to a KIP-848 group and waits until it is balanced
// again. Each member in stay must then have been revoked exactly the
// partitions it no longer owns (the rebalance is incremental: nothing is
// revoked and given back) and have kept as many of its partitions as its
// new share allows (both server-side assignors are sticky).
func settle(t *testing.T, o *ownership, adm *kadm.Client, group, topic string, partitions int32, stay []string, change func()) kadm.DescribedConsumerGroup {
	t.Helper()
	before := make(map[string][]int32)
	revokedBefore := make(map[string]int)
	for _, n := range stay {
		before[n] = o.partitions(n)
		revokedBefore[n] = len(o.revokedOf(n))
	}
	change()
	d := waitConsumerBalanced(t, o, adm, group, topic, partitions)
	share := int(partitions) / len(o.liveMembers())
	for _, n := range stay {
		now := o.partitions(n)
		var lost, kept []int32
		for _, p := range before[n] {
			if slices.Contains(now, p) {
				kept = append(kept, p)
			} else {
				lost = append(lost, p)
			}
		}
		revoked := o.revokedOf(n)[revokedBefore[n]:]
		slices.Sort(revoked)
		if !slices.Equal(revoked, lost) {
			t.Errorf("member %s went from %v to %v but was revoked %v", n, before[n], now, revoked)
		}
		if want := min(len(before[n]), share); len(kept) < want {
			t.Errorf("member %s went from %v to %v: kept %d partitions, a sticky assignor keeps %d", n, before[n], now, len(kept), want)
		}
	}
	return d
}

// TestConsumerGroupAssignors runs KIP-848 groups of franz-go members with
// each server-side assignor (franz-go asks for "uniform" with its sticky
// balancer and "range" with its range balancer): one member takes every
// partition, joiners and leavers move only the partitions they must, a
// killed member's partitions move once its session expires, and
// ConsumerGroupDescribe reports the members, their epochs and assignments.
func TestConsumerGroupAssignors(t *testing.T) {
	t.Parallel()
	b := startBroker(t, groupSettings())
	adm := newAdmin(t, b.Addr())
	for _, tc := range []struct {
		assignor string
		balancer kgo.GroupBalancer
	}{
		{"uniform", kgo.StickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(tc.assignor, func(t *testing.T) {
			t.Parallel()
			topic, group := "kip848-"+tc.assignor, "kip848-"+tc.assignor
			const partitions = 6
			createTopic(t, adm, topic, partitions, nil)
			o := newOwnership()
			start := func(name string) *kgoMember {
				return startKgoMember(t, o, b.Addr(), group, topic, name, kgo.ServerSideBalancer(), kgo.Balancers(tc.balancer))
			}
			ms := map[string]*kgoMember{}
			epoch := int32(0)
			step := func(what string, stay []string, change func()) kadm.DescribedConsumerGroup {
				t.Helper()
				d := settle(t, o, adm, group, topic, partitions, stay, change)
				if d.AssignorName != tc.assignor {
					t.Errorf("%s: group uses assignor %q, want %q", what, d.AssignorName, tc.assignor)
				}
				if d.Epoch <= epoch {
					t.Errorf("%s: group epoch %d did not advance from %d", what, d.Epoch, epoch)
				}
				epoch = d.Epoch
				return d
			}

			step("first member", nil, func() { ms["m1"] = start("m1") })
			d := step("second member", []string{"m1"}, func() { ms["m2"] = start("m2") })
			for _, m := range d.Members {
				name := m.ClientID
				if ms[name] == nil || m.ClientHost != "/127.0.0.1" || !slices.Equal(m.SubscribedTopics, []string{topic}) || m.InstanceID != nil {
					t.Errorf("described member %+v: want client id m1 or m2, host /127.0.0.1, subscription [%s], no instance id", m, topic)
					continue
				}
				if id, gen := ms[name].cl.GroupMetadata(); m.MemberID != id || m.MemberEpoch != gen {
					t.Errorf("described member %s as %s at epoch %d; its client says %s at %d", name, m.MemberID, m.MemberEpoch, id, gen)
				}
			}
			step("third member", []string{"m1", "m2"}, func() { ms["m3"] = start("m3") })
			leftAt := time.Now()
			step("a member leaves", []string{"m1", "m3"}, func() { ms["m2"].leave() })
			if took := time.Since(leftAt); took >= testSession/2 {
				t.Errorf("a leave took %v to rebalance; only the %v session timeout takes that long", took, testSession)
			}
			killedAt := time.Now()
			step("a member is killed", []string{"m1"}, func() { ms["m3"].kill() })
			if took := time.Since(killedAt); took < testSession/2 {
				t.Errorf("killed member's partitions moved after %v, before its session could expire", took)
			}
		})
	}
}

// rawMember speaks ConsumerGroupHeartbeat itself, to drive the protocol
// where clients cannot (franz-go's static leave omits the instance id).
type rawMember struct {
	t        *testing.T
	cl       *kgo.Client
	group    string
	topic    string
	id       string
	instance *string
	epoch    int32
	owned    []kmsg.ConsumerGroupHeartbeatRequestTopic
}

func (m *rawMember) heartbeat(epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
	m.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = m.group, m.id, epoch, m.instance
	if epoch == 0 {
		req.RebalanceTimeoutMillis = 5000
		req.SubscribedTopicNames = []string{m.topic}
		req.ServerAssignor = kmsg.StringPtr("uniform")
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	} else if epoch > 0 {
		req.Topics = m.owned
		if req.Topics == nil {
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
	}
	resp, err := req.RequestWith(testContext(m.t), m.cl)
	if err != nil {
		m.t.Fatalf("%s: heartbeat: %v", m.id, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		msg := ""
		if resp.ErrorMessage != nil {
			msg = *resp.ErrorMessage
		}
		m.t.Fatalf("%s: heartbeat at epoch %d: %v %s", m.id, epoch, err, msg)
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.owned = nil
		for _, at := range resp.Assignment.Topics {
			rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
			rt.TopicID, rt.Partitions = at.TopicID, slices.Sorted(slices.Values(at.Partitions))
			m.owned = append(m.owned, rt)
		}
	}
	return resp
}

func (m *rawMember) partitions() []int32 {
	var out []int32
	for _, t := range m.owned {
		out = append(out, t.Partitions...)
	}
	slices.Sort(out)
	return out
}

// TestConsumerGroupStaticMemberRestart drives KIP-848 static membership
// with raw heartbeats: a static member that leaves with epoch -2 and comes
// back under a new member id with its instance id gets its partitions back
// at the same group epoch, and the other member sees no change.
func TestConsumerGroupStaticMemberRestart(t *testing.T) {
	t.Parallel()
	b := startBroker(t, groupSettings())
	adm := newAdmin(t, b.Addr())
	const topic, group, partitions = "static848", "static848", 4
	createTopic(t, adm, topic, partitions, nil)
	cl := newClient(t, b.Addr())
	inst := "s1"
	s1 := &rawMember{t: t, cl: cl, group: group, topic: topic, id: "s1-first-incarnation", instance: &inst}
	s2 := &rawMember{t: t, cl: cl, group: group, topic: topic, id: "s2-member"}

	// Heartbeat both (reporting what they own) until each holds half.
	s1.heartbeat(0)
	s2.heartbeat(0)
	waitFor(t, balanceWait, "both members to reconcile", func() error {
		s1.heartbeat(s1.epoch)
		s2.heartbeat(s2.epoch)
		d, _, err := consumerView(testContext(t), adm, group, topic)
		if err != nil {
			return err
		}
		if d.State != "Stable" || len(s1.partitions()) != 2 || len(s2.partitions()) != 2 {
			return fmt.Errorf("state %s, s1 owns %v, s2 owns %v", d.State, s1.partitions(), s2.partitions())
		}
		return nil
	})
	d, _, err := consumerView(testContext(t), adm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	groupEpoch, s1Parts, s2Parts, s2Epoch := d.Epoch, s1.partitions(), s2.partitions(), s2.epoch

	if resp := s1.heartbeat(-2); resp.MemberEpoch != -2 {
		t.Fatalf("static leave answered epoch %d, want -2", resp.MemberEpoch)
	}
	// Until it returns, a new incarnation with its own subscription is
	// not a new member: the instance keeps its place.
	d, view, err := consumerView(testContext(t), adm, group, topic)
	if err != nil || len(d.Members) != 2 || !slices.Equal(view[s1.id], s1Parts) {
		t.Fatalf("after the static leave: %v members, s1 listed with %v (%v); want it kept with %v", len(d.Members), view[s1.id], err, s1Parts)
	}

	s1.id, s1.owned = "s1-second-incarnation", nil
	resp := s1.heartbeat(0)
	if !slices.Equal(s1.partitions(), s1Parts) || resp.MemberEpoch != groupEpoch {
		t.Errorf("returning static member got %v at epoch %d; want its old %v at group epoch %d", s1.partitions(), resp.MemberEpoch, s1Parts, groupEpoch)
	}
	if resp := s2.heartbeat(s2.epoch); resp.Assignment != nil || s2.epoch != s2Epoch {
		t.Errorf("the other member got assignment %v at epoch %d (was %v at %d)", resp.Assignment, s2.epoch, s2Parts, s2Epoch)
	}
	d, view, err = consumerView(testContext(t), adm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if d.Epoch != groupEpoch || d.State != "Stable" || len(d.Members) != 2 || !slices.Equal(view[s1.id], s1Parts) || !slices.Equal(view[s2.id], s2Parts) {
		t.Errorf("group after the static member returned: state %s epoch %d (was %d), members %v; want s1 %v, s2 %v",
			d.State, d.Epoch, groupEpoch, view, s1Parts, s2Parts)
	}
	for _, m := range d.Members {
		if m.MemberID == s1.id && (m.InstanceID == nil || *m.InstanceID != inst) {
			t.Errorf("returning member described with instance id %v, want %s", m.InstanceID, inst)
		}
	}

	// The first incarnation is fenced.
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = group, "s1-first-incarnation", groupEpoch, &inst
	req.Topics = s1.owned
	r, err := req.RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Errorf("old incarnation's heartbeat: %v, want FENCED_INSTANCE_ID", kerr.ErrorForCode(r.ErrorCode))
	}
}
