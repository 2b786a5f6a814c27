package share

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A share session (KIP-932) is the set of partitions a member fetches
// from, kept between ShareFetch requests so that each request names only
// what changed. Epoch 0 opens it, -1 closes it, and every other request
// carries the next epoch.
type sessionKey struct{ group, member string }

type session struct {
	next int32 // the epoch the next request must carry
	tps  []TopicPartition
}

// nextEpoch is Kafka's increment, which skips 0 (open) and -1 (close).
func nextEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}

// FetchSession applies a ShareFetch's session fields and returns the
// partitions to fetch. add and forget are the request's Topics and
// ForgottenTopicsData.
func (c *Coordinator) FetchSession(group, member string, epoch int32, add, forget []TopicPartition) ([]TopicPartition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := sessionKey{group, member}
	switch epoch {
	case 0:
		s := &session{next: 1}
		for _, tp := range add {
			if !slices.Contains(s.tps, tp) {
				s.tps = append(s.tps, tp)
			}
		}
		c.mu.sessions[key] = s
		return slices.Clone(s.tps), nil
	case -1:
		s, ok := c.mu.sessions[key]
		if !ok {
			return nil, kerr.ShareSessionNotFound
		}
		delete(c.mu.sessions, key)
		return slices.Clone(s.tps), nil
	}
	s, ok := c.mu.sessions[key]
	if !ok {
		return nil, kerr.ShareSessionNotFound
	}
	if epoch != s.next {
		return nil, kerr.InvalidShareSessionEpoch
	}
	s.next = nextEpoch(epoch)
	// Add, then forget, as Kafka's ShareSession.update: a partition named
	// in both (a client piggybacks its last acknowledgements for a
	// partition it is giving up) leaves the session. Forgetting first kept
	// it, and every later ShareFetch acquired records from it for a member
	// that no longer reads it, so they cycled through lock expiries to the
	// delivery limit.
	for _, tp := range add {
		if !slices.Contains(s.tps, tp) {
			s.tps = append(s.tps, tp)
		}
	}
	s.tps = slices.DeleteFunc(s.tps, func(tp TopicPartition) bool { return slices.Contains(forget, tp) })
	return slices.Clone(s.tps), nil
}

// AckSession checks a ShareAcknowledge's session epoch: 0 is refused
// (acknowledging needs an open session), -1 closes the session.
func (c *Coordinator) AckSession(group, member string, epoch int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := sessionKey{group, member}
	s, ok := c.mu.sessions[key]
	switch {
	case epoch == 0:
		return kerr.InvalidShareSessionEpoch
	case !ok:
		return kerr.ShareSessionNotFound
	case epoch == -1:
		delete(c.mu.sessions, key)
		return nil
	case epoch != s.next:
		return kerr.InvalidShareSessionEpoch
	}
	s.next = nextEpoch(epoch)
	return nil
}
