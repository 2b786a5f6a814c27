package server

import (
	"reflect"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/acl"
)

// Authorization of the group APIs, classic, consumer (KIP-848) and share
// (KIP-932), as KafkaApis and Kafka 4.2's share handlers check them: READ
// on the group to take part in it or commit, DESCRIBE to look at it,
// DELETE to remove it or its offsets, and READ (commits) or DESCRIBE
// (offset fetches, subscriptions) on the topics named.

// groupOps are the operations Kafka supports on a group (KIP-430).
var groupOps = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete}

func init() {
	authzRegister(kmsg.FindCoordinator, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.FindCoordinatorRequest)
		code := func(key string) int16 {
			switch req.CoordinatorType {
			case 0:
				if !s.allowed(r, acl.OpDescribe, acl.ResourceGroup, key) {
					return groupAuthFailed
				}
			case 1:
				if !s.allowed(r, acl.OpDescribe, acl.ResourceTransactionalID, key) {
					return txnIDAuthFailed
				}
			default: // share-state coordinators are for brokers
				if !s.allowedCluster(r, acl.OpClusterAction) {
					return clusterAuthFailed
				}
			}
			return 0
		}
		if req.Version < 4 {
			if c := code(req.CoordinatorKey); c != 0 {
				return topLevelError(r, c)
			}
			return nil, nil
		}
		return nil, splitElems(r, "CoordinatorKeys", "Coordinators", func(e reflect.Value) int16 { return code(e.String()) })
	})
	for _, key := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.LeaveGroup} {
		authzRegister(key, groupRule("Group", acl.OpRead, nil))
	}
	authzRegister(kmsg.OffsetCommit, groupRule("Group", acl.OpRead, topicsRule(acl.OpRead)))
	authzRegister(kmsg.OffsetDelete, groupRule("Group", acl.OpDelete, topicsRule(acl.OpRead)))
	authzRegister(kmsg.OffsetFetch, authorizeOffsetFetch)
	authzRegister(kmsg.DescribeGroups, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.DescribeGroupsRequest)
		denied := splitElems(r, "Groups", "Groups", s.groupCode(r, acl.OpDescribe))
		return nil, then(denied, func(resp kmsg.Response) {
			for i := range resp.(*kmsg.DescribeGroupsResponse).Groups {
				g := &resp.(*kmsg.DescribeGroupsResponse).Groups[i]
				if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
					g.AuthorizedOperations = s.authorizedOps(r, acl.ResourceGroup, g.Group, groupOps)
				}
			}
		})
	})
	authzRegister(kmsg.ListGroups, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if s.allowedCluster(r, acl.OpDescribe) {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			lr := resp.(*kmsg.ListGroupsResponse)
			kept := lr.Groups[:0]
			for _, g := range lr.Groups {
				if s.allowed(r, acl.OpDescribe, acl.ResourceGroup, g.Group) {
					kept = append(kept, g)
				}
			}
			lr.Groups = kept
		}
	})
	authzRegister(kmsg.DeleteGroups, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		return nil, splitElems(r, "Groups", "Groups", s.groupCode(r, acl.OpDelete))
	})
	authzRegister(kmsg.ConsumerGroupHeartbeat, groupRule("Group", acl.OpRead, subscriptionRule("SubscribedTopicNames")))
	authzRegister(kmsg.ConsumerGroupDescribe, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.ConsumerGroupDescribeRequest)
		return nil, func(resp kmsg.Response) {
			for i := range resp.(*kmsg.ConsumerGroupDescribeResponse).Groups {
				g := &resp.(*kmsg.ConsumerGroupDescribeResponse).Groups[i]
				if !s.allowed(r, acl.OpDescribe, acl.ResourceGroup, g.Group) {
					*g = kmsg.NewConsumerGroupDescribeResponseGroup()
					g.Group, g.ErrorCode = req.Groups[i], groupAuthFailed
				} else if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
					g.AuthorizedOperations = s.authorizedOps(r, acl.ResourceGroup, g.Group, groupOps)
				}
			}
		}
	})

	// Streams groups (KIP-1071, Kafka 4.2): READ on the group, and
	// DESCRIBE on every topic the topology names.
	authzRegister(kmsg.StreamsGroupHeartbeat, groupRule("Group", acl.OpRead, authorizeStreamsTopology))
	authzRegister(kmsg.StreamsGroupDescribe, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.StreamsGroupDescribeRequest)
		return nil, func(resp kmsg.Response) {
			for i := range resp.(*kmsg.StreamsGroupDescribeResponse).Groups {
				g := &resp.(*kmsg.StreamsGroupDescribeResponse).Groups[i]
				if !s.allowed(r, acl.OpDescribe, acl.ResourceGroup, g.Group) {
					*g = kmsg.NewStreamsGroupDescribeResponseGroup()
					g.Group, g.ErrorCode = req.Groups[i], groupAuthFailed
				} else if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
					g.AuthorizedOperations = s.authorizedOps(r, acl.ResourceGroup, g.Group, groupOps)
				}
			}
		}
	})

	// Share groups (Kafka 4.2).
	authzRegister(kmsg.ShareGroupHeartbeat, groupRule("GroupID", acl.OpRead, subscriptionRule("SubscribedTopicNames")))
	authzRegister(kmsg.ShareGroupDescribe, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.ShareGroupDescribeRequest)
		return nil, func(resp kmsg.Response) {
			for i := range resp.(*kmsg.ShareGroupDescribeResponse).Groups {
				g := &resp.(*kmsg.ShareGroupDescribeResponse).Groups[i]
				if !s.allowed(r, acl.OpDescribe, acl.ResourceGroup, g.GroupID) {
					*g = kmsg.NewShareGroupDescribeResponseGroup()
					g.GroupID, g.ErrorCode = req.GroupIDs[i], groupAuthFailed
				} else if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
					g.AuthorizedOperations = s.authorizedOps(r, acl.ResourceGroup, g.GroupID, groupOps)
				}
			}
		}
	})
	readTopics := topicsRule(acl.OpRead)
	authzRegister(kmsg.ShareFetch, groupRule("GroupID", acl.OpRead, readTopics))
	authzRegister(kmsg.ShareAcknowledge, groupRule("GroupID", acl.OpRead, readTopics))
	authzRegister(kmsg.AlterShareGroupOffsets, groupRule("GroupID", acl.OpRead, readTopics))
	authzRegister(kmsg.DeleteShareGroupOffsets, groupRule("GroupID", acl.OpDelete, readTopics))
	authzRegister(kmsg.DescribeShareGroupOffsets, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		// A group denied answers at the group level, without its topics.
		req := r.kreq.(*kmsg.DescribeShareGroupOffsetsRequest)
		var denied []kmsg.DescribeShareGroupOffsetsResponseGroup
		kept := req.Groups[:0]
		for _, g := range req.Groups {
			if s.allowed(r, acl.OpDescribe, acl.ResourceGroup, g.GroupID) {
				kept = append(kept, g)
				continue
			}
			rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			rg.GroupID, rg.ErrorCode = g.GroupID, groupAuthFailed
			denied = append(denied, rg)
		}
		req.Groups = kept
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			dr := resp.(*kmsg.DescribeShareGroupOffsetsResponse)
			dr.Groups = append(dr.Groups, denied...)
		}
	})
}

