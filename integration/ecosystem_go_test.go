package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Go ecosystem tests drive the two pure-Go client libraries other than
// franz-go, IBM/sarama and segmentio/kafka-go, through the same steps as the
// script-driven ecosystem tests (ecosystem_python_test.go), with the same
// topic layout and the same franz-go checks of the broker's side:
//
//	PREFIX-admin   created with 3 partitions, listed, deleted
//	PREFIX-CODEC   3 partitions × 10 records with keys and headers
//	PREFIX-group   3 × 10 records; group PREFIX-group reads half, commits, resumes
//	PREFIX-idem    3 × 10 records from an idempotent producer (sarama only)
//	PREFIX-txn     committed, aborted, committed transactions of 6 records (sarama only)
//
// segmentio/kafka-go has neither an idempotent nor a transactional producer
// (its Writer sends no producer id), so its test covers admin, codecs and
// groups only; its Reader can read read_committed, but there is no client-side
// way for it to write transactions.

// goEcoTimeout bounds every wait in these tests.
const goEcoTimeout = 20 * time.Second

var goEcoCodecs = []string{"gzip", "snappy", "lz4", "zstd"}

// goEcoPartitionOf parses the partition out of an ecoExpected key
// ("key-P-I"), so that a client's partitioner can place each record where
// ecoExpected says it belongs.
func goEcoPartitionOf(key []byte) int {
	parts := strings.Split(string(key), "-")
	p, err := strconv.Atoi(parts[1])
	if err != nil {
		panic(fmt.Sprintf("key %q has no partition", key))
	}
	return p
}

// goEcoWantOffsets fails unless offsets (one partition's, in the order
// they were delivered) are exactly from..to-1: no gap, no duplicate.
func goEcoWantOffsets(t *testing.T, what string, offsets []int64, from, to int64) {
	t.Helper()
	var want []int64
	for o := from; o < to; o++ {
		want = append(want, o)
	}
	if !slices.Equal(offsets, want) {
		t.Errorf("%s: offsets %v, want %v", what, offsets, want)
	}
}

// ---------------------------------------------------------------- sarama

func goEcoSaramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.MaxVersion
	cfg.ClientID = "skiff-sarama-ecosystem"
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1 // keeps each partition's records in order
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	return cfg
}

func goEcoSaramaHeaders(hs []kgo.RecordHeader) []sarama.RecordHeader {
	out := make([]sarama.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
	}
	return out
}

func goEcoSaramaSameHeaders(got []*sarama.RecordHeader, want []kgo.RecordHeader) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if string(got[i].Key) != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
			return false
		}
	}
	return true
}

// goEcoSaramaProduce sends every ecoExpected record of codec to topic
// through a SyncProducer built from cfg, partition by partition in order.
func goEcoSaramaProduce(t *testing.T, addr string, cfg *sarama.Config, topic, codec string) {
	t.Helper()
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewSyncProducer: %v", err)
	}
	defer prod.Close()
	var msgs []*sarama.ProducerMessage
	for p := range int32(ecoPartitions) {
		for i := range ecoPerPartition {
			key, value, hdrs := ecoExpected(codec, p, i)
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic: topic, Partition: p, Key: sarama.ByteEncoder(key), Value: sarama.ByteEncoder(value),
				Headers: goEcoSaramaHeaders(hdrs),
			})
		}
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatalf("%s: sarama SendMessages: %v", topic, err)
	}
	for _, m := range msgs {
		if m.Offset < 0 || m.Offset >= ecoPerPartition {
			t.Errorf("%s/%d: acknowledged at offset %d", topic, m.Partition, m.Offset)
		}
	}
}

// goEcoSaramaRead reads n messages of one partition from its start with a
// sarama partition consumer built from cfg.
func goEcoSaramaRead(t *testing.T, addr string, cfg *sarama.Config, topic string, p int32, n int) []*sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumer: %v", err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
	if err != nil {
		t.Fatalf("sarama ConsumePartition %s/%d: %v", topic, p, err)
	}
	defer pc.Close()
	timeout := time.NewTimer(goEcoTimeout)
	defer timeout.Stop()
	var out []*sarama.ConsumerMessage
	for len(out) < n {
		select {
		case m := <-pc.Messages():
			out = append(out, m)
		case err := <-pc.Errors():
			t.Fatalf("sarama consume %s/%d: %v", topic, p, err)
		case <-timeout.C:
			t.Fatalf("sarama consume %s/%d: %d of %d messages before the deadline", topic, p, len(out), n)
		}
	}
	return out
}

