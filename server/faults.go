package server

import (
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fault injection for tests, on kfake's model (Control / ControlKey): a
// rule intercepts decoded requests by API key, optionally narrowed to a
// topic, partition, group or client id, and answers them with an error
// code, delays them, closes the connection, drops them, or lets them pass
// and records them. Rules are matched in the order they were added; the
// first that matches applies. The interception sits in conn.handle behind
// one atomic load: a server nobody injects into pays nothing else.

// FaultAction is what a matching fault does with a request.
type FaultAction string

const (
	// FaultObserve lets the request through; it is recorded (see
	// Server.Requests) and the fault's OnMatch is called.
	FaultObserve FaultAction = "observe"
	// FaultError answers the whole request, without handling it, with
	// ErrorCode on every topic, partition or group it names (or at the top
	// level when it names none), as kfake's Control answers whole
	// requests: a rule narrowed to one partition fails a produce that
	// also carries others. An acks=0 produce has no answer to carry the
	// code, so its connection is closed, as Kafka does when one fails.
	FaultError FaultAction = "error"
	// FaultDelay waits Delay, then handles the request as usual.
	FaultDelay FaultAction = "delay"
	// FaultClose closes the connection without answering.
	FaultClose FaultAction = "close"
	// FaultDrop never answers; the connection stays open. The requests
	// behind it on that connection wait too, since Kafka answers a
	// connection's requests in order; the client's request timeout fires.
	FaultDrop FaultAction = "drop"
)

// AnyAPI in Fault.APIKey matches every API.
const AnyAPI int16 = -1

// Fault is one fault-injection rule.
type Fault struct {
	// APIKey is the request's API key (kmsg.Produce, ...) or AnyAPI.
	APIKey int16
	// Topic, Partition, Group and ClientID narrow the match when set: the
	// request must name the topic (by name or topic id), the partition
	// (of Topic, if set), the group, and come from the client id.
	Topic     string
	Partition *int32
	Group     string
	ClientID  string
	Action    FaultAction
	// ErrorCode is what FaultError answers (a kerr code).
	ErrorCode int16
	// Delay is waited before acting: the whole point of FaultDelay, and a
	// lag before an error, close or drop otherwise.
	Delay time.Duration
	// Times is how many matching requests the fault applies to before it
	// removes itself; 0 means until it is cleared.
	Times int
	// OnMatch, if set, is called with each request the fault applies to,
	// on the connection's goroutine before the action (Go only).
	OnMatch func(RequestSeen)
}

// RequestSeen is a request the broker received while fault injection was
// on (Config.TestControl, or any Server.InjectFault call).
type RequestSeen struct {
	Time     time.Time `json:"time"`
	APIKey   int16     `json:"api_key"`
	API      string    `json:"api"`
	Version  int16     `json:"version"`
	ClientID string    `json:"client_id"`
	Topics   []string  `json:"topics,omitempty"`
	Groups   []string  `json:"groups,omitempty"`
	// FaultID and Action say which fault applied, if any.
	FaultID int64       `json:"fault_id,omitempty"`
	Action  FaultAction `json:"action,omitempty"`
}

// maxSeen bounds the requests kept for Server.Requests.
const maxSeen = 4096

// faultSet holds the rules and the record of requests seen.
type faultSet struct {
	// mu guards everything below. It is a leaf: nothing else is locked
	// under it, and OnMatch and the fault's action run without it.
	mu     sync.Mutex
	nextID int64
	rules  []*faultRule
	seen   []RequestSeen // the last maxSeen, oldest first
}

type faultRule struct {
	id int64
	Fault
	applied int
}

// InjectFault adds a fault rule and returns its id. From the first call on,
// requests are also recorded for Requests.
func (s *Server) InjectFault(f Fault) int64 {
	fs := s.faultSet()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	fs.rules = append(fs.rules, &faultRule{id: fs.nextID, Fault: f})
	return fs.nextID
}

// ClearFault removes a fault rule; it reports whether the rule existed
// (a rule whose Times ran out removed itself).
func (s *Server) ClearFault(id int64) bool {
	fs := s.faults.Load()
	if fs == nil {
		return false
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := len(fs.rules)
	fs.rules = slices.DeleteFunc(fs.rules, func(r *faultRule) bool { return r.id == id })
	return len(fs.rules) < n
}

// ClearFaults removes every fault rule and forgets the requests seen.
func (s *Server) ClearFaults() {
	if fs := s.faults.Load(); fs != nil {
		fs.mu.Lock()
		fs.rules = nil
		fs.seen = nil
		fs.mu.Unlock()
	}
}

// Faults returns the rules in force with their ids.
func (s *Server) Faults() map[int64]Fault {
	out := map[int64]Fault{}
	if fs := s.faults.Load(); fs != nil {
		fs.mu.Lock()
		for _, r := range fs.rules {
			out[r.id] = r.Fault
		}
		fs.mu.Unlock()
	}
	return out
}

// Requests returns the requests received since fault injection was turned
// on (or last cleared), oldest first, at most the last 4096.
func (s *Server) Requests() []RequestSeen {
	fs := s.faults.Load()
	if fs == nil {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.seen)
}

// faultSet returns the server's fault set, creating it on first use.
func (s *Server) faultSet() *faultSet {
	if fs := s.faults.Load(); fs != nil {
		return fs
	}
	s.faults.CompareAndSwap(nil, &faultSet{})
	return s.faults.Load()
}

// match records the request and returns the rule that applies to it, if
// any, counting the application.
func (fs *faultSet) match(seen RequestSeen, info *requestNames) (Fault, int64, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var hit *faultRule
	for _, r := range fs.rules {
		if r.matches(seen, info) {
			hit = r
			break
		}
	}
	if hit != nil {
		hit.applied++
		if hit.Times > 0 && hit.applied >= hit.Times {
			fs.rules = slices.DeleteFunc(fs.rules, func(r *faultRule) bool { return r == hit })
		}
		seen.FaultID, seen.Action = hit.id, hit.Action
	}
	if len(fs.seen) >= maxSeen {
		fs.seen = slices.Delete(fs.seen, 0, len(fs.seen)-maxSeen+1)
	}
	fs.seen = append(fs.seen, seen)
	if hit == nil {
		return Fault{}, 0, false
	}
	return hit.Fault, hit.id, true
}

func (r *faultRule) matches(seen RequestSeen, info *requestNames) bool {
	if r.APIKey != AnyAPI && r.APIKey != seen.APIKey {
		return false
	}
	if r.ClientID != "" && r.ClientID != seen.ClientID {
		return false
	}
	if r.Group != "" && !slices.Contains(info.groups, r.Group) {
		return false
	}
	switch {
	case r.Partition != nil:
		return slices.ContainsFunc(info.partitions, func(tp topicPartition) bool {
			return tp.partition == *r.Partition && (r.Topic == "" || tp.topic == r.Topic)
		})
	case r.Topic != "":
		return slices.Contains(info.topics, r.Topic)
	}
	return true
}

// applyFaults runs the fault injection for one request. handled means the
// fault decided the outcome: resp is the answer (nil for none).
func (c *conn) applyFaults(fs *faultSet, f inflight) (resp kmsg.Response, handled bool) {
	info := c.s.requestNames(f.req)
	seen := RequestSeen{
		Time: time.Now(), APIKey: f.hdr.APIKey, API: kmsg.NameForKey(f.hdr.APIKey),
		Version: f.hdr.APIVersion, ClientID: f.hdr.ClientID, Topics: info.topics, Groups: info.groups,
	}
	fault, id, ok := fs.match(seen, info)
	if !ok {
		return nil, false
	}
	if fault.OnMatch != nil {
		seen.FaultID, seen.Action = id, fault.Action
		fault.OnMatch(seen)
	}
	if fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		select {
		case <-t.C:
		case <-c.reqCtx.Done():
			t.Stop()
		}
	}
	switch fault.Action {
	case FaultError:
		if pr, ok := f.req.(*kmsg.ProduceRequest); ok && pr.Acks == 0 {
			// Nobody reads an acks=0 answer: Kafka closes the connection
			// when such a produce fails, so that the client notices.
			c.cancel()
			return nil, true
		}
		return errorResponse(f.req, f.hdr.APIVersion, fault.ErrorCode), true
	case FaultClose:
		c.log.Debug().Int64("fault", id).Str("api", seen.API).Msg("fault injection: closing connection")
		c.cancel()
		return nil, true
	case FaultDrop:
		// Hold the connection's pipeline until it closes or the server
		// stops; then close it, so nothing behind is answered out of turn.
		<-c.reqCtx.Done()
		c.cancel()
		return nil, true
	}
	return nil, false // observe, delay: handle as usual
}
