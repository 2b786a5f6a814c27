package integration

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Differential scenarios for consumer groups: the classic protocol's
// error paths (unknown member, illegal generation, rebalance in progress),
// committed offsets, the group admin APIs and KIP-848's heartbeat.

func init() { diffScenarioLists = append(diffScenarioLists, diffGroupScenarios) }

// diffMember is a classic-protocol member as a scenario drives it.
type diffMember struct {
	id         string
	generation int32
}

// joinGroup joins group as a new member (the v4+ two-step join: the first
// JoinGroup is answered MEMBER_ID_REQUIRED with the id to use) and
// returns the final response.
func (c *diffConn) joinGroup(group string, memberID string) (*kmsg.JoinGroupResponse, []any) {
	c.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = group, 30000, 30000
	req.MemberID, req.ProtocolType = memberID, "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	req.Protocols = append(req.Protocols, p)
	var seen []any
	for {
		resp := c.do(req).(*kmsg.JoinGroupResponse)
		seen = append(seen, resp)
		if resp.ErrorCode != kerr.MemberIDRequired.Code || len(seen) > 1 {
			return resp, seen
		}
		req.MemberID = resp.MemberID
	}
}

// stableMember joins group and syncs as its only member.
func (c *diffConn) stableMember(group string) (diffMember, []any) {
	c.t.Helper()
	join, seen := c.joinGroup(group, "")
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.Generation, sync.MemberID = group, join.Generation, join.MemberID
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), join.Protocol
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = join.MemberID, []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	sync.GroupAssignment = append(sync.GroupAssignment, a)
	return diffMember{id: join.MemberID, generation: join.Generation}, append(seen, c.do(sync))
}

func heartbeatReq(group string, m diffMember) *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = group, m.generation, m.id
	return req
}

