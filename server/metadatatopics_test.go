package server

import (
	"bytes"
	"testing"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataBody encodes req as the bytes after a request header's fixed
// part: the header's empty tag section (flexible versions), then the body.
func metadataBody(req *kmsg.MetadataRequest) []byte {
	var b []byte
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

func TestCollapseMetadataTopicsAnswersEachTopicOnce(t *testing.T) {
	name := func(s string) *string { return &s }
	for _, v := range []int16{1, 4, 8, 9, 10, 12, 13} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		req.AllowAutoTopicCreation = true
		req.IncludeTopicAuthorizedOperations = v >= 8
		var want []string
		for _, n := range []string{"a", "", "b", "a", "", "", "c", "b"} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = name(n)
			req.Topics = append(req.Topics, rt)
		}
		want = []string{"a", "", "b", "c"}
		if v >= 12 {
			for _, id := range [][16]byte{{1}, {2}, {1}} {
				rt := kmsg.NewMetadataRequestTopic()
				rt.TopicID = id
				req.Topics = append(req.Topics, rt)
			}
		}
		out := collapseMetadataTopics(v, metadataBody(req))
		got := kmsg.NewPtrMetadataRequest()
		got.Version = v
		rest := out
		if got.IsFlexible() {
			rest = out[1:]
		}
		if err := got.ReadFrom(rest); err != nil {
			t.Fatalf("v%d: collapsed request does not decode: %v", v, err)
		}
		var names []string
		var ids [][16]byte
		for _, rt := range got.Topics {
			if rt.Topic != nil {
				names = append(names, *rt.Topic)
			} else {
				ids = append(ids, rt.TopicID)
			}
		}
		if len(names) != len(want) {
			t.Fatalf("v%d: collapsed to names %q, want %q", v, names, want)
		}
		for i := range want {
			if names[i] != want[i] {
				t.Fatalf("v%d: collapsed to names %q, want %q", v, names, want)
			}
		}
		if v >= 12 && len(ids) != 2 {
			t.Fatalf("v%d: collapsed to ids %v, want two", v, ids)
		}
		if v >= 4 && got.AllowAutoTopicCreation != req.AllowAutoTopicCreation || got.IncludeTopicAuthorizedOperations != req.IncludeTopicAuthorizedOperations {
			t.Fatalf("v%d: fields after the topics changed", v)
		}
	}
}

func TestCollapseMetadataTopicsLeavesOtherBodiesAlone(t *testing.T) {
	distinct := kmsg.NewPtrMetadataRequest()
	distinct.Version = 9
	for _, n := range []string{"a", "b"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = &n
		distinct.Topics = append(distinct.Topics, rt)
	}
	all := kmsg.NewPtrMetadataRequest()
	all.Version = 9
	for _, c := range []struct {
		name string
		v    int16
		body []byte
	}{
		{"distinct topics", 9, metadataBody(distinct)},
		{"all topics", 9, metadataBody(all)},
		{"truncated", 9, metadataBody(distinct)[:5]},
		{"count beyond the body", 4, []byte{0, 0, 0, 9, 0, 0}},
		{"empty", 4, nil},
	} {
		if out := collapseMetadataTopics(c.v, c.body); !bytes.Equal(out, c.body) {
			t.Fatalf("%s: body rewritten to %x, want it unchanged", c.name, out)
		}
	}
}

// FuzzCollapseMetadataTopics checks on any bytes that collapsing never
// panics, and that a body that decodes still decodes afterwards to the
// same distinct topics in the same order, with the same other fields.
func FuzzCollapseMetadataTopics(f *testing.F) {
	for _, v := range []int16{1, 4, 9, 10, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		for _, n := range []string{"a", "a", "", "b", ""} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = &n
			req.Topics = append(req.Topics, rt)
		}
		f.Add(v, metadataBody(req))
	}
	f.Fuzz(func(t *testing.T, v int16, body []byte) {
		if v < 0 || v > 13 {
			return
		}
		decode := func(b []byte) (*kmsg.MetadataRequest, bool) {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = v
			if req.IsFlexible() {
				var err error
				if b, err = protocol.SkipTags(b); err != nil {
					return nil, false
				}
			}
			return req, req.ReadFrom(b) == nil
		}
		out := collapseMetadataTopics(v, body)
		in, ok := decode(body)
		if !ok {
			return
		}
		got, ok := decode(out)
		if !ok {
			t.Fatalf("v%d: a body that decodes no longer does after collapsing", v)
		}
		var want []kmsg.MetadataRequestTopic
		seen := map[string]bool{}
		for _, rt := range in.Topics {
			k := string(rt.TopicID[:])
			if rt.Topic != nil {
				k += "\x00" + *rt.Topic
			}
			if !seen[k] {
				seen[k] = true
				want = append(want, rt)
			}
		}
		if len(got.Topics) != len(want) {
			t.Fatalf("v%d: %d topics after collapsing, want %d distinct", v, len(got.Topics), len(want))
		}
		for i := range want {
			if got.Topics[i].TopicID != want[i].TopicID || (got.Topics[i].Topic == nil) != (want[i].Topic == nil) ||
				(want[i].Topic != nil && *got.Topics[i].Topic != *want[i].Topic) {
				t.Fatalf("v%d: topic %d differs after collapsing", v, i)
			}
		}
		if got.AllowAutoTopicCreation != in.AllowAutoTopicCreation || got.IncludeTopicAuthorizedOperations != in.IncludeTopicAuthorizedOperations ||
			got.IncludeClusterAuthorizedOperations != in.IncludeClusterAuthorizedOperations {
			t.Fatalf("v%d: fields after the topics changed", v)
		}
	})
}
