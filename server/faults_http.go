package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The fault-injection API over HTTP, for tests in languages other than Go:
//
//	POST   /v1/faults       add a fault (JSON below); answers {"id": N, ...}
//	GET    /v1/faults       the faults in force
//	DELETE /v1/faults/{id}  remove one (404 if it is gone)
//	DELETE /v1/faults       remove all, and forget the requests seen
//	GET    /v1/requests     the requests seen, oldest first (?api=Produce filters)
//	DELETE /v1/requests     forget the requests seen
//
// A fault: {"api": "Produce" (or "api_key": 0; absent = any), "topic": "t",
// "partition": 0, "group": "g", "client_id": "c", "action": "error",
// "error": "NOT_LEADER_OR_FOLLOWER" (or "error_code": 6), "delay_ms": 100,
// "times": 3}. action defaults to "error" when an error is given, else to
// "delay" when delay_ms is, else it is required.

// faultJSON is a Fault on the wire.
type faultJSON struct {
	ID        int64       `json:"id,omitempty"`
	API       string      `json:"api,omitempty"`
	APIKey    *int16      `json:"api_key,omitempty"`
	Topic     string      `json:"topic,omitempty"`
	Partition *int32      `json:"partition,omitempty"`
	Group     string      `json:"group,omitempty"`
	ClientID  string      `json:"client_id,omitempty"`
	Action    FaultAction `json:"action,omitempty"`
	Error     string      `json:"error,omitempty"`
	ErrorCode *int16      `json:"error_code,omitempty"`
	DelayMs   int64       `json:"delay_ms,omitempty"`
	Times     int         `json:"times,omitempty"`
}

// TestControlHandler is the fault-injection HTTP API (paths under /v1/).
// It is served on its own listener when Config.TestControl is set; an
// admin HTTP listener may mount it instead. Using it turns request
// recording on.
func (s *Server) TestControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/faults", s.httpAddFault)
	mux.HandleFunc("GET /v1/faults", s.httpListFaults)
	mux.HandleFunc("DELETE /v1/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /v1/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || !s.ClearFault(id) {
			httpError(w, http.StatusNotFound, "no fault %q", r.PathValue("id"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/requests", func(w http.ResponseWriter, r *http.Request) {
		seen := s.Requests()
		if api := r.URL.Query().Get("api"); api != "" {
			kept := seen[:0]
			for _, rs := range seen {
				if strings.EqualFold(rs.API, api) {
					kept = append(kept, rs)
				}
			}
			seen = kept
		}
		if seen == nil {
			seen = []RequestSeen{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"requests": seen})
	})
	mux.HandleFunc("DELETE /v1/requests", func(w http.ResponseWriter, _ *http.Request) {
		if fs := s.faults.Load(); fs != nil {
			fs.mu.Lock()
			fs.seen = nil
			fs.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func (s *Server) httpAddFault(w http.ResponseWriter, r *http.Request) {
	var in faultJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		httpError(w, http.StatusBadRequest, "server: fault: %v", err)
		return
	}
	f, err := in.fault()
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	id := s.InjectFault(f)
	writeJSON(w, http.StatusCreated, faultToJSON(id, f))
}

func (s *Server) httpListFaults(w http.ResponseWriter, _ *http.Request) {
	faults := s.Faults()
	out := make([]faultJSON, 0, len(faults))
	for id, f := range faults {
		out = append(out, faultToJSON(id, f))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, map[string]any{"faults": out})
}

func (in faultJSON) fault() (Fault, error) {
	f := Fault{
		APIKey: AnyAPI, Topic: in.Topic, Partition: in.Partition, Group: in.Group, ClientID: in.ClientID,
		Action: in.Action, Delay: time.Duration(in.DelayMs) * time.Millisecond, Times: in.Times,
	}
	switch {
	case in.APIKey != nil:
		f.APIKey = *in.APIKey
	case in.API != "":
		key, ok := apiKeyByName(in.API)
		if !ok {
			return f, fmt.Errorf("server: fault: unknown api %q", in.API)
		}
		f.APIKey = key
	}
	hasError := in.Error != "" || in.ErrorCode != nil
	switch {
	case in.ErrorCode != nil:
		f.ErrorCode = *in.ErrorCode
	case in.Error != "":
		code, ok := errorCodeByName(in.Error)
		if !ok {
			return f, fmt.Errorf("server: fault: unknown error %q", in.Error)
		}
		f.ErrorCode = code
	}
	if f.Action == "" {
		switch {
		case hasError:
			f.Action = FaultError
		case in.DelayMs > 0:
			f.Action = FaultDelay
		default:
			return f, errors.New("server: fault: action is required (error, delay, close, drop or observe)")
		}
	}
	switch f.Action {
	case FaultError:
		if !hasError {
			return f, errors.New("server: fault: action error needs error or error_code")
		}
	case FaultDelay, FaultClose, FaultDrop, FaultObserve:
	default:
		return f, fmt.Errorf("server: fault: unknown action %q", f.Action)
	}
	if in.Times < 0 || in.DelayMs < 0 {
		return f, errors.New("server: fault: times and delay_ms must not be negative")
	}
	return f, nil
}

func faultToJSON(id int64, f Fault) faultJSON {
	out := faultJSON{
		ID: id, Topic: f.Topic, Partition: f.Partition, Group: f.Group, ClientID: f.ClientID,
		Action: f.Action, DelayMs: f.Delay.Milliseconds(), Times: f.Times,
	}
	if f.APIKey != AnyAPI {
		key := f.APIKey
		out.APIKey, out.API = &key, kmsg.NameForKey(key)
	}
	if f.Action == FaultError {
		code := f.ErrorCode
		out.ErrorCode = &code
		out.Error = errorName(code)
	}
	return out
}

// apiKeyByName accepts kmsg's names ("Produce", "OffsetCommit"), any case.
func apiKeyByName(name string) (int16, bool) {
	for key := range int16(200) {
		if strings.EqualFold(kmsg.NameForKey(key), name) {
			return key, true
		}
	}
	return 0, false
}

// errorCodeByName accepts Kafka's error names (NOT_LEADER_OR_FOLLOWER) and
// kerr's older ones (NOT_LEADER_FOR_PARTITION), any case.
func errorCodeByName(name string) (int16, bool) {
	for code := int16(-1); code < 200; code++ {
		if strings.EqualFold(errorName(code), name) {
			return code, true
		}
		var ke *kerr.Error
		if errors.As(kerr.ErrorForCode(code), &ke) && strings.EqualFold(ke.Message, name) {
			return code, true
		}
	}
	return 0, false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// testControlListener serves TestControlHandler on Config.TestControl.
type testControlListener struct {
	ln  net.Listener
	srv *http.Server
}

func (s *Server) startTestControl(addr string) (*testControlListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: test control listener: %w", err)
	}
	tc := &testControlListener{ln: ln, srv: &http.Server{Handler: s.TestControlHandler(), ReadHeaderTimeout: 10 * time.Second}}
	s.goTracked(func() { tc.srv.Serve(ln) })
	s.log.Warn().Str("test_control", ln.Addr().String()).Msg("fault-injection API enabled: for tests only")
	return tc, nil
}

func (tc *testControlListener) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	tc.srv.Shutdown(ctx)
}

// TestControlAddr is the address the fault-injection API listens on, or ""
// when Config.TestControl is not set.
func (s *Server) TestControlAddr() string {
	if s.testControl == nil {
		return ""
	}
	return s.testControl.ln.Addr().String()
}
