package integration

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// tenBatchShareFetcher makes topic with ten batches of one uncompressed
// 1000-byte record each, joins a share group reading it from the start,
// and returns a ShareFetch of that member with the given limits and
// acquire mode, answering the acquired ranges.
func tenBatchShareFetcher(t *testing.T, topic string) func(maxBytes, maxRecords, batchSize int32, mode int8) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	group := topic + "-group"
	createTopic(t, adm, topic, 1, nil)
	prod := newClient(t, b.Addr(), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for range 10 {
		if err := prod.ProduceSync(testContext(t), &kgo.Record{Topic: topic, Value: bytes.Repeat([]byte{'x'}, 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl := newClient(t, b.Addr())
	setShareGroupConfig(t, cl, group, "share.auto.offset.reset", "earliest")
	tds, err := adm.ListTopics(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	m := joinShareGroup(t, cl, group, "member-1", topic, tds[topic].ID)

	return func(maxBytes, maxRecords, batchSize int32, mode int8) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
		t.Helper()
		req := kmsg.NewPtrShareFetchRequest()
		req.GroupID, req.MemberID, req.ShareSessionEpoch = &m.group, &m.id, m.sessionEpoch
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords, req.BatchSize = 1000, 1, maxBytes, maxRecords, batchSize
		req.ShareAcquireMode = mode
		if m.sessionEpoch == 0 {
			rt := kmsg.NewShareFetchRequestTopic()
			rt.TopicID = m.topicID
			rt.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(testContext(t), cl)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("ShareFetch MaxBytes %d: %v %+v", maxBytes, err, resp)
		}
		m.sessionEpoch++
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if len(rp.Records) > int(maxBytes) && len(rp.AcquiredRecords) > 1 {
					t.Errorf("MaxBytes %d answered %d bytes of records", maxBytes, len(rp.Records))
				}
				return rp.AcquiredRecords
			}
		}
		return nil
	}
}

// TestShareFetchBatchSizeSplitsAcquiredRanges: in batch-optimized mode
// (ShareAcquireMode 0) the acquired records come in ranges cut at log
// batch boundaries once BatchSize offsets are covered, as Kafka's
// SharePartition.createBatches; record-limit mode (1) answers one range.
func TestShareFetchBatchSizeSplitsAcquiredRanges(t *testing.T) {
	fetch := tenBatchShareFetcher(t, "share-batchsize")
	want := []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{acquired(0, 2, 1), acquired(3, 5, 1), acquired(6, 6, 1)}
	if got := fetch(1<<20, 7, 3, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("batch-optimized, MaxRecords 7, BatchSize 3: acquired %+v, want %+v", got, want)
	}
	want = []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{acquired(7, 9, 1)}
	if got := fetch(1<<20, 7, 2, 1); !reflect.DeepEqual(got, want) {
		t.Fatalf("record-limit, BatchSize 2: acquired %+v, want %+v", got, want)
	}
}

// TestShareFetchMaxBytesBoundsAcquisition: a ShareFetch acquires only the
// records of the log bytes its MaxBytes covers, at least one whole batch,
// as Kafka's DelayedShareFetch reads the log and acquires from what it
// read. Skiff acquired up to MaxRecords whatever MaxBytes said, so a
// client asking for little data got every record locked to it.
func TestShareFetchMaxBytesBoundsAcquisition(t *testing.T) {
	fetch := tenBatchShareFetcher(t, "share-maxbytes")
	fetchBytes := func(maxBytes int32) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
		t.Helper()
		return fetch(maxBytes, 100, 100, 0)
	}

	// Two batches (about 1070 bytes each) fit in 2500 bytes; the third does not.
	if got, want := fetchBytes(2500), []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{acquired(0, 1, 1)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("MaxBytes 2500 acquired %+v, want %+v", got, want)
	}
	// Less than one batch still gives one whole batch.
	if got, want := fetchBytes(10), []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{acquired(2, 2, 1)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("MaxBytes 10 acquired %+v, want %+v", got, want)
	}
	// No bytes asked for, nothing fetched (Kafka's processShareFetch).
	if got := fetchBytes(0); len(got) != 0 {
		t.Fatalf("MaxBytes 0 acquired %+v, want nothing", got)
	}
	// Enough bytes: the rest, up to MaxRecords.
	if got, want := fetchBytes(1<<20), []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{acquired(3, 9, 1)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("MaxBytes 1MiB acquired %+v, want %+v", got, want)
	}
}
