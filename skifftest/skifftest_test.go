package skifftest_test

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/skiffmq/skiff/server"
	"github.com/skiffmq/skiff/skifftest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fillBroker leaves topics, groups, a committed transaction and producer
// ids behind, as a subtest would.
func fillBroker(t *testing.T, b *skifftest.Broker, topics, groups int) {
	ctx := testCtx(t)
	adm := b.Admin(t)
	for i := range topics {
		name := "t" + string(rune('a'+i))
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, name); err != nil {
			t.Fatal(err)
		}
	}
	cl := b.Client(t, kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("ta"))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}, &kgo.Record{Topic: "keep", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	for i := range groups {
		offsets := kadm.Offsets{}
		offsets.Add(kadm.Offset{Topic: "ta", Partition: 0, At: 1})
		resp, err := adm.CommitOffsets(ctx, "g"+string(rune('a'+i)), offsets)
		if err != nil || resp.Error() != nil {
			t.Fatalf("commit: %v %v", err, resp.Error())
		}
	}
}

func TestResetLeavesCleanSlate(t *testing.T) {
	b := skifftest.New(t, skifftest.Topic("keep", 2, map[string]string{"retention.ms": "60000"}))
	addr := b.Addr()
	fillBroker(t, b, 10, 3)
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	if b.Addr() != addr {
		t.Errorf("address after Reset %s, want %s", b.Addr(), addr)
	}
	ctx := testCtx(t)
	adm := b.Admin(t)
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := topics.Names(); len(names) != 1 || names[0] != "keep" {
		t.Errorf("topics after Reset: %v, want only keep", names)
	}
	if d := topics["keep"]; len(d.Partitions) != 2 {
		t.Errorf("keep has %d partitions after Reset, want 2", len(d.Partitions))
	}
	ends, err := adm.ListEndOffsets(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("keep/%d ends at %d after Reset, want 0", o.Partition, o.Offset)
		}
	})
	rc, err := adm.DescribeTopicConfigs(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rc.On("keep", nil); err != nil || !hasConfig(c, "retention.ms", "60000") {
		t.Errorf("keep's configs after Reset: %+v %v", c, err)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 0 {
		t.Errorf("groups after Reset: %v", groups.Groups())
	}
	txns, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(txns) != 0 {
		t.Errorf("transactions after Reset: %v", txns.TransactionalIDs())
	}
	// Producer ids start over: the first one handed out is 0 again... or
	// at least not one a previous subtest's producer holds.
	cl := b.Client(t, kgo.DefaultProduceTopic("keep"))
	r, err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).First()
	if err != nil {
		t.Fatal(err)
	}
	if r.ProducerID != 0 || r.Offset != 0 {
		t.Errorf("first record after Reset: producer id %d offset %d, want 0 and 0", r.ProducerID, r.Offset)
	}
}

