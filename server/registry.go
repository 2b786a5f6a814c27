package server

import (
	"context"
	"net"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// request is what a handler sees: the decoded request plus who sent it.
type request struct {
	ctx      context.Context // ends when the connection closes or the server begins to stop
	connCtx  context.Context // ends when the connection closes
	kreq     kmsg.Request
	version  int16
	clientID string
	remote   net.Addr
	local    net.Addr // which listener the connection came in on
	// auth is the connection's authentication state: its principal, and
	// for the SASL APIs the exchange in progress (sasl.go).
	auth *connAuth
	// size is the request frame's length, what produce quotas count.
	size int
	// throttle is how long a quota says the client must wait; the
	// connection puts it in the response and mutes itself for it.
	throttle time.Duration
	// who and from are the principal and client address authorization
	// decides for, fixed when the request arrives (a re-authentication
	// may change auth while a deferred response completes); see authz.go.
	who, from string
}

// A handler answers one request. A nil response means no response is sent
// (Produce with acks=0). A handler may instead return a deferred response,
// built by the connection's writer once the wait completes, so that work
// such as waiting for an fsync overlaps with the next request's handling
// while responses still go out in request order.
type handler func(s *Server, r *request) (kmsg.Response, error)

// deferredResponse is returned (as the kmsg.Response) by handlers whose
// answer depends on something that completes later.
type deferredResponse struct {
	kmsg.Response // the response that wait fills in
	wait          func()
}

// heldResponse is returned (as the kmsg.Response) by handlers whose
// response holds memory reserved from a broker-wide budget (fetchPool):
// the connection calls release exactly once, when the response has been
// written or will never be.
type heldResponse struct {
	kmsg.Response
	release func()
}

// releaseResponse gives back what resp holds, if anything.
func releaseResponse(resp kmsg.Response) {
	if h, ok := resp.(*heldResponse); ok && h.release != nil {
		h.release()
		h.release = nil
	}
}

type apiEntry struct {
	key      int16
	min, max int16
	handle   handler
}

// apis is filled by each api_*.go file's init, so ApiVersions is derived
// from the handlers that exist and cannot drift from the code.
var apis = map[int16]apiEntry{}

// beforeDecode rewrites a request's bytes (after the header's fixed part)
// before they are decoded, for APIs whose decoded form would cost far more
// memory than the bytes; see collapseMetadataTopics.
var beforeDecode = map[int16]func(version int16, rest []byte) []byte{}

func register(key kmsg.Key, min, max int16, h handler) {
	if _, dup := apis[int16(key)]; dup {
		panic("server: duplicate handler for " + kmsg.NameForKey(int16(key)))
	}
	apis[int16(key)] = apiEntry{key: int16(key), min: min, max: max, handle: h}
}

// supportedAPIs returns the registered APIs sorted by key.
func supportedAPIs() []apiEntry {
	out := make([]apiEntry, 0, len(apis))
	for _, e := range apis {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}
