package integration

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/protocol/protocoltest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceRefusesLyingBatches is the regression test for batches whose
// CRC is right but whose records lie (issue 9, finding 5): Skiff stored
// them and consumers silently skipped the poisoned offsets. Each must get
// Kafka's error code with no error message or record errors (Kafka throws
// these as plain InvalidRecordException, not a RecordValidationException),
// leave the log end offset where it was, and the partition must then take
// and serve a normal batch.
func TestProduceRefusesLyingBatches(t *testing.T) {
	b := startBroker(t, nil)
	h := newHealthyClients(t, b.Addr())
	c := dialRaw(t, b.Addr())
	for i, lb := range protocoltest.LyingBatches(time.Now().UnixMilli()) {
		t.Run(lb.Name, func(t *testing.T) {
			topic := fmt.Sprintf("lying-%d", i)
			createTopic(t, h.adm, topic, 1, nil)
			resp := roundTrip(t, c, produceV9(topic, 0, lb.Batch), int32(100+i)).(*kmsg.ProduceResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("response %+v: want one topic with one partition", resp.Topics)
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != lb.Want.Code {
				t.Errorf("partition error %v (%d), want %v (%d)", kerr.ErrorForCode(p.ErrorCode), p.ErrorCode, lb.Want, lb.Want.Code)
			}
			if p.ErrorMessage != nil || len(p.ErrorRecords) != 0 {
				t.Errorf("error message %v and record errors %+v, want neither", p.ErrorMessage, p.ErrorRecords)
			}
			if p.BaseOffset != -1 {
				t.Errorf("base offset %d for a refused batch, want -1", p.BaseOffset)
			}
			if got := endOffset(t, h.adm, topic, 0); got != 0 {
				t.Fatalf("after a refused batch the log end offset is %d, want 0", got)
			}
			resp = roundTrip(t, c, produceV9(topic, 0, recordBatch("after", "the lie")), int32(200+i)).(*kmsg.ProduceResponse)
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
				t.Fatalf("valid batch after the refused one: error %d base offset %d, want 0 and 0", p.ErrorCode, p.BaseOffset)
			}
			got := consumeN(t, b.Addr(), topic, 2)
			for j, want := range []string{"after", "the lie"} {
				if string(got[j].Value) != want || got[j].Offset != int64(j) {
					t.Fatalf("record %d: %q at offset %d, want %q at %d", j, got[j].Value, got[j].Offset, want, j)
				}
			}
		})
	}
	h.check(t)
}

// TestListOffsetsCompressedBombFixedMemory is the regression test for the
// ListOffsets decompression bomb (issue 9, finding 4): every ListOffsets by
// timestamp decoded the whole batch into a slice of records, so a 4 MB
// zstd batch of five million records cost about 740 MB per request. On a
// real skiff process, an honest batch that size is produced (Kafka accepts
// a well-formed batch whatever its compression ratio, within
// max.message.bytes of compressed size), then four ListOffsets by timestamp must find the right
// record while the process's peak resident memory stays under 200 MB.
func TestListOffsetsCompressedBombFixedMemory(t *testing.T) {
	const (
		records = 5_000_000
		perMs   = 1000 // records per millisecond of timestamp
		limitMB = 200
	)
	base := time.Now().UnixMilli() - 10_000
	batch, err := protocoltest.CompressibleBatch(records, base, perMs)
	if err != nil {
		t.Fatal(err)
	}
	p := startSkiff(t, buildSkiff(t), t.TempDir())
	adm := newAdmin(t, p.addr)
	const topic = "bomb"
	maxBytes := strconv.Itoa(8 << 20)
	createTopic(t, adm, topic, 1, map[string]*string{"max.message.bytes": &maxBytes})

	c := dialRaw(t, p.addr)
	// The finding's own bomb, 9 million records whose offset deltas are
	// all 0, is no longer stored: it lies about every offset after the
	// first, and Produce refuses it at the second record.
	bomb, err := protocoltest.ZeroDeltaBomb(9_000_000, base)
	if err != nil {
		t.Fatal(err)
	}
	resp := roundTrip(t, c, produceV9(topic, 0, bomb), 1).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRecord.Code {
		t.Fatalf("producing the %d-byte zero-delta bomb: %v, want INVALID_RECORD", len(bomb), kerr.ErrorForCode(code))
	}
	resp = roundTrip(t, c, produceV9(topic, 0, batch), 2).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("producing the %d-byte batch of %d records: %v", len(batch), records, kerr.ErrorForCode(code))
	}

	// The first record at or after a timestamp near the batch's end.
	target := base + (records-perMs/2)/perMs
	wantOffset := (target - base) * perMs
	for i := range 4 {
		listed, err := adm.ListOffsetsAfterMilli(testContext(t), target, topic)
		if err != nil {
			t.Fatalf("ListOffsets %d: %v", i, err)
		}
		o, ok := listed.Lookup(topic, 0)
		if !ok || o.Err != nil || o.Offset != wantOffset || o.Timestamp != target {
			t.Fatalf("ListOffsets %d: %+v, want offset %d at timestamp %d", i, o, wantOffset, target)
		}
	}
	hwm := vmHWM(t, p)
	t.Logf("skiff peak resident memory after producing and 4 ListOffsets: %d MB", hwm>>20)
	if hwm > limitMB<<20 {
		t.Fatalf("skiff peak resident memory %d MB, want under %d MB", hwm>>20, limitMB)
	}
}

