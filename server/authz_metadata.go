package server

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/acl"
)

// Authorization of Metadata, DescribeTopicPartitions and DescribeCluster
// (KafkaApis.handleTopicMetadataRequest and friends): a topic asked for
// by name or id that the principal may not DESCRIBE answers
// TOPIC_AUTHORIZATION_FAILED, and one it may describe but that does not
// exist is auto-created only with CREATE on the cluster or the topic
// (else TOPIC_AUTHORIZATION_FAILED); when all topics are asked for, the
// ones it may not describe are left out. The KIP-430 authorized
// operations are the principal's.
func init() {
	authzRegister(kmsg.Metadata, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.MetadataRequest)
		all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
		var denied func(kmsg.Response)
		if !all {
			autoCreate := (req.Version < 4 || req.AllowAutoTopicCreation) && s.cfg.autoCreateTopics
			createAny := autoCreate && s.allowedCluster(r, acl.OpCreate)
			denied = splitElems(r, "Topics", "Topics", func(e reflect.Value) int16 {
				name := s.elemTopic(e)
				switch {
				case name == "":
					return 0 // unknown id or invalid name: the handler answers
				case !s.allowed(r, acl.OpDescribe, acl.ResourceTopic, name):
					return topicAuthFailed
				}
				if _, exists := s.meta.Topic(name); !exists && autoCreate && !createAny &&
					!s.allowed(r, acl.OpCreate, acl.ResourceTopic, name) {
					return topicAuthFailed
				}
				return 0
			})
		}
		return nil, then(denied, func(resp kmsg.Response) {
			mr := resp.(*kmsg.MetadataResponse)
			if all {
				kept := mr.Topics[:0]
				for _, t := range mr.Topics {
					if t.Topic == nil || s.allowed(r, acl.OpDescribe, acl.ResourceTopic, *t.Topic) {
						kept = append(kept, t)
					}
				}
				mr.Topics = kept
			}
			if req.IncludeTopicAuthorizedOperations {
				for i := range mr.Topics {
					if t := &mr.Topics[i]; t.ErrorCode == 0 && t.Topic != nil {
						t.AuthorizedOperations = s.authorizedOps(r, acl.ResourceTopic, *t.Topic, topicOperations)
					}
				}
			}
			if req.IncludeClusterAuthorizedOperations {
				mr.AuthorizedOperations = s.authorizedOps(r, acl.ResourceCluster, acl.ClusterName, clusterOperations)
			}
		})
	})
	authzRegister(kmsg.DescribeTopicPartitions, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		req := r.kreq.(*kmsg.DescribeTopicPartitionsRequest)
		all := len(req.Topics) == 0
		var deniedTopics []kmsg.DescribeTopicPartitionsResponseTopic
		kept := req.Topics[:0]
		for _, rt := range req.Topics {
			if s.allowed(r, acl.OpDescribe, acl.ResourceTopic, rt.Topic) {
				kept = append(kept, rt)
				continue
			}
			mt := kmsg.NewDescribeTopicPartitionsResponseTopic()
			mt.Topic, mt.ErrorCode = kmsg.StringPtr(rt.Topic), topicAuthFailed
			deniedTopics = append(deniedTopics, mt)
		}
		req.Topics = kept
		denied := func(resp kmsg.Response) {
			dr := resp.(*kmsg.DescribeTopicPartitionsResponse)
			dr.Topics = append(dr.Topics, deniedTopics...)
		}
		if !all && len(req.Topics) == 0 {
			// Every topic named was denied: the handler must not take
			// the empty list for "all topics".
			resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
			resp.SetVersion(r.version)
			denied(resp)
			return resp, nil
		}
		return nil, then(denied, func(resp kmsg.Response) {
			dr := resp.(*kmsg.DescribeTopicPartitionsResponse)
			kept := dr.Topics[:0]
			for _, t := range dr.Topics {
				if t.ErrorCode == topicAuthFailed {
					kept = append(kept, t)
					continue
				}
				if t.Topic == nil || s.allowed(r, acl.OpDescribe, acl.ResourceTopic, *t.Topic) {
					if t.Topic != nil {
						t.AuthorizedOperations = s.authorizedOps(r, acl.ResourceTopic, *t.Topic, topicOperations)
					}
					kept = append(kept, t)
				}
			}
			dr.Topics = kept
		})
	})
	// DescribeCluster checks nothing; only its authorized operations are
	// the principal's.
	authzRegister(kmsg.DescribeCluster, func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if !r.kreq.(*kmsg.DescribeClusterRequest).IncludeClusterAuthorizedOperations {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			if dr := resp.(*kmsg.DescribeClusterResponse); dr.ErrorCode == 0 {
				dr.ClusterAuthorizedOperations = s.authorizedOps(r, acl.ResourceCluster, acl.ClusterName, clusterOperations)
			}
		}
	})
}
