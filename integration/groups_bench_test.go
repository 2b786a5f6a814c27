package integration

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The group benchmark: how long 4 franz-go members (default balancer,
// cooperative-sticky) take to share a 12-partition topic, and how long the
// other 3 take to share it again after one leaves, on Skiff and on kfake
// in the same run. `make bench` runs it with -benchtime 1x.
//
// Timing notes. Kafka's group.initial.rebalance.delay.ms (default 3000)
// holds a new group's first rebalance back so that more members can join;
// it is set to 0 on Skiff here, which is what kfake does (it has no such
// delay: a rebalance completes as soon as every known member has joined).
// Members learn that a rebalance started from their heartbeat responses,
// so both brokers see members heartbeating every benchHeartbeat rather
// than franz-go's default 3 s.
const (
	benchGroupTopic      = "t"
	benchGroupPartitions = 12
	benchGroupMembers    = 4
	benchHeartbeat       = 100 * time.Millisecond

	// What the Skiff numbers must stay under.
	benchJoinLimit      = time.Second
	benchRebalanceLimit = 500 * time.Millisecond
)

type groupBenchTarget struct {
	name  string
	about string
	start func(b *testing.B) string
}

var groupBenchTargets = []groupBenchTarget{
	{name: "skiff", about: "group.initial.rebalance.delay.ms=0", start: func(b *testing.B) string {
		br := startBroker(b, map[string]string{"group.initial.rebalance.delay.ms": "0"})
		createTopic(b, newAdmin(b, br.Addr()), benchGroupTopic, benchGroupPartitions, nil)
		return br.Addr()
	}},
	{name: "kfake", about: "franz-go kfake, no initial rebalance delay", start: func(b *testing.B) string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchGroupPartitions, benchGroupTopic))
		if err != nil {
			b.Fatalf("kfake.NewCluster: %v", err)
		}
		b.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	}},
}

// BenchmarkGroupRebalance reports join-s (4 members from start until every
// partition is owned, 3 each) and rebalance-s (from one member's Close
// until the other 3 own 4 each), per broker.
func BenchmarkGroupRebalance(b *testing.B) {
	type result struct{ join, rebalance time.Duration }
	results := make(map[string]result)
	for _, target := range groupBenchTargets {
		b.Run(target.name, func(b *testing.B) {
			addr := target.start(b)
			var join, rebalance time.Duration
			runs := 0
			for b.Loop() {
				j, r := rebalanceOnce(b, addr, "bench-"+strconv.Itoa(runs))
				join += j
				rebalance += r
				runs++
			}
			join /= time.Duration(runs)
			rebalance /= time.Duration(runs)
			b.ReportMetric(join.Seconds(), "join-s")
			b.ReportMetric(rebalance.Seconds(), "rebalance-s")
			results[target.name] = result{join, rebalance}
			if target.name == "skiff" && (join >= benchJoinLimit || rebalance >= benchRebalanceLimit) {
				b.Errorf("skiff: join %v (limit %v), rebalance after a leave %v (limit %v)", join, benchJoinLimit, rebalance, benchRebalanceLimit)
			}
		})
	}
	fmt.Printf("\n== group rebalance: %d franz-go members (cooperative-sticky, %v heartbeats), %d partitions\n",
		benchGroupMembers, benchHeartbeat, benchGroupPartitions)
	fmt.Printf("%-8s %10s %12s  %s\n", "broker", "join s", "rebalance s", "")
	for _, target := range groupBenchTargets {
		if r, ok := results[target.name]; ok {
			fmt.Printf("%-8s %10.3f %12.3f  %s\n", target.name, r.join.Seconds(), r.rebalance.Seconds(), target.about)
		}
	}
	fmt.Println()
}

// rebalanceOnce starts the members of a new group, times their first
// balanced assignment, closes one and times the next.
func rebalanceOnce(b *testing.B, addr, group string) (join, rebalance time.Duration) {
	b.Helper()
	o := newOwnership()
	var ms []*kgoMember
	start := time.Now()
	for i := range benchGroupMembers {
		ms = append(ms, startKgoMember(b, o, addr, group, benchGroupTopic, group+"-m"+strconv.Itoa(i),
			kgo.HeartbeatInterval(benchHeartbeat), kgo.SessionTimeout(10*time.Second)))
	}
	waitBenchBalanced(b, o, "the first assignment")
	join = time.Since(start)

	start = time.Now()
	ms[0].leave()
	waitBenchBalanced(b, o, "the rebalance after a leave")
	rebalance = time.Since(start)
	for _, m := range ms[1:] {
		m.leave()
	}
	return join, rebalance
}

// waitBenchBalanced polls the members' own view of their assignments
// (nothing is asked of the broker, so the broker's work is not disturbed).
func waitBenchBalanced(b *testing.B, o *ownership, what string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := o.balanced(benchGroupPartitions)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not balanced after 30s: %v", what, err)
		}
		time.Sleep(time.Millisecond)
	}
}
