package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// countCodes counts the ErrorCode fields equal to code anywhere in v.
func countCodes(v reflect.Value, code int16) int {
	n := 0
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			n += countCodes(v.Elem(), code)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).Name == "ErrorCode" && v.Field(i).Kind() == reflect.Int16 {
				if int16(v.Field(i).Int()) == code {
					n++
				}
				continue
			}
			n += countCodes(v.Field(i), code)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			n += countCodes(v.Index(i), code)
		}
	}
	return n
}

// TestFaultErrorResponseShapes: an injected error is a response of the
// request's version that survives encoding and carries the code on each
// partition, topic or group the request named, or at the top level.
func TestFaultErrorResponseShapes(t *testing.T) {
	produce := kmsg.NewPtrProduceRequest()
	for _, name := range []string{"a", "b"} {
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = name
		for p := range int32(2) {
			pp := kmsg.NewProduceRequestTopicPartition()
			pp.Partition = p
			pt.Partitions = append(pt.Partitions, pp)
		}
		produce.Topics = append(produce.Topics, pt)
	}
	fetch := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "a"
	for p := range int32(3) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = p
		ft.Partitions = append(ft.Partitions, fp)
	}
	fetch.Topics = append(fetch.Topics, ft)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group = "g"
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "a"
	ct.Partitions = append(ct.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	commit.Topics = append(commit.Topics, ct)
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g1", "g2"}
	fc4 := kmsg.NewPtrFindCoordinatorRequest()
	fc4.CoordinatorKeys = []string{"g1", "g2", "g3"}
	fc3 := kmsg.NewPtrFindCoordinatorRequest()
	fc3.CoordinatorKey = "g1"
	offsetFetch := kmsg.NewPtrOffsetFetchRequest()
	og := kmsg.NewOffsetFetchRequestGroup()
	og.Group = "g"
	ogt := kmsg.NewOffsetFetchRequestGroupTopic()
	ogt.Topic = "a"
	ogt.Partitions = []int32{0, 1}
	og.Topics = append(og.Topics, ogt)
	offsetFetch.Groups = append(offsetFetch.Groups, og)
	metadata := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("a")
	metadata.Topics = append(metadata.Topics, mt)

	const code = 6
	for _, tc := range []struct {
		name    string
		req     kmsg.Request
		version int16
		want    int
	}{
		{"produce v9", produce, 9, 4},
		{"fetch v12", fetch, 12, 3},
		{"offset commit v8", commit, 8, 1},
		{"describe groups v5", describe, 5, 2},
		{"find coordinator v4", fc4, 4, 3},
		{"find coordinator v3", fc3, 3, 1},
		{"offset fetch v8", offsetFetch, 8, 2},
		{"metadata v12", metadata, 12, 1},
		{"heartbeat v4", kmsg.NewPtrHeartbeatRequest(), 4, 1},
		{"join group v9", kmsg.NewPtrJoinGroupRequest(), 9, 1},
		{"init producer id v5", kmsg.NewPtrInitProducerIDRequest(), 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.SetVersion(tc.version)
			resp := errorResponse(tc.req, tc.version, code)
			if resp.GetVersion() != tc.version || resp.Key() != tc.req.Key() {
				t.Fatalf("response key %d v%d, want key %d v%d", resp.Key(), resp.GetVersion(), tc.req.Key(), tc.version)
			}
			decoded := tc.req.ResponseKind()
			decoded.SetVersion(tc.version)
			if err := decoded.ReadFrom(resp.AppendTo(nil)); err != nil {
				t.Fatalf("decoding the injected response: %v", err)
			}
			if got := countCodes(reflect.ValueOf(decoded), code); got != tc.want {
				t.Errorf("error code on %d elements, want %d: %+v", got, tc.want, decoded)
			}
		})
	}
}

func TestFaultRequestNames(t *testing.T) {
	s := &Server{}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group = "g"
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "a"
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Partition = 4
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	n := s.requestNames(commit)
	if !slices.Equal(n.topics, []string{"a"}) || !slices.Equal(n.groups, []string{"g"}) ||
		!slices.Equal(n.partitions, []topicPartition{{"a", 4}}) {
		t.Errorf("offset commit names %+v", n)
	}
	r := &faultRule{Fault: Fault{APIKey: int16(kmsg.OffsetCommit), Topic: "a", Partition: ptrTo(int32(4)), Group: "g"}}
	seen := RequestSeen{APIKey: int16(kmsg.OffsetCommit)}
	if !r.matches(seen, n) {
		t.Error("rule for a/4 in g does not match")
	}
	r.Partition = ptrTo(int32(5))
	if r.matches(seen, n) {
		t.Error("rule for a/5 matches a request for a/4")
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType = 1 // transactional id: not a group
	fc.CoordinatorKeys = []string{"tx"}
	if n := s.requestNames(fc); len(n.groups) != 0 {
		t.Errorf("transaction coordinator lookup names groups %v", n.groups)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestTestControlHTTPRefusesBadFaults(t *testing.T) {
	s := &Server{}
	hs := httptest.NewServer(s.TestControlHandler())
	defer hs.Close()
	for _, body := range []string{
		`{"api": "Produce"}`,                               // no action
		`{"api": "Nope", "error": "NOT_CONTROLLER"}`,       // unknown api
		`{"api": "Produce", "error": "NOT_AN_ERROR"}`,      // unknown error
		`{"api": "Produce", "action": "explode"}`,          // unknown action
		`{"api": "Produce", "action": "error"}`,            // error without a code
		`{"api": "Produce", "error_code": 6, "times": -1}`, // negative
		`{"api": "Produce", "eror": "NOT_CONTROLLER"}`,     // unknown field
	} {
		resp, err := http.Post(hs.URL+"/v1/faults", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: %d, want 400", body, resp.StatusCode)
		}
	}
	if len(s.Faults()) != 0 {
		t.Errorf("refused faults were added: %v", s.Faults())
	}
	resp, err := http.Post(hs.URL+"/v1/faults", "application/json",
		bytes.NewBufferString(`{"api": "produce", "topic": "t", "partition": 2, "error": "not_leader_or_follower", "delay_ms": 5, "times": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	var got faultJSON
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	f := s.Faults()[got.ID]
	if resp.StatusCode != http.StatusCreated || f.APIKey != 0 || f.Topic != "t" || f.Partition == nil || *f.Partition != 2 ||
		f.Action != FaultError || f.ErrorCode != 6 || f.Delay.Milliseconds() != 5 || f.Times != 2 || got.Error != "NOT_LEADER_OR_FOLLOWER" {
		t.Errorf("POST answered %d %+v; stored %+v", resp.StatusCode, got, f)
	}
}
