package coordinator

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe handles ConsumerGroupDescribe v0-v1 for KIP-848
// groups: epochs, assignor, and every member's current and target
// assignment.
func (g *Groups) ConsumerGroupDescribe(ctx context.Context, req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	g.lock()
	defer g.unlock()
	for _, id := range req.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = id
		grp, code, msg := g.describedGroupLocked(id, kindConsumer)
		if code != 0 {
			dg.ErrorCode, dg.ErrorMessage = code, msg
		} else {
			g.describeConsumerGroupLocked(grp, &dg)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// describedGroupLocked looks a group up for ConsumerGroupDescribe or
// StreamsGroupDescribe: the group of that kind, or the error code (and
// message) Kafka answers for it.
func (g *Groups) describedGroupLocked(id string, kind groupKind) (*group, int16, *string) {
	grp := g.mu.groups[id]
	switch {
	case g.mu.closed:
		return nil, errCoordinatorNotAvailable, nil
	case id == "":
		return nil, errInvalidGroupID, nil
	case grp == nil || grp.state == stateDead:
		return nil, errGroupIDNotFound, strPtr(fmt.Sprintf("Group %s not found.", id))
	case grp.kind != kind:
		return nil, errGroupIDNotFound, strPtr(fmt.Sprintf("Group %s is not a %s group.", id, kind))
	}
	return grp, 0, nil
}

func (g *Groups) describeConsumerGroupLocked(grp *group, dg *kmsg.ConsumerGroupDescribeResponseGroup) {
	cg := grp.cg
	dg.State = cg.stateName()
	dg.Epoch = cg.epoch
	dg.AssignmentEpoch = cg.assignmentEpoch
	dg.AssignorName = cg.preferredAssignor(g.cfg.ConsumerAssignors)
	names := make(map[[16]byte]string, len(cg.subMeta))
	for t, tm := range cg.subMeta {
		names[tm.id] = t
	}
	toKmsg := func(a topicParts) kmsg.Assignment {
		var out kmsg.Assignment
		out.TopicPartitions = []kmsg.AssignmentTopicPartition{}
		for _, tid := range sortedTopicIDs(a) {
			tp := kmsg.NewAssignmentTopicPartition()
			tp.TopicID, tp.Partitions = tid, slices.Clone(a[tid])
			tp.Topic = names[tid]
			if tp.Topic == "" {
				tp.Topic, _ = g.topics.TopicNameByID(tid)
			}
			out.TopicPartitions = append(out.TopicPartitions, tp)
		}
		return out
	}
	for _, id := range sortedKeys(cg.members) {
		m := cg.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.RackID = m.rackID
		dm.MemberEpoch = m.epoch
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.SubscribedTopics = slices.Clone(m.topics)
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		if m.hasRegex {
			dm.SubscribedTopicRegex = strPtr(m.regex)
		}
		dm.Assignment = toKmsg(m.assigned)
		dm.TargetAssignment = toKmsg(cg.target[id])
		dm.MemberType = 1 // a consumer-protocol member
		dg.Members = append(dg.Members, dm)
	}
}