// goEcoSaramaCheckRead reads every partition of a codec topic with sarama
// and compares each record with ecoExpected.
func goEcoSaramaCheckRead(t *testing.T, addr, topic, codec string) {
	t.Helper()
	for p := range int32(ecoPartitions) {
		msgs := goEcoSaramaRead(t, addr, goEcoSaramaConfig(), topic, p, ecoPerPartition)
		for i, m := range msgs {
			key, value, hdrs := ecoExpected(codec, p, i)
			if m.Offset != int64(i) || !bytes.Equal(m.Key, key) || !bytes.Equal(m.Value, value) || !goEcoSaramaSameHeaders(m.Headers, hdrs) {
				t.Errorf("sarama read %s/%d #%d: offset %d %q=%q %v, want offset %d %q=%q %v",
					topic, p, i, m.Offset, m.Key, m.Value, m.Headers, i, key, value, hdrs)
			}
		}
	}
}

// goEcoSaramaHandler takes the group messages that want accepts, marks
// each, and once it holds total of them commits and closes done.
type goEcoSaramaHandler struct {
	want  func(*sarama.ConsumerMessage) bool
	total int

	mu       sync.Mutex
	got      map[int32][]*sarama.ConsumerMessage
	n        int
	finished bool
	done     chan struct{}
}

func newGoEcoSaramaHandler(total int, want func(*sarama.ConsumerMessage) bool) *goEcoSaramaHandler {
	return &goEcoSaramaHandler{want: want, total: total, got: map[int32][]*sarama.ConsumerMessage{}, done: make(chan struct{})}
}

func (h *goEcoSaramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *goEcoSaramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *goEcoSaramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-sess.Context().Done():
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.mu.Lock()
			if h.finished || !h.want(m) {
				h.mu.Unlock()
				continue
			}
			h.got[m.Partition] = append(h.got[m.Partition], m)
			h.n++
			sess.MarkMessage(m, "")
			last := h.n == h.total
			if last {
				h.finished = true
			}
			h.mu.Unlock()
			if last {
				sess.Commit() // Consumer.Offsets.AutoCommit is off: this is the only commit
				close(h.done)
			}
		}
	}
}

// goEcoSaramaGroupRun joins group as a fresh sarama member, runs h until it
// is done, and leaves the group.
func goEcoSaramaGroupRun(t *testing.T, addr, group, topic string, h *goEcoSaramaHandler) {
	t.Helper()
	cfg := goEcoSaramaConfig()
	cfg.Consumer.Return.Errors = false
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumerGroup: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	consumeErr := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				consumeErr <- err
				return
			}
		}
		consumeErr <- nil
	}()
	select {
	case <-h.done:
	case err := <-consumeErr:
		cancel()
		cg.Close()
		t.Fatalf("sarama group %s: Consume: %v", group, err)
	case <-time.After(goEcoTimeout):
		cancel()
		<-consumeErr
		cg.Close()
		h.mu.Lock()
		n := h.n
		h.mu.Unlock()
		t.Fatalf("sarama group %s: %d of %d messages before the deadline", group, n, h.total)
	}
	cancel()
	if err := <-consumeErr; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("sarama group %s: Consume: %v", group, err)
	}
	if err := cg.Close(); err != nil {
		t.Errorf("sarama group %s: Close: %v", group, err)
	}
}

// goEcoCommitted fetches group's committed offsets of topic with franz-go.
func goEcoCommitted(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), goEcoTimeout)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p := range int32(ecoPartitions) {
		if o, ok := offs.Lookup(topic, p); ok && o.Err == nil {
			out[p] = o.At
		}
	}
	return out
}

