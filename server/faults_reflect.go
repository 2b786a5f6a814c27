package server

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fault injection needs, for any API, the topics, partitions and groups a
// request names, and a well-formed error response of the request's version.
// kmsg requests and responses share a shape (Topics[].Partitions[] with
// Topic, TopicID and Partition fields; Groups; a top-level ErrorCode), so
// both are done by walking the structs instead of one function per API.
// This runs only for servers with fault injection on.

type topicPartition struct {
	topic     string
	partition int32
}

// requestNames is what a request names, for matching fault rules.
type requestNames struct {
	topics     []string
	partitions []topicPartition
	groups     []string
}

func (s *Server) requestNames(req kmsg.Request) *requestNames {
	n := &requestNames{}
	if fc, ok := req.(*kmsg.FindCoordinatorRequest); ok {
		// Only group coordinators name groups; transactional ids are not.
		if fc.CoordinatorType == 0 {
			if fc.CoordinatorKey != "" {
				n.groups = append(n.groups, fc.CoordinatorKey)
			}
			n.groups = append(n.groups, fc.CoordinatorKeys...)
		}
		return n
	}
	s.walkNames(reflect.ValueOf(req).Elem(), "", n)
	return n
}

var topicIDType = reflect.TypeOf([16]byte{})

func (s *Server) walkNames(v reflect.Value, topic string, n *requestNames) {
	t := v.Type()
	// Names first: a topic's partitions come after its name in kmsg
	// structs, but read it before descending either way.
	for i := 0; i < t.NumField(); i++ {
		f, name := v.Field(i), t.Field(i).Name
		switch {
		case (name == "Topic" || name == "Name") && f.Kind() == reflect.String && t.Name() != "" && isTopicStruct(t):
			topic = f.String()
		case name == "Topic" && f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.String:
			topic = f.Elem().String()
		case name == "TopicID" && f.Type() == topicIDType && topic == "":
			id := f.Interface().([16]byte)
			if id != ([16]byte{}) {
				if tp, ok := s.meta.topicByID(id); ok {
					topic = tp.Name
				}
			}
		case (name == "Group" || name == "GroupID") && f.Kind() == reflect.String && f.String() != "":
			n.groups = append(n.groups, f.String())
		}
	}
	if topic != "" {
		n.topics = appendNew(n.topics, topic)
	}
	for i := 0; i < t.NumField(); i++ {
		f, name := v.Field(i), t.Field(i).Name
		switch {
		case name == "Partition" && f.Kind() == reflect.Int32:
			n.partitions = append(n.partitions, topicPartition{topic, int32(f.Int())})
		case f.Kind() == reflect.Struct:
			s.walkNames(f, topic, n)
		case f.Kind() == reflect.Slice:
			switch et := f.Type().Elem(); {
			case et.Kind() == reflect.Struct:
				for j := 0; j < f.Len(); j++ {
					s.walkNames(f.Index(j), topic, n)
				}
			case et.Kind() == reflect.Int32 && name == "Partitions":
				for j := 0; j < f.Len(); j++ {
					n.partitions = append(n.partitions, topicPartition{topic, int32(f.Index(j).Int())})
				}
			case et.Kind() == reflect.String && (name == "Topics" || name == "TopicNames"):
				for j := 0; j < f.Len(); j++ {
					n.topics = appendNew(n.topics, f.Index(j).String())
				}
			case et.Kind() == reflect.String && name == "Groups":
				n.groups = append(n.groups, stringsOf(f)...)
			}
		}
	}
}

// isTopicStruct reports whether a struct's Name field is a topic name
// (CreateTopics names its topics "Topic"; some newer structs "Name").
func isTopicStruct(t reflect.Type) bool {
	_, hasPartitions := t.FieldByName("Partitions")
	_, hasTopic := t.FieldByName("Topic")
	return hasPartitions || hasTopic
}

func stringsOf(v reflect.Value) []string {
	out := make([]string, v.Len())
	for i := range out {
		out[i] = v.Index(i).String()
	}
	return out
}

func appendNew(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// errorResponse builds req's response at version, carrying code on every
// innermost element that mirrors what the request named (each partition
// of each topic, each group), or at the top level when it names none.
func errorResponse(req kmsg.Request, version int16, code int16) kmsg.Response {
	resp := req.ResponseKind()
	resp.SetVersion(version)
	fillError(reflect.ValueOf(resp).Elem(), reflect.ValueOf(req).Elem(), code)
	return resp
}

// responseSliceSources names the request slice a response slice mirrors
// when the names differ.
var responseSliceSources = map[string]string{
	"Coordinators": "CoordinatorKeys", // FindCoordinator v4+
}

// keyFields are the fields copied from a request element into the
// response element that answers it: what identifies the element.
var keyFields = map[string]bool{
	"Topic": true, "TopicID": true, "Name": true, "Partition": true, "Group": true, "Key": true,
	"TransactionalID": true, "MemberID": true, "GroupInstanceID": true,
	"ResourceType": true, "ResourceName": true,
}

// fillError fills dst (a response struct) from src (the request struct it
// answers, or invalid when the request element was a scalar): elements
// mirrored, codes set on the innermost ones.
func fillError(dst, src reflect.Value, code int16) {
	t := dst.Type()
	filled := false
	for i := 0; i < t.NumField(); i++ {
		df, name := dst.Field(i), t.Field(i).Name
		if df.Kind() != reflect.Slice || df.Type().Elem().Kind() != reflect.Struct || !src.IsValid() {
			continue
		}
		srcName := name
		if alt, ok := responseSliceSources[name]; ok {
			srcName = alt
		}
		sf := src.FieldByName(srcName)
		if !sf.IsValid() || sf.Kind() != reflect.Slice || sf.Len() == 0 {
			continue
		}
		out := reflect.MakeSlice(df.Type(), sf.Len(), sf.Len())
		for j := 0; j < sf.Len(); j++ {
			e, se := out.Index(j), sf.Index(j)
			if d, ok := e.Addr().Interface().(interface{ Default() }); ok {
				d.Default()
			}
			if se.Kind() == reflect.Struct {
				copyKeys(e, se)
				fillError(e, se, code)
			} else {
				setKeyFromScalar(e, se)
				fillError(e, reflect.Value{}, code)
			}
		}
		df.Set(out)
		filled = true
	}
	if filled {
		return
	}
	if f := dst.FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 {
		f.SetInt(int64(code))
	}
	for _, name := range []string{"BaseOffset", "Offset", "HighWatermark"} {
		if f := dst.FieldByName(name); f.IsValid() && f.Kind() == reflect.Int64 {
			f.SetInt(-1)
		}
	}
}

func copyKeys(dst, src reflect.Value) {
	t := dst.Type()
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Name
		if !keyFields[name] {
			continue
		}
		sf := src.FieldByName(name)
		if sf.IsValid() && sf.Type().AssignableTo(dst.Field(i).Type()) {
			dst.Field(i).Set(sf)
		}
	}
}

// setKeyFromScalar sets the key field of dst from a request element that
// was a bare name or number (DescribeGroups' group names, OffsetFetch's
// partition numbers, FindCoordinator's keys).
func setKeyFromScalar(dst, v reflect.Value) {
	t := dst.Type()
	for i := 0; i < t.NumField(); i++ {
		if !keyFields[t.Field(i).Name] {
			continue
		}
		f := dst.Field(i)
		switch {
		case f.Kind() == v.Kind():
			f.Set(v)
			return
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == v.Kind():
			p := reflect.New(f.Type().Elem())
			p.Elem().Set(v)
			f.Set(p)
			return
		}
	}
}
