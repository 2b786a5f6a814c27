package server

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Incremental fetch sessions (KIP-227). A consumer that fetches many
// partitions opens a session with a full fetch; later fetches then name
// only the partitions whose fetch position changed, and the broker answers
// only for partitions that have something new: records, an error, or a
// changed high watermark, last stable offset or log start offset.

// maxFetchSessions is Kafka's max.incremental.fetch.session.cache.slots.
const maxFetchSessions = 1000

type fetchSessions struct {
	mu       sync.Mutex
	sessions map[int32]*fetchSession
}

func newFetchSessions() *fetchSessions {
	return &fetchSessions{sessions: make(map[int32]*fetchSession)}
}

// fetchSession is one client's session. Fetches within a session are
// sequential (the client waits for each response), and mu serialises them
// anyway so a misbehaving client cannot race itself.
type fetchSession struct {
	mu       sync.Mutex
	id       int32
	epoch    int32 // the epoch the next incremental fetch must carry
	parts    []*sessionPart
	byKey    map[sessionKey]*sessionPart
	lastUsed time.Time
}

type sessionKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// sessionPart is a partition in a session: where the client fetches from,
// and what it was last told, so unchanged partitions can be left out.
type sessionPart struct {
	key          sessionKey
	fetchOffset  int64
	maxBytes     int32
	currentEpoch int32 // the client's CurrentLeaderEpoch (-1: none)
	lastHW       int64
	lastLSO      int64
	lastLogStart int64
	everSent     bool
}

// fetchPartitionReq is one partition as named in a fetch request.
type fetchPartitionReq struct {
	key          sessionKey
	fetchOffset  int64
	maxBytes     int32
	currentEpoch int32
}

// sessionEpochInitial and sessionEpochFinal are KIP-227's special epochs: a
// full fetch that opens a session, and one that closes it (or needs none).
const (
	sessionEpochInitial = 0
	sessionEpochFinal   = -1
)

// begin resolves the session a fetch belongs to. It returns the session
// (nil for a sessionless full fetch), whether the fetch is incremental, and
// a top-level error code.
func (fs *fetchSessions) begin(id, epoch int32, now time.Time) (*fetchSession, bool, int16) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	switch {
	case epoch == sessionEpochFinal:
		delete(fs.sessions, id) // a full fetch that closes any session
		return nil, false, 0
	case epoch == sessionEpochInitial:
		delete(fs.sessions, id)
		s := &fetchSession{id: fs.newIDLocked(), epoch: 1, byKey: make(map[sessionKey]*sessionPart), lastUsed: now}
		fs.evictLocked()
		fs.sessions[s.id] = s
		return s, false, 0
	}
	s, ok := fs.sessions[id]
	if !ok {
		return nil, false, kerr.FetchSessionIDNotFound.Code
	}
	if epoch != s.epoch {
		return nil, false, kerr.InvalidFetchSessionEpoch.Code
	}
	s.lastUsed = now
	return s, true, 0
}

func (fs *fetchSessions) newIDLocked() int32 {
	for {
		id := rand.Int32()
		if _, taken := fs.sessions[id]; id != 0 && !taken {
			return id
		}
	}
}

// evictLocked makes room for one more session by dropping the least
// recently used one.
func (fs *fetchSessions) evictLocked() {
	if len(fs.sessions) < maxFetchSessions {
		return
	}
	var oldest *fetchSession
	for _, s := range fs.sessions {
		if oldest == nil || s.lastUsed.Before(oldest.lastUsed) {
			oldest = s
		}
	}
	delete(fs.sessions, oldest.id)
}

// update applies a fetch's partitions and forgotten partitions to the
// session and returns the partitions to answer for, in session order.
// Callers hold s.mu.
func (s *fetchSession) updateLocked(reqParts []fetchPartitionReq, forgotten []sessionKey) []*sessionPart {
	for _, k := range forgotten {
		if p, ok := s.byKey[k]; ok {
			delete(s.byKey, k)
			for i, q := range s.parts {
				if q == p {
					s.parts = append(s.parts[:i], s.parts[i+1:]...)
					break
				}
			}
		}
	}
	for _, rp := range reqParts {
		p, ok := s.byKey[rp.key]
		if !ok {
			p = &sessionPart{key: rp.key}
			s.byKey[rp.key] = p
			s.parts = append(s.parts, p)
		}
		p.fetchOffset, p.maxBytes, p.currentEpoch = rp.fetchOffset, rp.maxBytes, rp.currentEpoch
	}
	return s.parts
}

// changed reports whether an incremental fetch must include the partition,
// and records what was sent if so.
func (p *sessionPart) changed(hw, lso, logStart int64, hasRecords, hasError bool) bool {
	if !hasRecords && !hasError && p.everSent && p.lastHW == hw && p.lastLSO == lso && p.lastLogStart == logStart {
		return false
	}
	p.everSent = true
	p.lastHW, p.lastLSO, p.lastLogStart = hw, lso, logStart
	return true
}