func goEcoHalfCommitted() map[int32]int64 {
	m := map[int32]int64{}
	for p := range int32(ecoPartitions) {
		m[p] = ecoPerPartition / 2
	}
	return m
}

func goEcoSameCommits(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestSaramaEcosystem drives IBM/sarama: ClusterAdmin create/list/delete,
// keyed records with headers under all four codecs read back exactly, a
// consumer group committing half and a new member resuming after it, the
// idempotent producer, and transactions (with offsets sent to them) read
// with read_committed and read_uncommitted.
func TestSaramaEcosystem(t *testing.T) {
	b := startBroker(t, ecosystemSettings())
	addr := b.Addr()
	kadmin := newAdmin(t, addr) // franz-go, for the broker's side
	const prefix = "sarama"
	t.Logf("sarama protocol version %s", sarama.MaxVersion)

	cfg := goEcoSaramaConfig()
	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewClusterAdmin: %v", err)
	}
	defer admin.Close()
	create := func(topic string) {
		t.Helper()
		if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: ecoPartitions, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("sarama CreateTopic %s: %v", topic, err)
		}
	}

	// 1. Admin.
	adminTopic := prefix + "-admin"
	create(adminTopic)
	if err := admin.CreateTopic(adminTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Errorf("creating %s again: %v, want %v", adminTopic, err, sarama.ErrTopicAlreadyExists)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatalf("sarama ListTopics: %v", err)
	}
	if d, ok := topics[adminTopic]; !ok || d.NumPartitions != ecoPartitions || d.ReplicationFactor != 1 {
		t.Errorf("sarama ListTopics: %s is %+v (listed %v), want %d partitions × 1 replica", adminTopic, d, ok, ecoPartitions)
	}
	md, err := admin.DescribeTopics([]string{adminTopic})
	if err != nil || len(md) != 1 || !errors.Is(md[0].Err, sarama.ErrNoError) || len(md[0].Partitions) != ecoPartitions {
		t.Errorf("sarama DescribeTopics %s: %v %+v", adminTopic, err, md)
	}
	if err := admin.DeleteTopic(adminTopic); err != nil {
		t.Fatalf("sarama DeleteTopic %s: %v", adminTopic, err)
	}
	eventually(t, goEcoTimeout, adminTopic+" to leave sarama's ListTopics", func() bool {
		topics, err := admin.ListTopics()
		_, listed := topics[adminTopic]
		return err == nil && !listed
	})
	checkEcoAdmin(t, kadmin, prefix)

	// 2. Codecs.
	codecs := map[string]sarama.CompressionCodec{
		"gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
		"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
	}
	for _, codec := range goEcoCodecs {
		topic := prefix + "-" + codec
		create(topic)
		pcfg := goEcoSaramaConfig()
		pcfg.Producer.Compression = codecs[codec]
		goEcoSaramaProduce(t, addr, pcfg, topic, codec)
		goEcoSaramaCheckRead(t, addr, topic, codec)
	}
	checkEcoCodecs(t, b, prefix, goEcoCodecs)

	// 3. A group reads the first half of each partition and commits it;
	// a new member resumes exactly after the commit.
	groupTopic := prefix + "-group"
	create(groupTopic)
	goEcoSaramaProduce(t, addr, goEcoSaramaConfig(), groupTopic, "group")
	half := int64(ecoPerPartition / 2)
	first := newGoEcoSaramaHandler(ecoPartitions*int(half), func(m *sarama.ConsumerMessage) bool { return m.Offset < half })
	goEcoSaramaGroupRun(t, addr, groupTopic, groupTopic, first)
	if got := goEcoCommitted(t, kadmin, groupTopic, groupTopic); !goEcoSameCommits(got, goEcoHalfCommitted()) {
		t.Errorf("after the first member: committed %v, want %v", got, goEcoHalfCommitted())
	}
	second := newGoEcoSaramaHandler(ecoPartitions*(ecoPerPartition-int(half)), func(*sarama.ConsumerMessage) bool { return true })
	goEcoSaramaGroupRun(t, addr, groupTopic, groupTopic, second)
	for p := range int32(ecoPartitions) {
		var offsets []int64
		msgs := append(slices.Clone(first.got[p]), second.got[p]...)
		for _, m := range msgs {
			offsets = append(offsets, m.Offset)
			key, value, hdrs := ecoExpected("group", p, int(m.Offset))
			if !bytes.Equal(m.Key, key) || !bytes.Equal(m.Value, value) || !goEcoSaramaSameHeaders(m.Headers, hdrs) {
				t.Errorf("group %s/%d@%d: %q=%q %v, want %q=%q %v", groupTopic, p, m.Offset, m.Key, m.Value, m.Headers, key, value, hdrs)
			}
		}
		goEcoWantOffsets(t, fmt.Sprintf("first member, %s/%d", groupTopic, p), goEcoOffsetsOf(first.got[p]), 0, half)
		goEcoWantOffsets(t, fmt.Sprintf("resumed member, %s/%d", groupTopic, p), goEcoOffsetsOf(second.got[p]), half, ecoPerPartition)
		goEcoWantOffsets(t, fmt.Sprintf("both members, %s/%d", groupTopic, p), offsets, 0, ecoPerPartition)
	}
	checkEcoGroup(t, kadmin, prefix)

	// 4a. The idempotent producer.
	idemTopic := prefix + "-idem"
	create(idemTopic)
	icfg := goEcoSaramaConfig()
	icfg.Producer.Idempotent = true
	icfg.Producer.Retry.Max = 5
	goEcoSaramaProduce(t, addr, icfg, idemTopic, "idem")
	goEcoSaramaCheckRead(t, addr, idemTopic, "idem")
	checkEcoIdempotent(t, b, prefix)

	// 4b. Transactions: committed, aborted, committed, each also sending
	// offsets of PREFIX-group for group PREFIX-eos.
	txnTopic := prefix + "-txn"
	create(txnTopic)
	tcfg := goEcoSaramaConfig()
	tcfg.Producer.Idempotent = true
	tcfg.Producer.Retry.Max = 5
	tcfg.Producer.Transaction.ID = prefix + "-txid"
	tcfg.Producer.Transaction.Timeout = 30 * time.Second
	txp, err := sarama.NewSyncProducer([]string{addr}, tcfg)
	if err != nil {
		t.Fatalf("sarama transactional NewSyncProducer: %v", err)
	}
	defer txp.Close()
	if !txp.IsTransactional() {
		t.Fatal("sarama producer with a transactional id is not transactional")
	}
	eos := prefix + "-eos"
	plan := []struct {
		tag    string
		commit bool
		offset int64
	}{{"committed1", true, 2}, {"aborted", false, 9}, {"committed2", true, 7}}
	for _, step := range plan {
		if err := txp.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn (%s): %v", step.tag, err)
		}
		var msgs []*sarama.ProducerMessage
		for i := range ecoTxnRecords {
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic: txnTopic, Partition: int32(i % ecoPartitions),
				Key: sarama.StringEncoder(step.tag), Value: sarama.StringEncoder(step.tag + "-" + strconv.Itoa(i)),
			})
		}
		if err := txp.SendMessages(msgs); err != nil {
			t.Fatalf("SendMessages in transaction %s: %v", step.tag, err)
		}
		var offs []*sarama.PartitionOffsetMetadata
		for p := range int32(ecoPartitions) {
			offs = append(offs, &sarama.PartitionOffsetMetadata{Partition: p, Offset: step.offset, LeaderEpoch: -1})
		}
		if err := txp.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{groupTopic: offs}, eos); err != nil {
			t.Fatalf("AddOffsetsToTxn (%s): %v", step.tag, err)
		}
		if step.commit {
			err = txp.CommitTxn()
		} else {
			err = txp.AbortTxn()
		}
		if err != nil {
			t.Fatalf("end transaction %s (commit=%v): %v", step.tag, step.commit, err)
		}
		if st := txp.TxnStatus(); st&sarama.ProducerTxnFlagReady == 0 {
			t.Errorf("after transaction %s: producer status %v, want ready", step.tag, st)
		}
		want := map[int32]int64{}
		for p := range int32(ecoPartitions) {
			want[p] = 2 // the first transaction's; the aborted one's 9 must not show
			if step.tag == "committed2" {
				want[p] = 7
			}
		}
		eventually(t, goEcoTimeout, fmt.Sprintf("group %s offsets after transaction %s", eos, step.tag), func() bool {
			return goEcoSameCommits(goEcoCommitted(t, kadmin, eos, groupTopic), want)
		})
	}
	// Per partition p the log holds committed1-{p,p+3}, aborted-{p,p+3},
	// committed2-{p,p+3} (each transaction followed by its marker).
	for _, level := range []struct {
		name string
		iso  sarama.IsolationLevel
		tags []string
	}{
		{"read_committed", sarama.ReadCommitted, []string{"committed1", "committed2"}},
		{"read_uncommitted", sarama.ReadUncommitted, []string{"committed1", "aborted", "committed2"}},
	} {
		for p := range int32(ecoPartitions) {
			var want []string
			for _, tag := range level.tags {
				for i := int(p); i < ecoTxnRecords; i += ecoPartitions {
					want = append(want, tag+"-"+strconv.Itoa(i))
				}
			}
			ccfg := goEcoSaramaConfig()
			ccfg.Consumer.IsolationLevel = level.iso
			var got []string
			for _, m := range goEcoSaramaRead(t, addr, ccfg, txnTopic, p, len(want)) {
				got = append(got, string(m.Value))
			}
			if !slices.Equal(got, want) {
				t.Errorf("sarama %s %s/%d: %v, want %v", level.name, txnTopic, p, got, want)
			}
		}
	}
	checkEcoTransactions(t, b, kadmin, prefix)
}