// TestProduceFixesUnderstatedMaxTimestamp is the regression test for a
// batch whose header understates its records' max timestamp: Skiff stored
// the header's value, which the time index and ListOffsets trust, so the
// later record could not be found by its timestamp. Kafka sets a CreateTime
// batch's max timestamp from its records (LogValidator), and so must Skiff.
func TestProduceFixesUnderstatedMaxTimestamp(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	const topic = "understated"
	createTopic(t, adm, topic, 1, nil)
	base := time.Now().Add(-time.Hour).UnixMilli()
	// Two records 5 s apart; RawBatch's header says base for both the
	// first and the max timestamp.
	records := protocol.AppendRecord(nil, protocol.Record{OffsetDelta: 0, Value: []byte("early")})
	records = protocol.AppendRecord(records, protocol.Record{OffsetDelta: 1, TimestampDelta: 5000, Value: []byte("late")})
	c := dialRaw(t, b.Addr())
	resp := roundTrip(t, c, produceV9(topic, 0, protocoltest.RawBatch(protocol.CodecNone, 2, 1, base, records)), 1).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
	ctx := testContext(t)
	listed, err := adm.ListOffsetsAfterMilli(ctx, base+1, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := listed.Lookup(topic, 0); o.Err != nil || o.Offset != 1 || o.Timestamp != base+5000 {
		t.Errorf("first record after base+1ms: offset %d timestamp %d (%v), want 1 at %d", o.Offset, o.Timestamp, o.Err, base+5000)
	}
	maxTS, err := adm.ListMaxTimestampOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := maxTS.Lookup(topic, 0); m.Err != nil || m.Offset != 1 || m.Timestamp != base+5000 {
		t.Errorf("max timestamp: offset %d timestamp %d (%v), want 1 at %d", m.Offset, m.Timestamp, m.Err, base+5000)
	}
}

// TestProduceRefusesRecordOlderThanItsBatch is the regression test for the
// timestamp window being checked against the batch's first timestamp only:
// a later record with a negative timestamp delta could be older than
// message.timestamp.before.max.ms allows. Kafka checks every record.
func TestProduceRefusesRecordOlderThanItsBatch(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	const topic = "old-record"
	hour := strconv.Itoa(int(time.Hour / time.Millisecond))
	createTopic(t, adm, topic, 1, map[string]*string{"message.timestamp.before.max.ms": &hour})
	now := time.Now().UnixMilli()
	records := protocol.AppendRecord(nil, protocol.Record{OffsetDelta: 0, Value: []byte("now")})
	records = protocol.AppendRecord(records, protocol.Record{OffsetDelta: 1, TimestampDelta: -2 * time.Hour.Milliseconds(), Value: []byte("two hours ago")})
	c := dialRaw(t, b.Addr())
	resp := roundTrip(t, c, produceV9(topic, 0, protocoltest.RawBatch(protocol.CodecNone, 2, 1, now, records)), 1).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTimestamp.Code {
		t.Fatalf("produce: %v, want INVALID_TIMESTAMP", kerr.ErrorForCode(code))
	}
	if got := endOffset(t, adm, topic, 0); got != 0 {
		t.Fatalf("log end offset %d after a refused batch, want 0", got)
	}
}

// TestProduceCompactedTopicRefusesNullKeys: a compacted topic keeps the
// latest record per key, so Kafka refuses records without one
// (LogValidator.validateKey) with INVALID_RECORD, one record error per
// keyless record and a message that counts them and shows the first three.
// Skiff accepted them.
func TestProduceCompactedTopicRefusesNullKeys(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	const topic = "compacted"
	compact := "compact,delete"
	createTopic(t, adm, topic, 1, map[string]*string{"cleanup.policy": &compact})
	var records []byte
	for i, key := range []string{"k", "", "k", "", "", "", "k"} {
		r := protocol.Record{OffsetDelta: int32(i), Value: []byte("v")}
		if key != "" {
			r.Key = []byte(key)
		}
		records = protocol.AppendRecord(records, r)
	}
	c := dialRaw(t, b.Addr())
	resp := roundTrip(t, c, produceV9(topic, 0, protocoltest.RawBatch(protocol.CodecNone, 7, 6, time.Now().UnixMilli(), records)), 1).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("produce: %v, want INVALID_RECORD", kerr.ErrorForCode(p.ErrorCode))
	}
	perRecord := "Compacted topic cannot accept message without key in topic partition compacted-0"
	var got []int32
	for _, e := range p.ErrorRecords {
		if e.ErrorMessage == nil || *e.ErrorMessage != perRecord {
			t.Errorf("record %d error message %v, want %q", e.RelativeOffset, e.ErrorMessage, perRecord)
		}
		got = append(got, e.RelativeOffset)
	}
	if fmt.Sprint(got) != "[1 3 4 5]" {
		t.Errorf("record errors for records %v, want [1 3 4 5]", got)
	}
	want := "One or more records have been rejected due to 4 record errors in total, and only showing the first three errors at most: [" +
		"RecordError(batchIndex=1, message='" + perRecord + "'), " +
		"RecordError(batchIndex=3, message='" + perRecord + "'), " +
		"RecordError(batchIndex=4, message='" + perRecord + "')]"
	if p.ErrorMessage == nil || *p.ErrorMessage != want {
		t.Errorf("error message %v,\nwant %q", p.ErrorMessage, want)
	}
	if got := endOffset(t, adm, topic, 0); got != 0 {
		t.Fatalf("log end offset %d after a refused batch, want 0", got)
	}
	resp = roundTrip(t, c, produceV9(topic, 0, protocoltest.RawBatch(protocol.CodecNone, 1, 0, time.Now().UnixMilli(),
		protocol.AppendRecord(nil, protocol.Record{Key: []byte("k"), Value: []byte("keyed")}))), 2).(*kmsg.ProduceResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("keyed record: error %d base offset %d, want 0 and 0", p.ErrorCode, p.BaseOffset)
	}
}
