package server

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/acl"
)

// Authorization of the admin APIs (KafkaApis, ControllerApis, AclApis):
// topics need CREATE (or CREATE on the cluster), DELETE or ALTER on
// themselves; configs DESCRIBE_CONFIGS or ALTER_CONFIGS on their
// resource; quotas, SCRAM credentials, features, log dirs, elections,
// reassignments and the quorum their operation on the cluster.
func init() {
	authzRegister(kmsg.CreateTopics, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		var denied func(kmsg.Response)
		if !s.allowedCluster(r, acl.OpCreate) {
			denied = s.topicRule(r, "Topics", acl.OpCreate)
		}
		// A topic created (v5+ returns its configs) by a principal
		// without DESCRIBE_CONFIGS on it comes back without its configs
		// and with partitions and replication factor -1, its config
		// error TOPIC_AUTHORIZATION_FAILED.
		return nil, then(denied, func(resp kmsg.Response) {
			cr := resp.(*kmsg.CreateTopicsResponse)
			if cr.Version < 5 {
				return
			}
			for i := range cr.Topics {
				t := &cr.Topics[i]
				if t.ErrorCode == 0 && !s.allowed(r, acl.OpDescribeConfigs, acl.ResourceTopic, t.Topic) {
					t.ConfigErrorCode, t.Configs = topicAuthFailed, nil
					t.NumPartitions, t.ReplicationFactor = -1, -1
				}
			}
		})
	})
	authzRegister(kmsg.DeleteTopics, authorizeDeleteTopics)
	authzRegister(kmsg.CreatePartitions, topicsRule(acl.OpAlter))
	authzRegister(kmsg.DescribeConfigs, configsRule(acl.OpDescribeConfigs))
	authzRegister(kmsg.AlterConfigs, configsRule(acl.OpAlterConfigs))
	authzRegister(kmsg.IncrementalAlterConfigs, configsRule(acl.OpAlterConfigs))
	authzRegister(kmsg.DescribeClientQuotas, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if !s.allowedCluster(r, acl.OpDescribeConfigs) {
			return topLevelError(r, clusterAuthFailed)
		}
		return nil, nil
	})
	authzRegister(kmsg.AlterClientQuotas, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if s.allowedCluster(r, acl.OpAlterConfigs) {
			return nil, nil
		}
		req := r.kreq.(*kmsg.AlterClientQuotasRequest)
		resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
		for _, e := range req.Entries {
			re := kmsg.NewAlterClientQuotasResponseEntry()
			re.ErrorCode = clusterAuthFailed
			for _, p := range e.Entity {
				ep := kmsg.NewAlterClientQuotasResponseEntryEntity()
				ep.Type, ep.Name = p.Type, p.Name
				re.Entity = append(re.Entity, ep)
			}
			resp.Entries = append(resp.Entries, re)
		}
		return resp, nil
	})
	authzRegister(kmsg.DescribeUserSCRAMCredentials, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if s.allowedCluster(r, acl.OpDescribe) {
			return nil, nil
		}
		// The top level and a result per user named answer the refusal;
		// Kafka leaves the results' user names empty.
		resp, _ := topLevelError(r, clusterAuthFailed)
		dr := resp.(*kmsg.DescribeUserSCRAMCredentialsResponse)
		for range r.kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest).Users {
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.ErrorCode = clusterAuthFailed
			dr.Results = append(dr.Results, res)
		}
		return resp, nil
	})
	authzRegister(kmsg.AlterUserSCRAMCredentials, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if s.allowedCluster(r, acl.OpAlter) {
			return nil, nil
		}
		req := r.kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
		resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
		seen := map[string]bool{}
		add := func(user string) {
			if !seen[user] {
				seen[user] = true
				res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				res.User, res.ErrorCode = user, clusterAuthFailed
				resp.Results = append(resp.Results, res)
			}
		}
		for _, d := range req.Deletions {
			add(d.Name)
		}
		for _, u := range req.Upsertions {
			add(u.Name)
		}
		return resp, nil
	})
	authzRegister(kmsg.UpdateFeatures, clusterTopLevelRule(acl.OpAlter))
	authzRegister(kmsg.DescribeLogDirs, clusterTopLevelRule(acl.OpDescribe))
	authzRegister(kmsg.ElectLeaders, clusterEverywhereRule(acl.OpAlter))
	authzRegister(kmsg.AlterPartitionAssignments, clusterEverywhereRule(acl.OpAlter))
	authzRegister(kmsg.ListPartitionReassignments, clusterTopLevelRule(acl.OpDescribe))
	authzRegister(kmsg.DescribeQuorum, clusterTopLevelRule(acl.OpDescribe))
}