func goEcoOffsetsOf(msgs []*sarama.ConsumerMessage) []int64 {
	var out []int64
	for _, m := range msgs {
		out = append(out, m.Offset)
	}
	return out
}

// ------------------------------------------------------------- segmentio

// goEcoSegmentioWrite writes every ecoExpected record of codec to topic
// with a kafka.Writer, each on the partition its key names.
func goEcoSegmentioWrite(t *testing.T, addr, topic, codec string, compression kafka.Compression) {
	t.Helper()
	// A Transport of its own: kafka.DefaultTransport is process-wide and
	// serves metadata from a cache (MetadataTTL, 6 s by default) that a
	// topic created through a Conn does not refresh, so a Writer on it
	// fails with UNKNOWN_TOPIC_OR_PARTITION for a topic it has not seen.
	tr := &kafka.Transport{ClientID: "skiff-segmentio-ecosystem"}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:      kafka.TCP(addr),
		Transport: tr,
		Topic:     topic,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
			return goEcoPartitionOf(m.Key)
		}),
		BatchSize:    ecoPerPartition,
		BatchTimeout: 10 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		Compression:  compression,
		MaxAttempts:  5,
	}
	defer w.Close()
	var msgs []kafka.Message
	for p := range int32(ecoPartitions) {
		for i := range ecoPerPartition {
			key, value, hdrs := ecoExpected(codec, p, i)
			m := kafka.Message{Key: key, Value: value}
			for _, h := range hdrs {
				m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
			}
			msgs = append(msgs, m)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), goEcoTimeout)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("%s: segmentio WriteMessages: %v", topic, err)
	}
}

