package integration

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skiffmq/skiff/coordinator/share"
)

// TestShareStateRecordsKafkaWrote decodes the __share_group_state records
// Apache Kafka itself writes with Skiff's codec, so that the topic's format
// is Kafka's: a share consumer accepts records on the reference Kafka
// (share.version=1), then every record of its __share_group_state must
// decode, and the state they replay to must show them acknowledged.
func TestShareStateRecordsKafkaWrote(t *testing.T) {
	kafka := startKafka(t, kafkaOptions{settings: diffKafkaSettings})
	c := &diffConn{t: t, tgt: &diffTarget{name: "kafka", addr: kafka.addr, admin: newAdmin(t, kafka.addr)}}
	c.enableShareGroups()
	const topic, group = "share-records", "share-records-group"
	c.createTopic(topic, 1, nil)
	produceN(t, kafka.addr, topic, 0, 5, time.Now())
	cl := newClient(t, kafka.addr)
	setShareGroupConfig(t, cl, group, "share.auto.offset.reset", "earliest")

	ctx := testContext(t)
	sc := newClient(t, kafka.addr, kgo.ConsumeTopics(topic), kgo.ShareGroup(group))
	for n := 0; n < 5 && ctx.Err() == nil; {
		fs := sc.PollFetches(ctx)
		n += len(fs.Records())
		sc.MarkAcks(kgo.AckAccept, fs.Records()...)
	}
	if err := sc.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}

	rd := newClient(t, kafka.addr, kgo.ConsumeTopics("__share_group_state"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	rp := share.NewReplay()
	var decoded int
	types := map[int16]int{}
	eventually(t, 30*time.Second, "Kafka's share state for "+group, func() bool {
		pollCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		rd.PollFetches(pollCtx).EachRecord(func(r *kgo.Record) {
			if err := rp.Apply(r.Key, r.Value); err != nil {
				t.Fatalf("Kafka's record at %s/%d@%d does not decode: %v\nkey % x\nvalue % x", r.Topic, r.Partition, r.Offset, err, r.Key, r.Value)
			}
			decoded++
			if k, err := share.DecodeKey(r.Key); err == nil {
				types[k.Type]++
			}
		})
		for pk, st := range rp.State {
			if pk.GroupID != group {
				continue
			}
			// Kafka 4.1 persists the acknowledged batch and moves the
			// start offset in a later write; either form says 0-4 are done.
			if st.StartOffset == 5 {
				return true
			}
			for _, b := range st.Batches {
				if b.First <= st.StartOffset && b.Last >= 4 && b.State == share.StateAcknowledged {
					return true
				}
			}
		}
		return false
	})
	t.Logf("decoded %d __share_group_state records written by Kafka: %d ShareSnapshot, %d ShareUpdate",
		decoded, types[share.RecordSnapshot], types[share.RecordUpdate])
}
