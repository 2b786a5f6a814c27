package server

import (
	"testing"
	"time"

	"github.com/skiffmq/skiff/clusterstate"
)

// TestQuotaRateThrottlesBeyondWindowBudget: a client recording faster than
// its quota is let through until the window's budget (quota times the 10
// full samples) is used, then throttled for the excess over the quota.
func TestQuotaRateThrottlesBeyondWindowBudget(t *testing.T) {
	var r windowedRate
	const limit = 1 << 20
	now := int64(1_000_000)
	var first time.Duration
	sent := 0
	for i := 0; i < 1000 && first == 0; i++ {
		first = r.recordThrottle(64<<10, limit, now)
		sent += 64 << 10
		now += 5
	}
	if sent < 10*limit || sent > 11*limit+64<<10 {
		t.Fatalf("first throttle after %d bytes; want about 10 s of the quota (%d)", sent, 10*limit)
	}
	// Recording 1 MB more at once is 1 s of the quota over it.
	d := r.recordThrottle(limit, limit, now)
	if d < 900*time.Millisecond || d > 1200*time.Millisecond {
		t.Errorf("throttle for 1 s of excess: %v", d)
	}
}

// TestQuotaPrecedenceMostSpecificWins: of the stored quotas, the one at
// the most specific of Kafka's eight user/client-id levels applies, only
// quotas that set the type count, and the rate is shared as the level says
// (a user quota by all the user's client ids).
func TestQuotaPrecedenceMostSpecificWins(t *testing.T) {
	name := func(s string) *string { return &s }
	ent := func(user, client *string, hasUser, hasClient bool) string {
		var ps []clusterstate.QuotaEntityPart
		if hasClient {
			ps = append(ps, clusterstate.QuotaEntityPart{Type: quotaClientID, Name: client})
		}
		if hasUser {
			ps = append(ps, clusterstate.QuotaEntityPart{Type: quotaUser, Name: user})
		}
		return clusterstate.QuotaEntityKey(ps)
	}
	ix := &quotaIndex{values: map[string]map[string]float64{
		ent(name("alice"), name("app"), true, true): {quotaProduce: 1},
		ent(name("alice"), nil, true, true):         {quotaProduce: 2},
		ent(name("alice"), nil, true, false):        {quotaProduce: 3, quotaFetch: 30},
		ent(nil, name("app"), true, true):           {quotaProduce: 4},
		ent(nil, nil, true, true):                   {quotaProduce: 5},
		ent(nil, nil, true, false):                  {quotaProduce: 6},
		ent(nil, name("tool"), false, true):         {quotaProduce: 7, quotaFetch: 70},
		ent(nil, nil, false, true):                  {quotaFetch: 80},
	}}
	for _, tc := range []struct {
		kind, user, client string
		want               float64
		key                quotaSensorKey
	}{
		{quotaProduce, "alice", "app", 1, quotaSensorKey{quotaProduce, "alice", "app"}},
		{quotaProduce, "alice", "other", 2, quotaSensorKey{quotaProduce, "alice", "other"}},
		{quotaFetch, "alice", "app", 30, quotaSensorKey{quotaFetch, "alice", ""}},
		{quotaProduce, "bob", "app", 4, quotaSensorKey{quotaProduce, "bob", "app"}},
		{quotaProduce, "bob", "tool", 5, quotaSensorKey{quotaProduce, "bob", "tool"}},
		{quotaFetch, "bob", "tool", 70, quotaSensorKey{quotaFetch, "", "tool"}},
		{quotaFetch, "bob", "x", 80, quotaSensorKey{quotaFetch, "", "x"}},
	} {
		got, key, ok := ix.match(tc.kind, tc.user, tc.client)
		if !ok || got != tc.want || key != tc.key {
			t.Errorf("%s for %s/%s: %v %+v %v; want %v %+v", tc.kind, tc.user, tc.client, got, key, ok, tc.want, tc.key)
		}
	}
	if _, _, ok := ix.match(quotaRequest, "alice", "app"); ok {
		t.Errorf("request_percentage matched though no quota sets it")
	}
}

// TestQuotaIdleSensorsPruned: rates of clients gone for an hour are
// dropped when a new client's rate is made, so client ids that come and go
// do not grow the broker's memory without bound.
func TestQuotaIdleSensorsPruned(t *testing.T) {
	m := &quotaManager{sensors: map[quotaSensorKey]*windowedRate{}, buckets: map[quotaSensorKey]*tokenBucket{}}
	old := time.Now().Add(-2 * quotaSensorIdle)
	stale := m.sensor(quotaSensorKey{kind: quotaProduce, client: "gone"})
	stale.add(1, old.UnixMilli())
	live := m.sensor(quotaSensorKey{kind: quotaProduce, client: "here"})
	live.add(1, time.Now().UnixMilli())
	m.pruned = time.Time{} // as if the last prune were long ago
	m.sensor(quotaSensorKey{kind: quotaProduce, client: "new"})
	if _, ok := m.sensors[quotaSensorKey{kind: quotaProduce, client: "gone"}]; ok {
		t.Errorf("idle rate kept")
	}
	if _, ok := m.sensors[quotaSensorKey{kind: quotaProduce, client: "here"}]; !ok {
		t.Errorf("active rate dropped")
	}
}