func goEcoSegmentioSameHeaders(got []kafka.Header, want []kgo.RecordHeader) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
			return false
		}
	}
	return true
}

// goEcoSegmentioCheckRead reads every partition of a codec topic with a
// partition Reader and compares each record with ecoExpected.
func goEcoSegmentioCheckRead(t *testing.T, addr, topic, codec string) {
	t.Helper()
	for p := range int32(ecoPartitions) {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{addr}, Topic: topic, Partition: int(p),
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 250 * time.Millisecond,
			ReadBackoffMin: 10 * time.Millisecond, ReadBackoffMax: 100 * time.Millisecond,
		})
		ctx, cancel := context.WithTimeout(context.Background(), goEcoTimeout)
		for i := range ecoPerPartition {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				cancel()
				r.Close()
				t.Fatalf("segmentio read %s/%d #%d: %v", topic, p, i, err)
			}
			key, value, hdrs := ecoExpected(codec, p, i)
			if m.Partition != int(p) || m.Offset != int64(i) || !bytes.Equal(m.Key, key) || !bytes.Equal(m.Value, value) || !goEcoSegmentioSameHeaders(m.Headers, hdrs) {
				t.Errorf("segmentio read %s/%d #%d: %d@%d %q=%q %v, want %q=%q %v",
					topic, p, i, m.Partition, m.Offset, m.Key, m.Value, m.Headers, key, value, hdrs)
			}
		}
		cancel()
		if err := r.Close(); err != nil {
			t.Errorf("segmentio reader close: %v", err)
		}
	}
}

