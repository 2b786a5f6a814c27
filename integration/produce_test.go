package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceSync produces records and fails the test on any error.
func produceSync(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeN reads n records from the start of topic with a fresh client.
func consumeN(t testing.TB, addr, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	ctx := testContext(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(out), n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}

// TestProduceConsumeCodecs produces keyed records with headers under every
// codec and reads them back exactly, per partition and in order.
func TestProduceConsumeCodecs(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	codecs := map[string]kgo.CompressionCodec{
		"none":   kgo.NoCompression(),
		"gzip":   kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(),
		"lz4":    kgo.Lz4Compression(),
		"zstd":   kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			createTopic(t, adm, topic, 3, nil)
			cl := newClient(t, b.Addr(), kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			const perPartition = 200
			want := map[int32][]*kgo.Record{}
			var recs []*kgo.Record
			for i := 0; i < perPartition*3; i++ {
				p := int32(i % 3)
				r := &kgo.Record{
					Topic:     topic,
					Partition: p,
					Key:       []byte("key-" + strconv.Itoa(i)),
					Value:     bytes.Repeat([]byte{byte('a' + i%26)}, 10+i%300),
					Headers:   []kgo.RecordHeader{{Key: "h1", Value: []byte(strconv.Itoa(i))}, {Key: "empty"}},
				}
				want[p] = append(want[p], r)
				recs = append(recs, r)
			}
			produceSync(t, cl, recs...)
			got := consumeN(t, b.Addr(), topic, len(recs))
			byPart := map[int32][]*kgo.Record{}
			for _, r := range got {
				byPart[r.Partition] = append(byPart[r.Partition], r)
			}
			for p, ws := range want {
				gs := byPart[p]
				if len(gs) != len(ws) {
					t.Fatalf("partition %d: got %d records, want %d", p, len(gs), len(ws))
				}
				for i := range ws {
					g, w := gs[i], ws[i]
					if g.Offset != int64(i) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || !sameHeaders(g.Headers, w.Headers) {
						t.Fatalf("partition %d record %d: got offset %d key %q value %d bytes headers %v; want key %q value %d bytes headers %v",
							p, i, g.Offset, g.Key, len(g.Value), g.Headers, w.Key, len(w.Value), w.Headers)
					}
				}
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sameHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// TestMessageMaxBytes accepts a batch up to max.message.bytes and rejects a
// larger one with MESSAGE_TOO_LARGE.
func TestMessageMaxBytes(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	const limit = 64 << 10
	createTopic(t, adm, "limited", 1, map[string]*string{"max.message.bytes": kadm.StringPtr(strconv.Itoa(limit))})
	// The client's own limit is raised so that the broker is what refuses.
	cl := newClient(t, b.Addr(), kgo.ProducerBatchMaxBytes(4<<20), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1),
		kgo.ProducerBatchCompression(kgo.NoCompression()))

	// A batch holding one record of this value is just under the limit
	// (61-byte batch header plus the record's own framing).
	fits := &kgo.Record{Topic: "limited", Value: randomBytes(limit - 100)}
	produceSync(t, cl, fits)

	tooBig := &kgo.Record{Topic: "limited", Value: randomBytes(limit + 1)}
	err := cl.ProduceSync(testContext(t), tooBig).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("producing %d bytes to a topic with max.message.bytes=%d: got %v, want MESSAGE_TOO_LARGE", limit+1, limit, err)
	}
	got := consumeN(t, b.Addr(), "limited", 1)
	if len(got) != 1 || len(got[0].Value) != limit-100 {
		t.Fatalf("read back %d records", len(got))
	}
}

// TestListOffsetsByTimestamp finds offsets by timestamp through the time
// index, plus earliest, latest and max-timestamp.
func TestListOffsetsByTimestamp(t *testing.T) {
	b := startBroker(t, map[string]string{"log.index.interval.bytes": "1"})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "times", 1, nil)
	cl := newClient(t, b.Addr(), kgo.ProducerLinger(0))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	// Ten batches, each of three records one second apart; record i has
	// timestamp base + i seconds.
	for batch := 0; batch < 10; batch++ {
		var recs []*kgo.Record
		for j := 0; j < 3; j++ {
			i := batch*3 + j
			recs = append(recs, &kgo.Record{Topic: "times", Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
		}
		produceSync(t, cl, recs...)
	}
	ctx := testContext(t)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{base.Add(-time.Minute), 0},
		{base, 0},
		{base.Add(500 * time.Millisecond), 1},
		{base.Add(4 * time.Second), 4},
		{base.Add(17 * time.Second), 17},
		{base.Add(29 * time.Second), 29},
	} {
		offs, err := adm.ListOffsetsAfterMilli(ctx, tc.at.UnixMilli(), "times")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := offs.Lookup("times", 0)
		if o.Err != nil || o.Offset != tc.want {
			t.Errorf("offset after %v: got %d (%v), want %d", tc.at.Sub(base), o.Offset, o.Err, tc.want)
		}
		if o.Err == nil && o.Timestamp != base.Add(time.Duration(tc.want)*time.Second).UnixMilli() {
			t.Errorf("offset after %v: timestamp %d, want record %d's", tc.at.Sub(base), o.Timestamp, tc.want)
		}
	}
	// Past the newest record: no offset (-1 per Kafka, reported by kadm as
	// the end offset).
	offs, err := adm.ListOffsetsAfterMilli(ctx, base.Add(time.Minute).UnixMilli(), "times")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("times", 0); o.Err != nil || (o.Offset != -1 && o.Offset != 30) {
		t.Errorf("offset after the newest record: got %d (%v)", o.Offset, o.Err)
	}
	starts, err := adm.ListStartOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := starts.Lookup("times", 0); s.Offset != 0 {
		t.Errorf("earliest: got %d, want 0", s.Offset)
	}
	if e, _ := ends.Lookup("times", 0); e.Offset != 30 {
		t.Errorf("latest: got %d, want 30", e.Offset)
	}
	maxTS, err := adm.ListMaxTimestampOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := maxTS.Lookup("times", 0); m.Offset != 29 || m.Timestamp != base.Add(29*time.Second).UnixMilli() {
		t.Errorf("max timestamp: got offset %d ts %d, want 29", m.Offset, m.Timestamp)
	}
}

// TestLongPollFetch parks a fetch with a long max wait and checks that a
// produce answers it at once rather than at the end of the wait.
func TestLongPollFetch(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "longpoll", 1, nil)
	consumer := newClient(t, b.Addr(),
		kgo.ConsumeTopics("longpoll"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(30*time.Second),
	)
	got := make(chan time.Time, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			if fs := consumer.PollFetches(ctx); len(fs.Records()) > 0 {
				got <- time.Now()
				return
			}
		}
	}()
	// Produce only once the consumer's fetch is parked at the broker.
	eventually(t, 10*time.Second, "a parked fetch", func() bool { return b.Stats().ParkedFetches > 0 })
	producer := newClient(t, b.Addr())
	sent := time.Now()
	produceSync(t, producer, &kgo.Record{Topic: "longpoll", Value: []byte("wake up")})
	select {
	case at := <-got:
		if d := at.Sub(sent); d > 5*time.Second {
			t.Fatalf("long poll answered %v after the produce; want it answered as soon as data arrives", d)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("long-poll fetch was not answered when data arrived")
	}
}

// TestCreateTopicErrors checks Kafka's CreateTopics answers for bad input.
func TestCreateTopicErrors(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	createTopic(t, adm, "exists", 1, nil)
	for _, tc := range []struct {
		name       string
		topic      string
		partitions int32
		repl       int16
		configs    map[string]*string
		want       error
	}{
		{"exists", "exists", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad char", "bad/name", 1, 1, nil, kerr.InvalidTopicException},
		{"too long", string(bytes.Repeat([]byte("x"), 250)), 1, 1, nil, kerr.InvalidTopicException},
		{"dot", ".", 1, 1, nil, kerr.InvalidTopicException},
		{"collision", "exi_sts", 1, 1, nil, nil},
		{"collision2", "exi.sts", 1, 1, nil, kerr.InvalidTopicException},
		{"replication", "repl3", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"partitions", "parts0", 0, 1, nil, kerr.InvalidPartitions},
		{"unknown config", "cfg1", 1, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, kerr.InvalidConfig},
		{"bad config value", "cfg2", 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, kerr.InvalidConfig},
	} {
		// kadm's CreateTopic returns the topic's error as err too.
		_, err := adm.CreateTopic(ctx, tc.partitions, tc.repl, tc.configs, tc.topic)
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// Defaults: -1 partitions and replication take num.partitions and 1.
	resp, err := adm.CreateTopic(ctx, -1, -1, nil, "defaults")
	if err != nil || resp.Err != nil || resp.NumPartitions != 1 || resp.ReplicationFactor != 1 {
		t.Fatalf("create with defaults: %v %v %+v", err, resp.Err, resp)
	}
	// validate_only creates nothing.
	if _, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "only-validated"); err != nil {
		t.Fatal(err)
	}
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if details.Has("only-validated") {
		t.Fatal("validate_only created the topic")
	}
}

// TestDeleteTopic deletes a topic by name and checks it is gone, and that a
// recreated topic gets a new id and starts empty.
func TestDeleteTopic(t *testing.T) {
	b := startBroker(t, map[string]string{"auto.create.topics.enable": "false"})
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	createTopic(t, adm, "doomed", 2, nil)
	cl := newClient(t, b.Addr())
	produceSync(t, cl, &kgo.Record{Topic: "doomed", Value: []byte("x")})
	before, _ := adm.ListTopics(ctx, "doomed")
	resps, err := adm.DeleteTopics(ctx, "doomed")
	if err != nil || resps["doomed"].Err != nil {
		t.Fatalf("delete: %v %v", err, resps["doomed"].Err)
	}
	resps, _ = adm.DeleteTopics(ctx, "doomed")
	if !errors.Is(resps["doomed"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("deleting twice: %v", resps["doomed"].Err)
	}
	createTopic(t, adm, "doomed", 1, nil)
	// A new client: kgo answers repeated metadata requests from its cache.
	after, _ := newAdmin(t, b.Addr()).ListTopics(ctx, "doomed")
	if before["doomed"].ID == after["doomed"].ID || len(after["doomed"].Partitions) != 1 {
		t.Fatal("recreated topic kept its old id")
	}
	ends, _ := adm.ListEndOffsets(ctx, "doomed")
	if e, _ := ends.Lookup("doomed", 0); e.Offset != 0 {
		t.Fatalf("recreated topic has end offset %d", e.Offset)
	}
}

// TestAutoCreateTopic creates a topic on first metadata request when
// auto.create.topics.enable is on, with num.partitions partitions.
func TestAutoCreateTopic(t *testing.T) {
	b := startBroker(t, map[string]string{"num.partitions": "4"})
	cl := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation())
	produceSync(t, cl, &kgo.Record{Topic: "auto", Value: []byte("x")})
	adm := newAdmin(t, b.Addr())
	details, err := adm.ListTopics(testContext(t), "auto")
	if err != nil {
		t.Fatal(err)
	}
	if d := details["auto"]; d.Err != nil || len(d.Partitions) != 4 {
		t.Fatalf("auto-created topic: %v, %d partitions", d.Err, len(d.Partitions))
	}
}