// groupCode gives GROUP_AUTHORIZATION_FAILED to a group (a string
// element) the principal may not do op on.
func (s *Server) groupCode(r *request, op acl.Operation) func(reflect.Value) int16 {
	return func(e reflect.Value) int16 {
		if !s.allowed(r, op, acl.ResourceGroup, e.String()) {
			return groupAuthFailed
		}
		return 0
	}
}

// groupRule is a rule for APIs about the one group in their field: op
// on it, or GROUP_AUTHORIZATION_FAILED at the top level; then more (if
// any) narrows the request.
func groupRule(field string, op acl.Operation, more authzRule) authzRule {
	return func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		f := reflect.ValueOf(r.kreq).Elem().FieldByName(field)
		group := ""
		if f.Kind() == reflect.Pointer {
			if !f.IsNil() {
				group = f.Elem().String()
			}
		} else {
			group = f.String()
		}
		if !s.allowed(r, op, acl.ResourceGroup, group) {
			if _, ok := r.kreq.(*kmsg.OffsetCommitRequest); ok {
				return denyAll(r, groupAuthFailed) // every partition answers it
			}
			return topLevelError(r, groupAuthFailed)
		}
		if more == nil {
			return nil, nil
		}
		return more(s, r)
	}
}

// subscriptionRule refuses a heartbeat subscribing to a topic the
// principal may not DESCRIBE, with TOPIC_AUTHORIZATION_FAILED.
func subscriptionRule(field string) authzRule {
	return func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		names := reflect.ValueOf(r.kreq).Elem().FieldByName(field)
		for i := 0; i < names.Len(); i++ {
			if !s.allowed(r, acl.OpDescribe, acl.ResourceTopic, names.Index(i).String()) {
				return topLevelError(r, topicAuthFailed)
			}
		}
		return nil, nil
	}
}