func hasConfig(rc kadm.ResourceConfig, name, value string) bool {
	for _, c := range rc.Configs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

func TestProfiles(t *testing.T) {
	for _, tc := range []struct {
		profile string
		want    map[string]string
	}{
		{server.ProfileTest, map[string]string{
			"group.initial.rebalance.delay.ms": "10", "group.min.session.timeout.ms": "100",
			"offsets.topic.num.partitions": "1", "auto.create.topics.enable": "true", "num.partitions": "1",
		}},
		{server.ProfileProduction, map[string]string{
			"group.initial.rebalance.delay.ms": "3000", "group.min.session.timeout.ms": "6000",
			"offsets.topic.num.partitions": "50", "auto.create.topics.enable": "true", "num.partitions": "1",
		}},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			b := skifftest.New(t, skifftest.Profile(tc.profile), skifftest.Setting("num.partitions", "1"))
			rcs, err := b.Admin(t).DescribeBrokerConfigs(testCtx(t), 0)
			if err != nil || len(rcs) != 1 {
				t.Fatal(err, len(rcs))
			}
			got := map[string]string{}
			for _, c := range rcs[0].Configs {
				if _, ok := tc.want[c.Key]; ok && c.Value != nil {
					got[c.Key] = *c.Value
				}
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	// An explicit setting wins over the profile.
	b := skifftest.New(t, skifftest.Setting("group.initial.rebalance.delay.ms", "5"))
	rcs, err := b.Admin(t).DescribeBrokerConfigs(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == "group.initial.rebalance.delay.ms" && (c.Value == nil || *c.Value != "5") {
			t.Errorf("explicit group.initial.rebalance.delay.ms: %v", c.Value)
		}
	}
}

func TestClockAdvanceFiresTimers(t *testing.T) {
	b := skifftest.New(t)
	c := b.Clock()
	before := c.Now()
	fired := make(chan time.Duration, 3)
	c.AfterFunc(time.Hour, func() { fired <- time.Hour })
	c.AfterFunc(2*time.Hour, func() { fired <- 2 * time.Hour })
	stop := c.AfterFunc(30*time.Minute, func() { fired <- 30 * time.Minute })
	if !stop() {
		t.Error("stop of a pending timer reported false")
	}
	c.Advance(90 * time.Minute)
	select {
	case d := <-fired:
		if d != time.Hour {
			t.Errorf("timer of %v fired after Advance(90m)", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the 1h timer did not fire after Advance(90m)")
	}
	if got := c.Now().Sub(before); got < 90*time.Minute {
		t.Errorf("clock moved %v, want at least 90m", got)
	}
	c.Advance(time.Hour)
	if d := <-fired; d != 2*time.Hour {
		t.Errorf("second timer: %v", d)
	}
	select {
	case d := <-fired:
		t.Errorf("stopped or fired timer fired again: %v", d)
	default:
	}
}

func TestTopicOptionValidated(t *testing.T) {
	_, err := skifftest.Start(skifftest.Topic("bad", 1, map[string]string{"cleanup.policy": "nope"}))
	if err == nil {
		t.Fatal("a topic with an invalid config started")
	}
	names := []string{}
	b := skifftest.New(t, skifftest.Topic("a", 1, nil), skifftest.Topic("b", 4, nil))
	tds, err := b.Admin(t).ListTopics(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, td := range tds {
		names = append(names, td.Topic)
	}
	sort.Strings(names)
	if len(names) != 2 || len(tds["b"].Partitions) != 4 {
		t.Errorf("topics %v, b has %d partitions", names, len(tds["b"].Partitions))
	}
}

func TestFaultDelayAndObserve(t *testing.T) {
	b := skifftest.New(t)
	var seen []skifftest.RequestSeen
	var mu sync.Mutex
	const delay = 100 * time.Millisecond
	b.InjectFault(skifftest.Fault{
		APIKey: int16(kmsg.Metadata), Action: skifftest.FaultDelay, Delay: delay, Times: 1,
		OnMatch: func(r skifftest.RequestSeen) {
			mu.Lock()
			seen = append(seen, r)
			mu.Unlock()
		},
	})
	observed := b.InjectFault(skifftest.Fault{APIKey: skifftest.AnyAPI, Action: skifftest.FaultObserve})
	adm := b.Admin(t)
	start := time.Now()
	if _, err := adm.BrokerMetadata(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("metadata answered in %v under a %v delay", took, delay)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].API != "Metadata" {
		t.Errorf("OnMatch saw %+v, want one Metadata", seen)
	}
	mu.Unlock()
	// The delay fault is spent; the observer sees the rest.
	if _, err := adm.ListGroups(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range b.Requests() {
		if r.FaultID == observed && r.API == "ListGroups" {
			n++
		}
	}
	if n == 0 {
		t.Error("the observer saw no ListGroups request")
	}
	if len(b.Server().Faults()) != 1 {
		t.Errorf("faults in force: %v, want only the observer", b.Server().Faults())
	}
}

func TestResetKeepsAddressesAndClearsFaults(t *testing.T) {
	b := skifftest.New(t, skifftest.TestControl("127.0.0.1:0"))
	url := b.TestControlURL()
	b.InjectFault(skifftest.Fault{APIKey: int16(kmsg.Produce), Action: skifftest.FaultDrop})
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	if b.TestControlURL() != url {
		t.Errorf("control API moved from %s to %s", url, b.TestControlURL())
	}
	if f := b.Server().Faults(); len(f) != 0 {
		t.Errorf("faults after Reset: %v", f)
	}
	resp, err := http.Get(url + "/v1/faults")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/faults after Reset: %s", resp.Status)
	}
	// Produce works: the drop fault went with the old broker.
	cl := b.Client(t, kgo.DefaultProduceTopic("after"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}
