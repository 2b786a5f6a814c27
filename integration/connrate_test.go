package integration

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// dialServed opens a connection from the loopback address local and
// reports whether it answers an ApiVersions; the connection is closed.
func dialServed(local, addr string) bool {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	return served(c, 10*time.Second)
}

// TestIPConnectionRateQuota (KIP-612): with connection_creation_rate=5 on
// 127.0.0.1, clients connecting from it as fast as they can get 5
// connections a second served, measured over Kafka's whole quota window
// like the byte-rate quotas (quotaMeasure, quotaMargin); the rest are
// closed unserved. 127.0.0.2, with no quota, is served every time.
func TestIPConnectionRateQuota(t *testing.T) {
	const rate = 5
	b := startBroker(t, nil)
	addr := b.Addr()
	adm := newAdmin(t, addr)
	res, err := adm.AlterClientQuotas(testContext(t), []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: kmsg.StringPtr("127.0.0.1")}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: rate}},
	}})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatalf("AlterClientQuotas: %v", err)
	}
	desc, err := adm.DescribeClientQuotas(testContext(t), true, []kadm.DescribeClientQuotaComponent{{Type: "ip", MatchName: kmsg.StringPtr("127.0.0.1")}})
	if err != nil || len(desc) != 1 || desc[0].Values[0].Value != rate {
		t.Fatalf("DescribeClientQuotas: %v %+v", err, desc)
	}

	var servedN, refused atomic.Int64
	deadline := time.Now().Add(quotaMeasure)
	var wg sync.WaitGroup
	for range 8 { // more demand than the rate, even while refusals wait
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				ok := dialServed("127.0.0.1", addr)
				if !time.Now().Before(deadline) {
					return // answered after the window: not measured
				}
				if ok {
					servedN.Add(1)
				} else {
					refused.Add(1)
				}
			}
		}()
	}
	// Meanwhile another address, without a quota, is served every time,
	// more times than a 5/s rate would allow (50 at once, then 5 a second).
	var otherRefused int
	const otherConns = 150
	for range otherConns {
		if !dialServed("127.0.0.2", addr) {
			otherRefused++
		}
	}
	wg.Wait()

	got := float64(servedN.Load()) / quotaMeasure.Seconds()
	t.Logf("connection_creation_rate %d/s: 127.0.0.1 served %d (%.2f/s over %v), %d closed unserved; 127.0.0.2 refused %d of %d",
		rate, servedN.Load(), got, quotaMeasure, refused.Load(), otherRefused, otherConns)
	if got < rate*(1-quotaMargin) || got > rate*(1+quotaMargin) {
		t.Errorf("127.0.0.1 served %.2f connections/s, want within %.0f%% of %d", got, quotaMargin*100, rate)
	}
	if refused.Load() == 0 {
		t.Error("no connection from 127.0.0.1 was refused: the measurement did not reach the quota")
	}
	if otherRefused > 0 {
		t.Errorf("127.0.0.2, with no quota, had %d of %d connections refused", otherRefused, otherConns)
	}
}

// TestMaxConnectionCreationRateDelaysAccept: past
// max.connection.creation.rate the acceptor waits instead of refusing, as
// Kafka's does: every connection is served, but not sooner than the rate
// allows. Kafka's windowed rate takes ten seconds' worth at once (20 at
// 2/s) and then rate a second, so the 22nd connection cannot be accepted
// within a second of the first.
func TestMaxConnectionCreationRateDelaysAccept(t *testing.T) {
	const rate, conns = 2, 22
	b := startBroker(t, map[string]string{"max.connection.creation.rate": "2"})
	addr := b.Addr()
	start := time.Now()
	var unserved atomic.Int64
	var wg sync.WaitGroup
	next := make(chan struct{}, conns)
	for range conns {
		next <- struct{}{}
	}
	close(next)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if !dialServed("127.0.0.1", addr) {
					unserved.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("max.connection.creation.rate %d/s: %d connections served in %v", rate, conns, took)
	if unserved.Load() > 0 {
		t.Fatalf("%d connections were not served: the broker-wide rate must delay, not refuse", unserved.Load())
	}
	// A lower bound only (less the rate's millisecond rounding).
	if took < 900*time.Millisecond {
		t.Errorf("%d connections served in %v: faster than %d/s allows after the first %d", conns, took, rate, 10*rate)
	}
}
