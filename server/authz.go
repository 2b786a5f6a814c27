package server

import (
	"errors"
	"fmt"
	"net"
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/acl"
)

// Authorization (KIP-801's StandardAuthorizer semantics, package acl).
//
// It is on when authorizer.class.name names Kafka's StandardAuthorizer;
// off, s.authz is nil and the only cost on any request is that nil check
// in conn.handle. On, every API's rule (authzRules, registered by the
// authz_*.go files by API family, the way handlers register themselves)
// runs before its handler and does what KafkaApis does before it touches
// anything: it answers the whole request with an *_AUTHORIZATION_FAILED
// code, or removes the elements the principal may not touch from the
// request (so the handler never sees them) and adds them back to the
// response with their error code. Handlers stay unaware of ACLs.

// StandardAuthorizerClass is the only authorizer.class.name Skiff accepts:
// Kafka's KRaft authorizer, whose semantics package acl implements.
const StandardAuthorizerClass = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"

func init() {
	securityConfigNames["authorizer.class.name"] = oneOf("", StandardAuthorizerClass)
	securityConfigNames["super.users"] = nil
	securityConfigNames["allow.everyone.if.no.acl.found"] = func(v string) error { return checkType(typeBoolean, v) }
}

// newAuthorizer returns the authorizer the settings configure, or nil.
func newAuthorizer(cfg *Config, meta *cluster) *acl.Authorizer {
	if cfg.Settings["authorizer.class.name"] == "" {
		return nil
	}
	return acl.NewAuthorizer(acl.Config{
		SuperUsers:           cfg.Settings["super.users"],
		AllowEveryoneIfNoACL: cfg.Settings["allow.everyone.if.no.acl.found"] == "true",
	}, meta.ACLs)
}

// authzRule runs before an API's handler when the authorizer is on. It
// returns deny to answer the request without the handler, or an after
// function (or nil) that completes the handler's response with what the
// rule removed from the request.
type authzRule func(s *Server, r *request) (deny kmsg.Response, after func(kmsg.Response))

var authzRules = map[int16]authzRule{}

func authzRegister(key kmsg.Key, rule authzRule) {
	if _, dup := authzRules[int16(key)]; dup {
		panic("server: duplicate authorization rule for " + kmsg.NameForKey(int16(key)))
	}
	authzRules[int16(key)] = rule
}

// authzNone are the APIs Kafka serves without an authorization check.
var authzNone = map[int16]bool{
	int16(kmsg.ApiVersions):      true,
	int16(kmsg.SASLHandshake):    true,
	int16(kmsg.SASLAuthenticate): true,
}

// handleAuthorized runs e's handler under its authorization rule. An API
// with neither a rule nor an authzNone entry is refused wholesale: an
// unreviewed API must not become a way around the ACLs.
func (s *Server) handleAuthorized(e apiEntry, r *request) (kmsg.Response, error) {
	r.who, r.from = r.principal(), r.host()
	rule, ok := authzRules[e.key]
	if !ok {
		if authzNone[e.key] {
			return e.handle(s, r)
		}
		return errorResponse(r.kreq, r.version, clusterAuthFailed), nil
	}
	deny, after := rule(s, r)
	if deny != nil {
		if p, ok := r.kreq.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
			// No response may be sent: Kafka closes the connection of
			// an acks=0 producer whose request failed.
			return nil, errors.New("server: produce with acks=0 refused by the authorizer")
		}
		return deny, nil
	}
	resp, err := e.handle(s, r)
	if err != nil || resp == nil || after == nil {
		return resp, err
	}
	switch w := resp.(type) {
	case *deferredResponse:
		wait := w.wait
		w.wait = func() { wait(); after(innerResponse(w.Response)) }
	default:
		after(innerResponse(resp))
	}
	return resp, nil
}

// innerResponse unwraps the response a handler wrapped.
func innerResponse(resp kmsg.Response) kmsg.Response {
	for {
		switch w := resp.(type) {
		case *heldResponse:
			resp = w.Response
		case *deferredResponse:
			resp = w.Response
		default:
			return resp
		}
	}
}

// principal is who sent r: "User:<name>", User:ANONYMOUS on a listener
// without authentication.
func (r *request) principal() string {
	if r.auth == nil || r.auth.principal == "" {
		return "User:ANONYMOUS"
	}
	return r.auth.principal
}

// host is r's client address as the ACL host field spells it.
func (r *request) host() string {
	switch a := r.remote.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	h, _, err := net.SplitHostPort(r.remote.String())
	if err != nil {
		return r.remote.String()
	}
	return h
}

// allowed reports whether r's principal may do op on the resource. It is
// only called with the authorizer on.
func (s *Server) allowed(r *request, op acl.Operation, typ acl.ResourceType, name string) bool {
	return s.authz.Authorize(r.who, r.from, op, typ, name)
}

func (s *Server) allowedCluster(r *request, op acl.Operation) bool {
	return s.allowed(r, op, acl.ResourceCluster, acl.ClusterName)
}

// The codes rules answer with.
var (
	clusterAuthFailed = int16(31) // CLUSTER_AUTHORIZATION_FAILED
	topicAuthFailed   = int16(29) // TOPIC_AUTHORIZATION_FAILED
	groupAuthFailed   = int16(30) // GROUP_AUTHORIZATION_FAILED
	txnIDAuthFailed   = int16(53) // TRANSACTIONAL_ID_AUTHORIZATION_FAILED
)

