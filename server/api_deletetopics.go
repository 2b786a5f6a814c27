package server

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DeleteTopics, 1, 6, (*Server).handleDeleteTopics) }

func (s *Server) handleDeleteTopics(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)

	// v0-v5 name topics in TopicNames; v6 in Topics, by name or id.
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version < 6 {
		for i := range req.TopicNames {
			targets = append(targets, target{name: &req.TopicNames[i]})
		}
	} else {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	}
	quota := s.mutationQuotaFor(r, deleteTopicsStrictQuota)
	defer quota.done(r)
	for _, t := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = t.name, t.id
		name := ""
		switch {
		case t.name != nil && *t.name != "":
			name = *t.name
			if v, ok := s.meta.view(name); ok {
				st.TopicID = v.id
			} else {
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
		case t.id != [16]byte{}:
			if tp, ok := s.meta.topicByID(t.id); ok {
				name = tp.Name
				st.Topic = kmsg.StringPtr(name)
			} else {
				st.ErrorCode = kerr.UnknownTopicID.Code
			}
		default:
			st.ErrorCode = kerr.InvalidRequest.Code
		}
		if st.ErrorCode == 0 && s.cfg.Settings["delete.topic.enable"] == "false" {
			st.ErrorCode = kerr.TopicDeletionDisabled.Code
		}
		if st.ErrorCode == 0 && isInternalTopic(name) {
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Topic %s is an internal topic and cannot be deleted", name))
		}
		if st.ErrorCode == 0 {
			if v, ok := s.meta.view(name); ok && !quota.record(v.partitions) {
				st.ErrorCode = kerr.ThrottlingQuotaExceeded.Code
				st.ErrorMessage = kmsg.StringPtr(kerr.ThrottlingQuotaExceeded.Description)
			}
		}
		if st.ErrorCode == 0 {
			err := s.meta.deleteTopic(name)
			if err == nil {
				s.groups.TopicsDeleted([]string{name})
			}
			if err == errUnknownTopic {
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if err != nil {
				s.log.Error().Err(err).Str("topic", name).Msg("deleting topic")
				st.ErrorCode = kerr.UnknownServerError.Code
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
