package integration

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Amplification: small requests must not cost the broker memory far beyond
// their own size and the configured response caps (issue 9, finding 3).
// These run against a real skiff process so that its peak RSS (VmHWM) can
// be read from /proc.

const (
	ampPartitionBytes = 256 << 20
	ampValueBytes     = 256 << 10
	// kafkaFetchMaxBytes is Kafka's fetch.max.bytes default (KIP-541).
	kafkaFetchMaxBytes = 57671680
	// ampRSSLimit is acceptance 2: no small request drives RSS above this.
	ampRSSLimit = 200 << 20
)

func TestAmplificationBoundsBrokerMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the broker's peak RSS")
	}
	started := time.Now()
	bin := buildSkiff(t)
	p := startSkiff(t, bin, t.TempDir())
	adm := newAdmin(t, p.addr)
	const topic = "amplified"
	createTopic(t, adm, topic, 1, nil)
	loadPartition(t, p.addr, topic, ampPartitionBytes)
	t.Logf("loaded %d MB in %v; broker VmHWM %d MB", ampPartitionBytes>>20, time.Since(started).Round(time.Millisecond), vmHWM(t, p)>>20)
	assertHWM(t, p, "after loading the partition")

	t.Run("DuplicatePartitionFetch", func(t *testing.T) {
		// 64 copies of one partition, each asking for 2 GB: Kafka keeps
		// one entry per partition (the last copy's fields win) and caps
		// the response at fetch.max.bytes.
		req := hugeFetch(topic, 0)
		one := req.Topics[0].Partitions[0]
		for range 63 {
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, one)
		}
		const lastOffset = 500
		req.Topics[0].Partitions[63].FetchOffset = lastOffset
		resp := roundTrip(t, dialRaw(t, p.addr), req, 1).(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("response has %d topics, first with %d partitions; want one entry for the duplicated partition", len(resp.Topics), len(resp.Topics[0].Partitions))
		}
		rp := resp.Topics[0].Partitions[0]
		checkFetchedPartition(t, rp)
		// The first batch's base offset and last offset delta (batch v2).
		base := int64(binary.BigEndian.Uint64(rp.RecordBatches))
		last := base + int64(int32(binary.BigEndian.Uint32(rp.RecordBatches[23:])))
		if base > lastOffset || last < lastOffset {
			t.Fatalf("first batch holds offsets %d-%d; want the one with the last copy's fetch offset %d", base, last, lastOffset)
		}
		assertHWM(t, p, "after a fetch naming one partition 64 times")
	})

	t.Run("ConcurrentHugeFetches", func(t *testing.T) {
		var wg sync.WaitGroup
		resps := make([]*kmsg.FetchResponse, 4)
		conns := make([]*goroutineConn, 4)
		for i := range conns {
			conns[i] = &goroutineConn{c: dialRaw(t, p.addr)}
		}
		errs := make(chan error, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Different offsets so the reads do not share pages.
				resp, err := conns[i].fetch(hugeFetch(topic, int64(i)*100))
				resps[i] = resp
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i, resp := range resps {
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("fetch %d: %d topics in the response, want 1", i, len(resp.Topics))
			}
			checkFetchedPartition(t, resp.Topics[0].Partitions[0])
		}
		assertHWM(t, p, "after four concurrent fetches with max_bytes 2^31-1")
	})

	t.Run("MetadataEmptyTopicNames", func(t *testing.T) {
		// 8M empty names in a 16 MB request: Kafka answers each distinct
		// name once, and "" is INVALID_TOPIC_EXCEPTION.
		const names = 8 << 20
		body := make([]byte, 0, 4+2*names+3)
		body = binary.BigEndian.AppendUint32(body, names)
		body = append(body, make([]byte, 2*names)...) // int16 length 0, names times
		body = append(body, 1, 0, 0)                  // allow auto-creation; no authorized operations
		c := dialRaw(t, p.addr)
		sendRaw(t, c, rawFrame(int16(kmsg.Metadata), 8, 7, body))
		corr, rest := readResponse(t, c)
		if corr != 7 {
			t.Fatalf("correlation id %d, want 7", corr)
		}
		resp := kmsg.NewPtrMetadataResponse()
		resp.Version = 8
		if err := resp.ReadFrom(rest); err != nil {
			t.Fatalf("decoding the metadata response (%d bytes): %v", len(rest), err)
		}
		if len(resp.Topics) != 1 {
			t.Fatalf("metadata response has %d topics for %d copies of the empty name, want 1", len(resp.Topics), names)
		}
		mt := resp.Topics[0]
		if mt.Topic == nil || *mt.Topic != "" || mt.ErrorCode != kerr.InvalidTopicException.Code {
			t.Fatalf("empty name answered as topic %v with error %d, want \"\" with INVALID_TOPIC_EXCEPTION (%d)", mt.Topic, mt.ErrorCode, kerr.InvalidTopicException.Code)
		}
		assertHWM(t, p, "after a metadata request of 8M empty topic names")
	})

	t.Run("DescribeConfigsRepeatedTopic", func(t *testing.T) {
		// Under 1 MB naming one topic ~70K times, with synonyms and
		// documentation: each copy would be answered with every config.
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version = 4
		req.IncludeSynonyms, req.IncludeDocumentation = true, true
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		for len(req.Resources)*14 < 1000<<10 {
			req.Resources = append(req.Resources, rr)
		}
		frame := encodeRequest(req, 9)
		if len(frame) >= 1<<20 {
			t.Fatalf("request is %d bytes, want under 1 MB", len(frame))
		}
		resp := roundTrip(t, dialRaw(t, p.addr), req, 9).(*kmsg.DescribeConfigsResponse)
		if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 || len(resp.Resources[0].Configs) == 0 {
			t.Fatalf("%d resources in the response to %d copies of one; want one, with its configs", len(resp.Resources), len(req.Resources))
		}
		assertHWM(t, p, "after a DescribeConfigs naming one topic 70K times")
	})

	t.Run("RoundTripAfterwards", func(t *testing.T) {
		createTopic(t, adm, "after-amplification", 1, nil)
		cl := newClient(t, p.addr, kgo.ConsumeTopics("after-amplification"))
		ctx := testContext(t)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "after-amplification", Value: []byte("still here")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatal("the record produced after the amplification cases was not consumed")
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
			if recs := fs.Records(); len(recs) > 0 {
				if string(recs[0].Value) != "still here" {
					t.Fatalf("consumed %q", recs[0].Value)
				}
				break
			}
		}
		assertHWM(t, p, "at the end")
	})
	t.Logf("total %v; broker VmHWM %d MB", time.Since(started).Round(time.Millisecond), vmHWM(t, p)>>20)
}