// denyAll answers the whole request with code: on every element that
// mirrors one of the request, or at the top level.
func denyAll(r *request, code int16) (kmsg.Response, func(kmsg.Response)) {
	return errorResponse(r.kreq, r.version, code), nil
}

// splitElems removes from the request's slice field the elements code
// gives a non-zero error for, and returns an after function that adds,
// to the response's slice respField, elements answering them with that
// code (built as errorResponse builds them). nil when nothing was
// removed.
func splitElems(r *request, field, respField string, code func(elem reflect.Value) int16) func(kmsg.Response) {
	rv := reflect.ValueOf(r.kreq).Elem()
	f := rv.FieldByName(field)
	if !f.IsValid() || f.Kind() != reflect.Slice {
		panic(fmt.Sprintf("server: %T has no slice %s", r.kreq, field))
	}
	// The common case, nothing denied, allocates nothing.
	first := -1
	for i := 0; i < f.Len() && first < 0; i++ {
		if code(f.Index(i)) != 0 {
			first = i
		}
	}
	if first < 0 {
		return nil
	}
	kept := reflect.MakeSlice(f.Type(), 0, f.Len())
	kept = reflect.AppendSlice(kept, f.Slice(0, first))
	removed := map[int16]reflect.Value{}
	var codes []int16
	for i := first; i < f.Len(); i++ {
		e := f.Index(i)
		c := code(e)
		if c == 0 {
			kept = reflect.Append(kept, e)
			continue
		}
		if _, ok := removed[c]; !ok {
			removed[c] = reflect.MakeSlice(f.Type(), 0, 1)
			codes = append(codes, c)
		}
		removed[c] = reflect.Append(removed[c], e)
	}
	if len(codes) == 0 {
		return nil
	}
	// The denied elements' answers are built from a copy of the request
	// holding only them, before the handler may change the request.
	var answers []reflect.Value
	for _, c := range codes {
		cp := reflect.New(rv.Type())
		cp.Elem().Set(rv)
		cp.Elem().FieldByName(field).Set(removed[c])
		resp := errorResponse(cp.Interface().(kmsg.Request), r.version, c)
		answers = append(answers, reflect.ValueOf(resp).Elem().FieldByName(respField))
	}
	f.Set(kept)
	return func(resp kmsg.Response) {
		out := reflect.ValueOf(resp).Elem().FieldByName(respField)
		for _, a := range answers {
			out.Set(reflect.AppendSlice(out, a))
		}
	}
}

// topLevelError answers the request with code in its top-level
// ErrorCode only, as Kafka's getErrorResponse does for requests about one
// group or the whole cluster.
func topLevelError(r *request, code int16) (kmsg.Response, func(kmsg.Response)) {
	resp := r.kreq.ResponseKind()
	if d, ok := resp.(interface{ Default() }); ok {
		d.Default()
	}
	resp.SetVersion(r.version)
	if f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode"); f.IsValid() {
		f.SetInt(int64(code))
	}
	return resp, nil
}

// then chains after functions, skipping nils.
func then(fs ...func(kmsg.Response)) func(kmsg.Response) {
	var live []func(kmsg.Response)
	for _, f := range fs {
		if f != nil {
			live = append(live, f)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return func(resp kmsg.Response) {
		for _, f := range live {
			f(resp)
		}
	}
}

// elemTopic is the topic an element of a request names: its Topic or
// Name string, else the topic its TopicID stands for ("" if unknown).
func (s *Server) elemTopic(e reflect.Value) string {
	for _, n := range []string{"Topic", "Name"} {
		if f := e.FieldByName(n); f.IsValid() {
			switch {
			case f.Kind() == reflect.String && f.String() != "":
				return f.String()
			case f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.String:
				return f.Elem().String()
			}
		}
	}
	if f := e.FieldByName("TopicID"); f.IsValid() && f.Type() == topicIDType {
		if t, ok := s.meta.topicByID(f.Interface().([16]byte)); ok {
			return t.Name
		}
	}
	return ""
}

// topicRule denies, in the request's slice field of topics, the topics
// the principal may not do op on, with TOPIC_AUTHORIZATION_FAILED.
func (s *Server) topicRule(r *request, field string, op acl.Operation) func(kmsg.Response) {
	return splitElems(r, field, field, func(e reflect.Value) int16 {
		if name := s.elemTopic(e); name != "" && !s.allowed(r, op, acl.ResourceTopic, name) {
			return topicAuthFailed
		}
		return 0
	})
}

// topicsRule is a rule for APIs whose only check is op on each topic of
// their Topics.
func topicsRule(op acl.Operation) authzRule {
	return func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		return nil, s.topicRule(r, "Topics", op)
	}
}

// clusterRule is a rule for APIs that need op on the cluster.
func clusterRule(op acl.Operation) authzRule {
	return func(s *Server, r *request) (kmsg.Response, func(kmsg.Response)) {
		if !s.allowedCluster(r, op) {
			return denyAll(r, clusterAuthFailed)
		}
		return nil, nil
	}
}

// authorizedOps is the KIP-430 bitfield of the operations of ops that r's
// principal may do on the resource; without an authorizer, all of them.
func (s *Server) authorizedOps(r *request, typ acl.ResourceType, name string, ops []kmsg.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		if s.authz == nil || s.allowed(r, acl.Operation(op), typ, name) {
			bits |= 1 << uint(op)
		}
	}
	return bits
}