// authorizeStreamsTopology refuses a streams heartbeat whose topology
// names a topic (source, repartition or changelog) the principal may not
// DESCRIBE, with TOPIC_AUTHORIZATION_FAILED, as
// KafkaApis.handleStreamsGroupHeartbeat does before the coordinator sees
// it.
func authorizeStreamsTopology(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
	t := r.kreq.(*kmsg.StreamsGroupHeartbeatRequest).Topology
	if t == nil {
		return nil, nil
	}
	for _, st := range t.Subtopologies {
		names := append(slices.Clone(st.SourceTopics), st.RepartitionSinkTopics...)
		for _, ti := range st.RepartitionSourceTopics {
			names = append(names, ti.Topic)
		}
		for _, ti := range st.StateChangelogTopics {
			names = append(names, ti.Topic)
		}
		for _, name := range names {
			if !s.allowed(r, acl.OpDescribe, acl.ResourceTopic, name) {
				return topLevelError(r, topicAuthFailed)
			}
		}
	}
	return nil, nil
}

// authorizeOffsetFetch checks DESCRIBE on each group and on each topic:
// a group denied answers GROUP_AUTHORIZATION_FAILED; a topic named and
// denied answers TOPIC_AUTHORIZATION_FAILED; with all topics asked for,
// the denied ones are left out (KafkaApis.handleOffsetFetchRequest).
func authorizeOffsetFetch(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	if req.Version < 8 {
		if !s.allowed(r, acl.OpDescribe, acl.ResourceGroup, req.Group) {
			return topLevelError(r, groupAuthFailed)
		}
	}
	// A group denied answers at the group level, without its topics.
	var denied []kmsg.OffsetFetchResponseGroup
	kept := req.Groups[:0]
	for _, g := range req.Groups {
		if s.allowed(r, acl.OpDescribe, acl.ResourceGroup, g.Group) {
			kept = append(kept, g)
			continue
		}
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group, rg.ErrorCode = g.Group, groupAuthFailed
		denied = append(denied, rg)
	}
	req.Groups = kept
	var deniedGroups func(kmsg.Response)
	if len(denied) > 0 {
		deniedGroups = func(resp kmsg.Response) {
			or := resp.(*kmsg.OffsetFetchResponse)
			or.Groups = append(or.Groups, denied...)
		}
	}
	return nil, then(deniedGroups, func(resp kmsg.Response) {
		or := resp.(*kmsg.OffsetFetchResponse)
		or.Topics = filterOffsetTopics(s, r, or.Topics, req.Topics == nil, func(t kmsg.OffsetFetchResponseTopic) string { return t.Topic },
			func(t *kmsg.OffsetFetchResponseTopic) {
				for i := range t.Partitions {
					t.Partitions[i].ErrorCode, t.Partitions[i].Offset, t.Partitions[i].Metadata = topicAuthFailed, -1, nil
				}
			})
		for gi := range or.Groups {
			g := &or.Groups[gi]
			all := true
			for _, rg := range req.Groups {
				if rg.Group == g.Group {
					all = rg.Topics == nil
				}
			}
			g.Topics = filterOffsetTopics(s, r, g.Topics, all, func(t kmsg.OffsetFetchResponseGroupTopic) string {
				if t.Topic == "" {
					if tp, ok := s.meta.topicByID(t.TopicID); ok {
						return tp.Name
					}
				}
				return t.Topic
			}, func(t *kmsg.OffsetFetchResponseGroupTopic) {
				for i := range t.Partitions {
					t.Partitions[i].ErrorCode, t.Partitions[i].Offset, t.Partitions[i].Metadata = topicAuthFailed, -1, nil
				}
			})
		}
	})
}

// filterOffsetTopics drops (all topics asked for) or marks denied (named)
// the topics the principal may not DESCRIBE.
func filterOffsetTopics[T any](s *Server, r *request, ts []T, all bool, name func(T) string, deny func(*T)) []T {
	kept := ts[:0]
	for _, t := range ts {
		if n := name(t); n == "" || s.allowed(r, acl.OpDescribe, acl.ResourceTopic, n) {
			kept = append(kept, t)
		} else if !all {
			deny(&t)
			kept = append(kept, t)
		}
	}
	return kept
}