// clusterTopLevelRule is a rule for APIs needing op on the cluster that
// answer a refusal in their top-level ErrorCode.
func clusterTopLevelRule(op acl.Operation) authzRule {
	return func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if !s.allowedCluster(r, op) {
			return topLevelError(r, clusterAuthFailed)
		}
		return nil, nil
	}
}

// clusterEverywhereRule is a rule for APIs needing op on the cluster
// whose refusal Kafka puts both in the top-level ErrorCode and on each
// partition named.
func clusterEverywhereRule(op acl.Operation) authzRule {
	return func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if s.allowedCluster(r, op) {
			return nil, nil
		}
		resp := errorResponse(r.kreq, r.version, clusterAuthFailed)
		reflect.ValueOf(resp).Elem().FieldByName("ErrorCode").SetInt(int64(clusterAuthFailed))
		return resp, nil
	}
}

// Config resource types (DescribeConfigs and friends).
const (
	configTopic         = 2
	configBroker        = 4
	configBrokerLogger  = 8
	configClientMetrics = 16
	configGroup         = 32
)

// configsRule checks op on each config resource: a topic on itself, a
// group on itself, the broker, its loggers and client metrics on the
// cluster.
func configsRule(op acl.Operation) authzRule {
	return func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		return nil, splitElems(r, "Resources", "Resources", func(e reflect.Value) int16 {
			name := e.FieldByName("ResourceName").String()
			switch e.FieldByName("ResourceType").Int() {
			case configTopic:
				if !s.allowed(r, op, acl.ResourceTopic, name) {
					return topicAuthFailed
				}
			case configGroup:
				if !s.allowed(r, op, acl.ResourceGroup, name) {
					return groupAuthFailed
				}
			case configBroker, configBrokerLogger, configClientMetrics:
				if !s.allowedCluster(r, op) {
					return clusterAuthFailed
				}
			}
			return 0
		})
	}
}

// authorizeDeleteTopics checks DELETE on each topic, named (v0-5's
// TopicNames, v6's Topics) or by id.
func authorizeDeleteTopics(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	var denied []kmsg.DeleteTopicsResponseTopic
	names := req.TopicNames[:0]
	for _, n := range req.TopicNames {
		if s.allowed(r, acl.OpDelete, acl.ResourceTopic, n) {
			names = append(names, n)
			continue
		}
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.ErrorCode = kmsg.StringPtr(n), topicAuthFailed
		denied = append(denied, t)
	}
	req.TopicNames = names
	topics := req.Topics[:0]
	for _, rt := range req.Topics {
		name := s.elemTopic(reflect.ValueOf(rt))
		if name == "" || s.allowed(r, acl.OpDelete, acl.ResourceTopic, name) {
			topics = append(topics, rt)
			continue
		}
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID, t.ErrorCode = rt.Topic, rt.TopicID, topicAuthFailed
		denied = append(denied, t)
	}
	req.Topics = topics
	if len(denied) == 0 {
		return nil, nil
	}
	return nil, func(resp kmsg.Response) {
		dr := resp.(*kmsg.DeleteTopicsResponse)
		dr.Topics = append(dr.Topics, denied...)
	}
}