// goEcoSegmentioGroupRead joins group as a fresh Reader and fetches until
// it holds total messages that want accepts, commits exactly those with
// CommitMessages, and closes the reader (leaving the group).
func goEcoSegmentioGroupRead(t *testing.T, addr, group, topic string, total int, want func(kafka.Message) bool) map[int][]kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: group, Topic: topic,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 250 * time.Millisecond,
		CommitInterval:    0, // synchronous commits, by CommitMessages only
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    100 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
		ReadLagInterval:   -1,
	})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("segmentio group reader close: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), goEcoTimeout)
	defer cancel()
	got := map[int][]kafka.Message{}
	var taken []kafka.Message
	for len(taken) < total {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("segmentio group %s: fetched %d of %d: %v", group, len(taken), total, err)
		}
		if !want(m) {
			continue
		}
		got[m.Partition] = append(got[m.Partition], m)
		taken = append(taken, m)
	}
	if err := r.CommitMessages(ctx, taken...); err != nil {
		t.Fatalf("segmentio group %s: CommitMessages: %v", group, err)
	}
	return got
}

// TestSegmentioEcosystem drives segmentio/kafka-go: Conn.CreateTopics on
// the controller, ReadPartitions, DeleteTopics; keyed records with headers
// under all four codecs from a Writer read back exactly by partition
// Readers; a GroupID Reader committing half with CommitMessages and a new
// one resuming after it; and, since kafka-go has no idempotent or
// transactional producer, its ListOffsets and Reader under both isolation
// levels over franz-go's transactions.
func TestSegmentioEcosystem(t *testing.T) {
	b := startBroker(t, ecosystemSettings())
	addr := b.Addr()
	kadmin := newAdmin(t, addr) // franz-go, for the broker's side
	const prefix = "segmentio"

	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("kafka.Dial: %v", err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("segmentio Controller: %v", err)
	}
	cc, err := kafka.Dial("tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatalf("dial the controller %+v: %v", ctrl, err)
	}
	defer cc.Close()
	create := func(topic string) {
		t.Helper()
		if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: ecoPartitions, ReplicationFactor: 1}); err != nil {
			t.Fatalf("segmentio CreateTopics %s: %v", topic, err)
		}
	}
	listed := func(topic string) []kafka.Partition {
		t.Helper()
		all, err := cc.ReadPartitions()
		if err != nil {
			t.Fatalf("segmentio ReadPartitions: %v", err)
		}
		var out []kafka.Partition
		for _, p := range all {
			if p.Topic == topic {
				out = append(out, p)
			}
		}
		return out
	}

	// 1. Admin.
	adminTopic := prefix + "-admin"
	create(adminTopic)
	// Conn.CreateTopics is documented as idempotent: it swallows
	// TOPIC_ALREADY_EXISTS, so creating again must succeed and change nothing.
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: adminTopic, NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Errorf("creating %s again: %v, want nil (kafka-go ignores TOPIC_ALREADY_EXISTS)", adminTopic, err)
	}
	parts := listed(adminTopic)
	var ids []int
	for _, p := range parts {
		ids = append(ids, p.ID)
		if p.Leader.ID != ctrl.ID || len(p.Replicas) != 1 {
			t.Errorf("segmentio ReadPartitions %s/%d: leader %+v replicas %+v, want the controller %+v alone", adminTopic, p.ID, p.Leader, p.Replicas, ctrl)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []int{0, 1, 2}) {
		t.Errorf("segmentio ReadPartitions lists %s with partitions %v, want [0 1 2]", adminTopic, ids)
	}
	if err := cc.DeleteTopics(adminTopic); err != nil {
		t.Fatalf("segmentio DeleteTopics %s: %v", adminTopic, err)
	}
	eventually(t, goEcoTimeout, adminTopic+" to leave segmentio's ReadPartitions", func() bool {
		return len(listed(adminTopic)) == 0
	})
	checkEcoAdmin(t, kadmin, prefix)

	// 2. Codecs.
	codecs := map[string]kafka.Compression{"gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd}
	for _, codec := range goEcoCodecs {
		topic := prefix + "-" + codec
		create(topic)
		goEcoSegmentioWrite(t, addr, topic, codec, codecs[codec])
		goEcoSegmentioCheckRead(t, addr, topic, codec)
	}
	checkEcoCodecs(t, b, prefix, goEcoCodecs)

	// 3. Group commit and resume.
	groupTopic := prefix + "-group"
	create(groupTopic)
	goEcoSegmentioWrite(t, addr, groupTopic, "group", 0)
	half := int64(ecoPerPartition / 2)
	first := goEcoSegmentioGroupRead(t, addr, groupTopic, groupTopic, ecoPartitions*int(half), func(m kafka.Message) bool { return m.Offset < half })
	if got := goEcoCommitted(t, kadmin, groupTopic, groupTopic); !goEcoSameCommits(got, goEcoHalfCommitted()) {
		t.Errorf("after the first reader: committed %v, want %v", got, goEcoHalfCommitted())
	}
	second := goEcoSegmentioGroupRead(t, addr, groupTopic, groupTopic, ecoPartitions*(ecoPerPartition-int(half)), func(kafka.Message) bool { return true })
	for p := range ecoPartitions {
		var firstOffs, secondOffs []int64
		for _, m := range first[p] {
			firstOffs = append(firstOffs, m.Offset)
		}
		for _, m := range second[p] {
			secondOffs = append(secondOffs, m.Offset)
		}
		for _, m := range append(slices.Clone(first[p]), second[p]...) {
			key, value, hdrs := ecoExpected("group", int32(p), int(m.Offset))
			if !bytes.Equal(m.Key, key) || !bytes.Equal(m.Value, value) || !goEcoSegmentioSameHeaders(m.Headers, hdrs) {
				t.Errorf("group %s/%d@%d: %q=%q %v, want %q=%q %v", groupTopic, p, m.Offset, m.Key, m.Value, m.Headers, key, value, hdrs)
			}
		}
		goEcoWantOffsets(t, fmt.Sprintf("first reader, %s/%d", groupTopic, p), firstOffs, 0, half)
		goEcoWantOffsets(t, fmt.Sprintf("resumed reader, %s/%d", groupTopic, p), secondOffs, half, ecoPerPartition)
	}
	checkEcoGroup(t, kadmin, prefix)

	// 4. kafka-go cannot produce idempotently or transactionally (its
	// Writer sends no producer id), so franz-go writes the transactions
	// kafka-go reads: committed1 (offsets 0-5, marker 6), aborted (7-12,
	// marker 13), committed2 (14-19, marker 20), all on partition 0.
	txnTopic := prefix + "-txn"
	create(txnTopic)
	txn := txnClient(t, addr, prefix+"-txid")
	txnValues := func(tag string) []string {
		var vs []string
		for i := range ecoTxnRecords {
			vs = append(vs, tag+"-"+strconv.Itoa(i))
		}
		return vs
	}
	produceTxn(t, txn, txnTopic, true, txnValues("committed1")...)
	produceTxn(t, txn, txnTopic, false, txnValues("aborted")...)
	// committed2 stays open while kafka-go lists the end offsets: the last
	// stable offset (read_committed) stops at its first record, the high
	// watermark (read_uncommitted) does not.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range txnValues("committed2") {
		if err := txn.ProduceSync(testContext(t), &kgo.Record{Topic: txnTopic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce in transaction: %v", err)
		}
	}
	ktr := &kafka.Transport{ClientID: "skiff-segmentio-ecosystem"}
	defer ktr.CloseIdleConnections()
	kc := &kafka.Client{Addr: kafka.TCP(addr), Timeout: goEcoTimeout, Transport: ktr}
	endOffsets := func(iso kafka.IsolationLevel) int64 {
		t.Helper()
		res, err := kc.ListOffsets(testContext(t), &kafka.ListOffsetsRequest{
			Topics: map[string][]kafka.OffsetRequest{txnTopic: {kafka.LastOffsetOf(0)}}, IsolationLevel: iso,
		})
		if err != nil || len(res.Topics[txnTopic]) != 1 || res.Topics[txnTopic][0].Error != nil {
			t.Fatalf("segmentio ListOffsets %s (isolation %d): %v %+v", txnTopic, iso, err, res)
		}
		return res.Topics[txnTopic][0].LastOffset
	}
	if lso, hwm := endOffsets(kafka.ReadCommitted), endOffsets(kafka.ReadUncommitted); lso != 14 || hwm != 20 {
		t.Errorf("segmentio ListOffsets during the open transaction: read_committed %d, read_uncommitted %d, want 14 and 20", lso, hwm)
	}
	if err := txn.EndTransaction(testContext(t), kgo.TryCommit); err != nil {
		t.Fatalf("commit committed2: %v", err)
	}
	if lso, hwm := endOffsets(kafka.ReadCommitted), endOffsets(kafka.ReadUncommitted); lso != 21 || hwm != 21 {
		t.Errorf("segmentio ListOffsets after the commit: read_committed %d, read_uncommitted %d, want 21 and 21", lso, hwm)
	}
	// kafka-go v0.4.51's Reader neither hides control records nor drops
	// aborted ones under ReadCommitted (segmentio/kafka-go#1332; PR #1446,
	// still open, would fix both): it returns each marker as a message with
	// a 4-byte key and a 6-byte value. So both isolation levels must return
	// the whole log, offsets 0-20 in order, with the markers where franz-go
	// ended each transaction.
	for _, level := range []struct {
		name string
		iso  kafka.IsolationLevel
	}{{"read_committed", kafka.ReadCommitted}, {"read_uncommitted", kafka.ReadUncommitted}} {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{addr}, Topic: txnTopic, Partition: 0, IsolationLevel: level.iso,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 250 * time.Millisecond,
		})
		ctx, cancel := context.WithTimeout(context.Background(), goEcoTimeout)
		var data []string
		var markers []int64
		var kinds []string
		for next := int64(0); next <= 20; next++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Errorf("segmentio %s %s: read up to offset %d, then %v", level.name, txnTopic, next, err)
				break
			}
			if m.Offset != next {
				t.Errorf("segmentio %s %s: offset %d, want %d", level.name, txnTopic, m.Offset, next)
			}
			// A control record: key version 0 and type (0 abort, 1
			// commit); value version 0 and the coordinator epoch.
			if len(m.Key) == 4 && len(m.Value) == 6 && bytes.Equal(m.Key[:3], []byte{0, 0, 0}) && m.Key[3] <= 1 {
				markers = append(markers, m.Offset)
				kinds = append(kinds, [...]string{"abort", "commit"}[m.Key[3]])
				continue
			}
			data = append(data, string(m.Value))
		}
		cancel()
		r.Close()
		want := append(append(txnValues("committed1"), txnValues("aborted")...), txnValues("committed2")...)
		if !slices.Equal(data, want) || !slices.Equal(markers, []int64{6, 13, 20}) || !slices.Equal(kinds, []string{"commit", "abort", "commit"}) {
			t.Errorf("segmentio %s %s: data %v, markers %v at %v, want %v and commit, abort, commit at [6 13 20]", level.name, txnTopic, data, kinds, markers, want)
		}
	}
	// franz-go, which filters, sees only the committed ones.
	var committed []string
	for _, r := range consumeN(t, addr, txnTopic, 2*ecoTxnRecords, kgo.FetchIsolationLevel(kgo.ReadCommitted())) {
		committed = append(committed, string(r.Value))
	}
	if want := append(txnValues("committed1"), txnValues("committed2")...); !slices.Equal(committed, want) {
		t.Errorf("franz-go read_committed %s: %v, want %v", txnTopic, committed, want)
	}
}
