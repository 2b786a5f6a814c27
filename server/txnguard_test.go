package server

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/skiffmq/skiff/coordinator/txn"
)

// txnRecordBatch is a one-record transactional magic-2 batch of producer
// pid at epoch, sequence seq.
func txnRecordBatch(pid int64, epoch int16, seq int32, value string) []byte {
	now := time.Now().UnixMilli()
	r := kmsg.Record{Value: []byte(value)}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	records := r.AppendTo(nil)
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: 0x10, // transactional
		FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq,
		NumRecords: 1, Records: records,
	}
	b.Length = int32(49 + len(records))
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// TestLateTxnBatchRefusedAfterMarker drives the race KIP-890's verification
// guard closes, deterministically: a transactional produce is verified by
// the coordinator (Produce v11) or adds its partition (v12), and before its
// append the transaction is aborted, its marker written. Before the guard,
// the v11 batch was appended after the marker, leaving a transaction open
// in the partition that no marker would close (the last stable offset
// stuck below it); now the append refuses it, under the partition lock,
// with INVALID_TXN_STATE as Kafka does.
func TestLateTxnBatchRefusedAfterMarker(t *testing.T) {
	srv, err := New(Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: zerolog.New(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	var hook struct {
		sync.Mutex
		end func()
	}
	srv.afterTxnVerify = func(string, int32) {
		hook.Lock()
		end := hook.end
		hook.end = nil
		hook.Unlock()
		if end != nil {
			end()
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	const topic = "late"
	if _, err := srv.meta.createTopic(topic, 2, nil); err != nil {
		t.Fatal(err)
	}

	for partition, version := range []int16{11, 12} {
		t.Run(fmt.Sprintf("produce-v%d", version), func(t *testing.T) {
			id := fmt.Sprintf("late-v%d", version)
			pid, epoch, code := srv.txn.InitProducerID(id, 60000, -1, -1)
			if code != 0 {
				t.Fatal(kerr.ErrorForCode(code))
			}
			tp := txn.TopicPartition{Topic: topic, Partition: int32(partition)}
			if version < 12 {
				if codes := srv.txn.AddPartitions(id, pid, epoch, []txn.TopicPartition{tp}, false, false); codes[0] != 0 {
					t.Fatal(kerr.ErrorForCode(codes[0]))
				}
			}
			hook.Lock()
			hook.end = func() {
				if _, _, code := srv.txn.EndTxn(id, pid, epoch, false, version >= 12); code != 0 {
					t.Errorf("abort in the window: %v", kerr.ErrorForCode(code))
				}
			}
			hook.Unlock()

			mv := kversion.Stable()
			mv.SetMaxKeyVersion(int16(kmsg.Produce), version)
			cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()), kgo.MaxVersions(mv))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis, req.TransactionID = -1, 10000, kmsg.StringPtr(id)
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = int32(partition), txnRecordBatch(pid, epoch, 0, "late")
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(t.Context(), cl)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Version != version {
				t.Fatalf("produce answered at v%d", resp.Version)
			}
			if got := resp.Topics[0].Partitions[0].ErrorCode; got != kerr.InvalidTxnState.Code {
				t.Errorf("late batch: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(got))
			}
			hook.Lock()
			fired := hook.end == nil
			hook.Unlock()
			if !fired {
				t.Fatal("the produce never reached the window between verification and append")
			}
			l := srv.meta.partition(topic, int32(partition)).Log
			if leo, lso := l.LogEndOffset(), l.LastStableOffset(); leo != 1 || lso != 1 {
				t.Errorf("log end %d, last stable offset %d; want 1 and 1 (the abort marker only, nothing left open)", leo, lso)
			}
		})
	}
}