func offsetCommitReq(group string, m diffMember, topic string, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = group, m.generation, m.id
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = 0, offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func offsetFetchReq(group string) *kmsg.OffsetFetchRequest {
	req := kmsg.NewPtrOffsetFetchRequest()
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group, g.MemberEpoch = group, -1
	req.Groups = append(req.Groups, g)
	return req
}

var diffGroupScenarios = []diffScenario{
	{name: "FindCoordinator", run: func(c *diffConn) []any {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKeys = []string{c.name("g")}
		txn := kmsg.NewPtrFindCoordinatorRequest()
		txn.CoordinatorType, txn.CoordinatorKeys = 1, []string{c.name("txn")}
		bad := kmsg.NewPtrFindCoordinatorRequest()
		bad.CoordinatorType, bad.CoordinatorKeys = 5, []string{c.name("x")}
		return []any{c.do(req), c.do(txn), c.do(bad)}
	}},
	{name: "JoinSyncHeartbeatLeave", run: func(c *diffConn) []any {
		g := c.name("g")
		m, seen := c.stableMember(g)
		hb := c.do(heartbeatReq(g, m))
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group = g
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.id
		leave.Members = append(leave.Members, lm)
		return append(seen, hb, c.do(leave), c.do(heartbeatReq(g, m)))
	}},
	{name: "GroupUnknownMemberAndIllegalGeneration", run: func(c *diffConn) []any {
		g := c.name("g")
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		m, _ := c.stableMember(g)
		unknown := diffMember{id: "no-such-member", generation: m.generation}
		stale := diffMember{id: m.id, generation: m.generation + 5}
		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Group, sync.Generation, sync.MemberID = g, m.generation, "no-such-member"
		sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
		return []any{
			c.do(heartbeatReq(g, unknown)),
			c.do(heartbeatReq(g, stale)),
			c.do(offsetCommitReq(g, unknown, topic, 1)),
			c.do(offsetCommitReq(g, stale, topic, 1)),
			c.do(sync),
			c.do(heartbeatReq(c.name("nogroup"), m)),
		}
	}},
	{name: "GroupRebalanceInProgress", run: func(c *diffConn) []any {
		g := c.name("g")
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		m, _ := c.stableMember(g)
		// A second member's join starts a rebalance, which waits for the
		// first to rejoin: its heartbeat and commit say so.
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = g, 30000, 30000
		req.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, p)
		first := c.do(req).(*kmsg.JoinGroupResponse) // MEMBER_ID_REQUIRED
		req.MemberID = first.MemberID
		// The rejoin parks until the rebalance completes, so send it
		// and read its answer last.
		c.corr++
		parked := c.corr
		sendRaw(c.t, c.conn, encodeRequest(setVersion(req, c.tgt.versions[req.Key()]), parked))
		other := &diffConn{t: c.t, tgt: c.tgt, scenario: c.scenario, run: c.run, conn: dialRaw(c.t, c.tgt.addr)}
		// The join travels on another connection: wait until the
		// coordinator has it before asking what it did.
		eventually(c.t, 30*time.Second, g+" rebalancing", func() bool {
			describe := kmsg.NewPtrDescribeGroupsRequest()
			describe.Groups = []string{g}
			d := other.do(describe).(*kmsg.DescribeGroupsResponse)
			return len(d.Groups) == 1 && d.Groups[0].State == "PreparingRebalance"
		})
		hb := other.do(heartbeatReq(g, m))
		commit := other.do(offsetCommitReq(g, m, topic, 3))
		describe := kmsg.NewPtrDescribeGroupsRequest()
		describe.Groups = []string{g}
		d := other.do(describe).(*kmsg.DescribeGroupsResponse)
		for i := range d.Groups {
			d.Groups[i].Members = nil // ids and join order
		}
		return []any{first, hb, commit, d}
	}},
	{name: "OffsetCommitFetchDelete", run: func(c *diffConn) []any {
		g := c.name("g")
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		simple := diffMember{generation: -1}
		commit := c.do(offsetCommitReq(g, simple, topic, 5))
		missing := c.do(offsetCommitReq(g, simple, c.name("missing"), 5))
		fetched := c.do(offsetFetchReq(g))
		del := kmsg.NewPtrOffsetDeleteRequest()
		del.Group = g
		dt := kmsg.NewOffsetDeleteRequestTopic()
		dt.Topic = topic
		dt.Partitions = append(dt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: 0})
		del.Topics = append(del.Topics, dt)
		deleted := c.do(del)
		del.Group = c.name("nogroup")
		noGroup := c.do(del)
		return []any{commit, missing, fetched, deleted, noGroup, c.do(offsetFetchReq(g))}
	}},
	{name: "OffsetCommitEdgeCases", run: func(c *diffConn) []any {
		g := c.name("g")
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		simple := diffMember{generation: -1}
		big := offsetCommitReq(g, simple, topic, 1)
		big.Topics[0].Partitions[0].Metadata = kmsg.StringPtr(string(make([]byte, 5000))) // over offset.metadata.max.bytes
		badPartition := offsetCommitReq(g, simple, topic, 1)
		badPartition.Topics[0].Partitions[0].Partition = 9
		negative := offsetCommitReq(g, simple, topic, -7)
		return []any{c.do(big), c.do(badPartition), c.do(negative), c.do(offsetFetchReq(g))}
	}},
	{name: "GroupAdmin", run: func(c *diffConn) []any {
		active, empty := c.name("active"), c.name("empty")
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		c.stableMember(active)
		c.do(offsetCommitReq(empty, diffMember{generation: -1}, topic, 1))
		describe := kmsg.NewPtrDescribeGroupsRequest()
		describe.Groups = []string{active, empty, c.name("missing")}
		d := c.do(describe).(*kmsg.DescribeGroupsResponse)
		list := c.do(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
		// The shared Kafka holds every scenario's groups: keep this one's.
		var mine []kmsg.ListGroupsResponseGroup
		for _, lg := range list.Groups {
			if lg.Group == active || lg.Group == empty {
				mine = append(mine, lg)
			}
		}
		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Groups = []string{active, empty, c.name("missing")}
		return []any{d, list.ErrorCode, mine, c.do(del)}
	}},
	{name: "JoinGroupBadRequests", run: func(c *diffConn) []any {
		g := c.name("g")
		join := func(mutate func(*kmsg.JoinGroupRequest)) kmsg.Response {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = g, 30000, 30000
			req.ProtocolType = "consumer"
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = "range", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
			req.Protocols = append(req.Protocols, p)
			mutate(req)
			return c.do(req)
		}
		return []any{
			join(func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 1 }),           // below group.min.session.timeout.ms
			join(func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 100_000_000 }), // above the max
			join(func(r *kmsg.JoinGroupRequest) { r.Protocols = nil }),
			join(func(r *kmsg.JoinGroupRequest) { r.MemberID = "never-issued" }),
			join(func(r *kmsg.JoinGroupRequest) { r.Group = "" }),
		}
	}},
	{name: "GroupInconsistentProtocol", run: func(c *diffConn) []any {
		g := c.name("g")
		c.stableMember(g)
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = g, 30000, 30000
		req.ProtocolType = "connect"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "sessioned", []byte{0}
		req.Protocols = append(req.Protocols, p)
		return []any{c.do(req)}
	}},
	{name: "LeaveGroupUnknownMembers", run: func(c *diffConn) []any {
		g := c.name("g")
		c.stableMember(g)
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group = g
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = "no-such-member"
		li := kmsg.NewLeaveGroupRequestMember()
		li.InstanceID = kmsg.StringPtr("no-such-instance")
		req.Members = append(req.Members, lm, li)
		other := kmsg.NewPtrLeaveGroupRequest()
		other.Group = c.name("nogroup")
		other.Members = append(other.Members, lm)
		return []any{c.do(req), c.do(other)}
	}},
	{name: "ConsumerGroupDescribe", run: func(c *diffConn) []any {
		g := c.name("g")
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		join := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		join.Group, join.MemberID, join.MemberEpoch = g, "AAAAAAAAAAAAAAAAAAAAAB", 0
		join.RebalanceTimeoutMillis, join.SubscribedTopicNames = 30000, []string{topic}
		c.do(join)
		classic := c.name("classic")
		c.stableMember(classic)
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{g, c.name("missing"), classic}
		resp := c.do(req).(*kmsg.ConsumerGroupDescribeResponse)
		for i := range resp.Groups {
			// Epochs, ids and the assignment are the coordinator's.
			resp.Groups[i].Members, resp.Groups[i].Epoch, resp.Groups[i].AssignmentEpoch = nil, 0, 0
		}
		return []any{resp}
	}},
	{name: "ListGroupsFilters", run: func(c *diffConn) []any {
		stable, empty := c.name("stable"), c.name("empty")
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		c.stableMember(stable)
		c.do(offsetCommitReq(empty, diffMember{generation: -1}, topic, 1))
		mine := func(req *kmsg.ListGroupsRequest) []any {
			resp := c.do(req).(*kmsg.ListGroupsResponse)
			var out []kmsg.ListGroupsResponseGroup
			for _, lg := range resp.Groups {
				if lg.Group == stable || lg.Group == empty {
					out = append(out, lg)
				}
			}
			return []any{resp.ErrorCode, out}
		}
		byState := kmsg.NewPtrListGroupsRequest()
		byState.StatesFilter = []string{"Stable"}
		// Kafka lists what its group coordinator has committed, a moment
		// after the SyncGroup that made the group stable.
		eventually(c.t, 30*time.Second, stable+" listed as Stable", func() bool {
			return len(mine(byState)[1].([]kmsg.ListGroupsResponseGroup)) == 1
		})
		byType := kmsg.NewPtrListGroupsRequest()
		byType.TypesFilter = []string{"consumer"}
		badState := kmsg.NewPtrListGroupsRequest()
		badState.StatesFilter = []string{"NoSuchState"}
		return append(append(mine(byState), mine(byType)...), mine(badState)...)
	}},
	{name: "OffsetFetchUnknownGroupAndTopic", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 2, nil)
		req := kmsg.NewPtrOffsetFetchRequest()
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group, g.MemberEpoch = c.name("nogroup"), -1
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = topic, []int32{0, 1, 5}
		missing := kmsg.NewOffsetFetchRequestGroupTopic()
		missing.Topic, missing.Partitions = c.name("missing"), []int32{0}
		g.Topics = append(g.Topics, gt, missing)
		req.Groups = append(req.Groups, g)
		return []any{c.do(req)}
	}},
	{name: "ConsumerGroupHeartbeat", run: func(c *diffConn) []any {
		g := c.name("g")
		topic := c.name("t")
		c.createTopic(topic, 2, nil)
		join := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		join.Group, join.MemberID, join.MemberEpoch = g, "", 0
		join.RebalanceTimeoutMillis, join.SubscribedTopicNames = 30000, []string{topic}
		first := c.do(join).(*kmsg.ConsumerGroupHeartbeatResponse)
		unknown := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		unknown.Group, unknown.MemberID, unknown.MemberEpoch = g, "AAAAAAAAAAAAAAAAAAAAAA", 1
		fenced := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		fenced.Group, fenced.MemberEpoch = g, first.MemberEpoch+10
		if first.MemberID != nil {
			fenced.MemberID = *first.MemberID
		}
		// The assignment is the server's choice of partitions; its
		// presence and the epochs are compared.
		first.Assignment = nil
		return []any{first, c.do(unknown), c.do(fenced)}
	}},
}

// setVersion sets req's version and returns it.
func setVersion(req kmsg.Request, v int16) kmsg.Request {
	req.SetVersion(v)
	return req
}
