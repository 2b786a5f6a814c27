package server

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestFetchSessionLifecycle(t *testing.T) {
	fs := newFetchSessions()
	now := time.Unix(0, 0)

	// Sessionless full fetch.
	if s, inc, code := fs.begin(0, sessionEpochFinal, now); s != nil || inc || code != 0 {
		t.Fatalf("sessionless: %v %v %d", s, inc, code)
	}
	// Open a session.
	s, inc, code := fs.begin(0, sessionEpochInitial, now)
	if s == nil || inc || code != 0 || s.id == 0 || s.epoch != 1 {
		t.Fatalf("open: %+v %v %d", s, inc, code)
	}
	a := sessionKey{topic: "a", partition: 0}
	b := sessionKey{topic: "a", partition: 1}
	parts := s.updateLocked([]fetchPartitionReq{{key: a, fetchOffset: 5, maxBytes: 10}, {key: b, fetchOffset: 7, maxBytes: 10}}, nil)
	if len(parts) != 2 {
		t.Fatalf("parts: %d", len(parts))
	}
	for _, p := range parts {
		p.changed(10, 10, 0, false, false)
	}

	// Incremental fetch with the right epoch.
	s2, inc, code := fs.begin(s.id, 1, now)
	if s2 != s || !inc || code != 0 {
		t.Fatalf("incremental: %v %v %d", s2, inc, code)
	}
	s.epoch++
	// Only a changes position; b is forgotten.
	parts = s.updateLocked([]fetchPartitionReq{{key: a, fetchOffset: 10, maxBytes: 10}}, []sessionKey{b})
	if len(parts) != 1 || parts[0].fetchOffset != 10 {
		t.Fatalf("after update: %+v", parts)
	}
	// Unchanged watermarks and no data: left out. A new high watermark: in.
	if parts[0].changed(10, 10, 0, false, false) {
		t.Fatal("unchanged partition reported")
	}
	if !parts[0].changed(11, 11, 0, false, false) {
		t.Fatal("new high watermark not reported")
	}

	// Wrong epoch, unknown session.
	if _, _, code := fs.begin(s.id, 7, now); code != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("wrong epoch: %d", code)
	}
	if _, _, code := fs.begin(s.id+1, 1, now); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: %d", code)
	}
	// Closing the session.
	fs.begin(s.id, sessionEpochFinal, now)
	if _, _, code := fs.begin(s.id, 2, now); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session still found: %d", code)
	}
}

func TestFetchSessionEviction(t *testing.T) {
	fs := newFetchSessions()
	start := time.Unix(0, 0)
	first, _, _ := fs.begin(0, sessionEpochInitial, start)
	for i := 1; i < maxFetchSessions+1; i++ {
		fs.begin(0, sessionEpochInitial, start.Add(time.Duration(i)*time.Second))
	}
	if len(fs.sessions) != maxFetchSessions {
		t.Fatalf("%d sessions cached, want %d", len(fs.sessions), maxFetchSessions)
	}
	if _, _, code := fs.begin(first.id, 1, start); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatal("the least recently used session was not evicted")
	}
}