// hugeFetch is a sessionless fetch of one partition from offset that asks
// for as much as the protocol allows.
func hugeFetch(topic string, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12 // by name, flexible
	req.ReplicaID = -1
	req.MaxBytes = 1<<31 - 1
	req.MinBytes = 1
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1<<31 - 1
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// checkFetchedPartition asserts a fetched partition has records and no more
// than the broker's fetch.max.bytes.
func checkFetchedPartition(t *testing.T, rp kmsg.FetchResponseTopicPartition) {
	t.Helper()
	if rp.ErrorCode != 0 {
		t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
	}
	if n := len(rp.RecordBatches); n == 0 || n > kafkaFetchMaxBytes {
		t.Fatalf("partition %d: %d bytes of records, want 1..%d (fetch.max.bytes)", rp.Partition, n, kafkaFetchMaxBytes)
	}
}

// goroutineConn sends a request and decodes its response without the testing.T
// helpers, for use from several goroutines.
type goroutineConn struct {
	c interface {
		Write([]byte) (int, error)
		Read([]byte) (int, error)
		SetDeadline(time.Time) error
	}
}

func (r *goroutineConn) fetch(req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	r.c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := r.c.Write(encodeRequest(req, 3)); err != nil {
		return nil, fmt.Errorf("writing fetch: %w", err)
	}
	br := bufio.NewReader(r.c)
	var size [4]byte
	if _, err := io.ReadFull(br, size[:]); err != nil {
		return nil, fmt.Errorf("reading fetch response size: %w", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(br, frame); err != nil {
		return nil, fmt.Errorf("reading fetch response: %w", err)
	}
	rest, err := skipTagSection(frame[4:])
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if err := resp.ReadFrom(rest); err != nil {
		return nil, fmt.Errorf("decoding fetch response: %w", err)
	}
	return resp, nil
}

// loadPartition fills partition 0 of topic with about n bytes of record
// values, in large batches.
func loadPartition(t *testing.T, addr, topic string, n int) {
	t.Helper()
	cl := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(10*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedBytes(16<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testContext(t)
	value := bytes.Repeat([]byte("amplify "), ampValueBytes/8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range n / ampValueBytes {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("loading %s: %v", topic, firstErr)
	}
}

// vmHWM returns the broker's peak resident set size, in bytes.
func vmHWM(t *testing.T, p *skiffProcess) int64 {
	t.Helper()
	return procStatusKB(t, p.cmd.Process.Pid, "VmHWM") << 10
}

func assertHWM(t *testing.T, p *skiffProcess, when string) {
	t.Helper()
	hwm := vmHWM(t, p)
	t.Logf("broker VmHWM %d MB %s", hwm>>20, when)
	if hwm > ampRSSLimit {
		t.Fatalf("broker peak RSS %d MB %s, want at most %d MB", hwm>>20, when, ampRSSLimit>>20)
	}
}

// TestFetchLimitsFromBrokerConfig checks the broker-side fetch limits on an
// embedded broker: fetch.max.bytes caps a fetch that asks for 2 GB, and
// with fetch.memory.pool.bytes exhausted a fetch still returns its first
// batch, so a consumer reads everything one batch at a time.
func TestFetchLimitsFromBrokerConfig(t *testing.T) {
	const batches, batchBytes = 8, 100 << 10
	load := func(t *testing.T, addr string) {
		createTopic(t, newAdmin(t, addr), "limited", 1, nil)
		cl := newClient(t, addr, kgo.DefaultProduceTopic("limited"), kgo.ProducerBatchCompression(kgo.NoCompression()))
		for i := range batches {
			// One ProduceSync per record: one batch each.
			v := bytes.Repeat([]byte{byte('a' + i)}, batchBytes)
			if err := cl.ProduceSync(testContext(t), &kgo.Record{Value: v}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	fetched := func(t *testing.T, addr string) []byte {
		resp := roundTrip(t, dialRaw(t, addr), hugeFetch("limited", 0), 1).(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("unexpected fetch response %+v", resp.Topics)
		}
		return resp.Topics[0].Partitions[0].RecordBatches
	}

	t.Run("FetchMaxBytesCapsHugeMaxBytes", func(t *testing.T) {
		b := startBroker(t, map[string]string{"fetch.max.bytes": "300000"})
		load(t, b.Addr())
		if n := len(fetched(t, b.Addr())); n > 300000 || n < 2*batchBytes {
			t.Fatalf("fetch with max_bytes 2^31-1 returned %d bytes; want whole batches up to fetch.max.bytes 300000", n)
		}
	})
	t.Run("EmptyPoolDoesNotCutFetchesThatCopyNothing", func(t *testing.T) {
		// Records go from the segment files to the socket: a fetch holds
		// none of them in memory, so fetch.memory.pool.bytes (which counts
		// copied bytes only) does not cut it even when empty.
		b := startBroker(t, map[string]string{"fetch.memory.pool.bytes": "0"})
		load(t, b.Addr())
		recs := fetched(t, b.Addr())
		if n := len(recs); n != batches*(batchBytes+72) {
			t.Fatalf("fetch with an empty pool returned %d bytes, want all %d batches", n, batches)
		}
		got := readPartitions(t, b.Addr(), "limited", 1)
		if len(got[0]) != batches {
			t.Fatalf("consumer read %d records through an empty pool, want %d", len(got[0]), batches)
		}
	})
	t.Run("PoolGivenBackAfterFetches", func(t *testing.T) {
		b := startBroker(t, nil)
		load(t, b.Addr())
		// A consumer reading everything, long polls at the end included,
		// then a fetch whose connection closes before its answer is read.
		readPartitions(t, b.Addr(), "limited", 1)
		c := dialRaw(t, b.Addr())
		sendRaw(t, c, encodeRequest(hugeFetch("limited", 0), 1))
		c.Close()
		eventually(t, 10*time.Second, "the fetch pool and the segment files to be given back", func() bool {
			st := b.Stats()
			return st.FetchBytesHeld == 0 && st.FetchReadsHeld == 0
		})
	})
}

// TestRepeatedNamesAnsweredOnce checks the APIs whose answer to one name is
// far larger than the name: a request repeating the name gets one answer
// (Kafka's set semantics for Metadata and DescribeLogDirs; Skiff's choice
// for the describe APIs, where Kafka answers every copy).
func TestRepeatedNamesAnsweredOnce(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, newAdmin(t, b.Addr()), "named", 3, nil)
	// Three records in partition 1 from an idempotent producer (kgo's
	// default), for DeleteRecords and DescribeProducers.
	cl := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for range 3 {
		if err := cl.ProduceSync(testContext(t), &kgo.Record{Topic: "named", Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	c := dialRaw(t, b.Addr())
	corr := int32(0)
	send := func(req kmsg.Request) kmsg.Response {
		corr++
		return roundTrip(t, c, req, corr)
	}
	const copies = 1000

	t.Run("Metadata", func(t *testing.T) {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		for range copies {
			for _, n := range []string{"named", ""} {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(n)
				req.Topics = append(req.Topics, rt)
			}
		}
		resp := send(req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 2 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 3 ||
			resp.Topics[1].Topic == nil || *resp.Topics[1].Topic != "" || resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
			t.Fatalf("metadata for %d copies of two names: %d topics; want named with 3 partitions, then \"\" with INVALID_TOPIC_EXCEPTION", copies, len(resp.Topics))
		}
	})
	t.Run("DescribeConfigs", func(t *testing.T) {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version = 4
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "named"
		for range copies {
			req.Resources = append(req.Resources, rr)
		}
		if resp := send(req).(*kmsg.DescribeConfigsResponse); len(resp.Resources) != 1 {
			t.Fatalf("%d resources answered for %d copies of one", len(resp.Resources), copies)
		}
	})
	t.Run("DescribeGroups", func(t *testing.T) {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version = 5
		for range copies {
			req.Groups = append(req.Groups, "g1", "g2")
		}
		resp := send(req).(*kmsg.DescribeGroupsResponse)
		if len(resp.Groups) != 2 || resp.Groups[0].Group != "g1" || resp.Groups[1].Group != "g2" {
			t.Fatalf("%d groups answered for %d copies of g1, g2", len(resp.Groups), copies)
		}
	})
	t.Run("ConsumerGroupDescribe", func(t *testing.T) {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		for range copies {
			req.Groups = append(req.Groups, "g1")
		}
		if resp := send(req).(*kmsg.ConsumerGroupDescribeResponse); len(resp.Groups) != 1 {
			t.Fatalf("%d groups answered for %d copies of one", len(resp.Groups), copies)
		}
	})
	t.Run("OffsetFetchAllTopics", func(t *testing.T) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 8
		for range copies {
			g := kmsg.NewOffsetFetchRequestGroup()
			g.Group = "g1"
			req.Groups = append(req.Groups, g)
		}
		if resp := send(req).(*kmsg.OffsetFetchResponse); len(resp.Groups) != 1 {
			t.Fatalf("%d groups answered for %d copies of one", len(resp.Groups), copies)
		}
	})
	t.Run("DeleteRecords", func(t *testing.T) {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.Version = 2
		for range copies {
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = "named"
			for _, off := range []int64{2, 1} {
				rp := kmsg.NewDeleteRecordsRequestTopicPartition()
				rp.Partition, rp.Offset = 1, off
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp := send(req).(*kmsg.DeleteRecordsResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%d topics answered for %d copies of one partition; want one, with one partition", len(resp.Topics), 2*copies)
		}
		// Kafka keeps the last offset named for a partition.
		if rp := resp.Topics[0].Partitions[0]; rp.ErrorCode != 0 || rp.LowWatermark != 1 {
			t.Fatalf("delete records to 2 then 1: error %d, low watermark %d; want the last, 1", rp.ErrorCode, rp.LowWatermark)
		}
	})
	t.Run("DescribeProducers", func(t *testing.T) {
		req := kmsg.NewPtrDescribeProducersRequest()
		for range copies {
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic = "named"
			rt.Partitions = []int32{1, 1}
			req.Topics = append(req.Topics, rt)
		}
		resp := send(req).(*kmsg.DescribeProducersResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || len(resp.Topics[0].Partitions[0].ActiveProducers) == 0 {
			t.Fatalf("%d topics answered for %d copies of one partition; want one, with one partition and its producers", len(resp.Topics), 2*copies)
		}
	})
	t.Run("DescribeTransactions", func(t *testing.T) {
		req := kmsg.NewPtrDescribeTransactionsRequest()
		for range copies {
			req.TransactionalIDs = append(req.TransactionalIDs, "tx")
		}
		if resp := send(req).(*kmsg.DescribeTransactionsResponse); len(resp.TransactionStates) != 1 {
			t.Fatalf("%d transactions answered for %d copies of one", len(resp.TransactionStates), copies)
		}
	})
	t.Run("DescribeLogDirs", func(t *testing.T) {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Version = 4
		for range copies {
			rt := kmsg.NewDescribeLogDirsRequestTopic()
			rt.Topic = "named"
			rt.Partitions = []int32{2, 0, 2}
			req.Topics = append(req.Topics, rt)
		}
		resp := send(req).(*kmsg.DescribeLogDirsResponse)
		if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 1 || len(resp.Dirs[0].Topics[0].Partitions) != 2 {
			t.Fatalf("log dirs for %d copies of partitions 2, 0, 2: %d dirs; want one, with one topic with two partitions", copies, len(resp.Dirs))
		}
	})
}

// TestCreateBeyondKafkaRecordLimitFailsWhole checks Kafka's bound on one
// admin operation (10000 metadata records: a topic record, one per
// partition, one per config): beyond it the whole request fails with
// POLICY_VIOLATION, so a few bytes cannot ask for billions of partitions.
func TestCreateBeyondKafkaRecordLimitFailsWhole(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "grown", 1, nil)
	c := dialRaw(t, b.Addr())
	create := func(validateOnly bool, partitions ...int32) *kmsg.CreateTopicsResponse {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 7
		req.ValidateOnly = validateOnly
		for i, n := range partitions {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic = fmt.Sprintf("wide-%d", i)
			rt.NumPartitions, rt.ReplicationFactor = n, 1
			req.Topics = append(req.Topics, rt)
		}
		return roundTrip(t, c, req, 1).(*kmsg.CreateTopicsResponse)
	}
	expect := func(resp *kmsg.CreateTopicsResponse, code int16) {
		t.Helper()
		for _, st := range resp.Topics {
			if st.ErrorCode != code {
				t.Fatalf("topic %s: error %d (%v), want %d", st.Topic, st.ErrorCode, st.ErrorMessage, code)
			}
		}
	}
	// Two topic records plus 9998 partition records: at the limit.
	expect(create(true, 4999, 4999), 0)
	// One more partition: every topic fails, even the small one.
	expect(create(true, 5000, 4999), kerr.PolicyViolation.Code)
	expect(create(false, 1<<31-1, 1), kerr.PolicyViolation.Code)
	if ids := existingTopics(t, adm); ids["wide-0"] || ids["wide-1"] {
		t.Fatalf("a failed oversized CreateTopics created topics: %v", ids)
	}

	// Auto-creation through Metadata: Kafka sends the missing topics to its
	// controller as one CreateTopics, which fails whole beyond the bound,
	// and answers each topic UNKNOWN_TOPIC_OR_PARTITION.
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	md.AllowAutoTopicCreation = true
	for i := range 5001 { // a topic record and a partition record each
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(fmt.Sprintf("auto-%d", i))
		md.Topics = append(md.Topics, rt)
	}
	mresp := roundTrip(t, c, md, 3).(*kmsg.MetadataResponse)
	if len(mresp.Topics) != len(md.Topics) {
		t.Fatalf("metadata answered %d of %d topics", len(mresp.Topics), len(md.Topics))
	}
	for _, mt := range mresp.Topics {
		if mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("auto-creating 5001 topics: %v answered with error %d, want UNKNOWN_TOPIC_OR_PARTITION", *mt.Topic, mt.ErrorCode)
		}
	}
	if ids := existingTopics(t, adm); ids["auto-0"] {
		t.Fatal("a Metadata request beyond the bound auto-created topics")
	}

	grow := func(count int32) *kmsg.CreatePartitionsResponse {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Version = 3
		req.ValidateOnly = true
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "grown", count
		req.Topics = append(req.Topics, rt)
		return roundTrip(t, c, req, 2).(*kmsg.CreatePartitionsResponse)
	}
	if resp := grow(10001); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("adding 10000 partitions: error %d, want none", resp.Topics[0].ErrorCode)
	}
	if resp := grow(1<<31 - 1); resp.Topics[0].ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("adding 2^31-2 partitions: error %d, want POLICY_VIOLATION", resp.Topics[0].ErrorCode)
	}
}

// existingTopics lists the topics that exist.
func existingTopics(t *testing.T, adm *kadm.Client) map[string]bool {
	t.Helper()
	details, err := adm.ListTopics(testContext(t))
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	out := map[string]bool{}
	for name := range details {
		out[name] = true
	}
	return out
}
