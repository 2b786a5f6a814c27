package server

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/storage"
)

// commitOffset sends one OffsetCommit straight to the broker (no client
// retries or coordinator lookups) and returns its error code.
func commitOffset(t *testing.T, cl *kgo.Client, offset int64) int16 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = "g"
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("offset commit: %v", err)
	}
	return resp.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

// A full disk under __consumer_offsets: the group coordinator answers
// NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE (clients look it up again and
// retry), the broker keeps serving, and commits work again once space is
// freed.
func TestGroupCoordinatorOnFullDisk(t *testing.T) {
	fsys := storage.NewMemFS()
	srv, err := New(Config{Listen: "127.0.0.1:0", DataDir: "/data", FS: fsys,
		Settings: map[string]string{"offsets.topic.num.partitions": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.meta.createTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if code := commitOffset(t, cl, 1); code != 0 {
		t.Fatalf("commit on a healthy disk: %v", kerr.ErrorForCode(code))
	}
	fsys.SetSpace(fsys.Used())
	switch code := commitOffset(t, cl, 2); code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code:
	default:
		t.Fatalf("commit on a full disk: %v, want NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE", kerr.ErrorForCode(code))
	}
	fsys.SetSpace(-1)
	if code := commitOffset(t, cl, 3); code != 0 {
		t.Fatalf("commit after space was freed: %v", kerr.ErrorForCode(code))
	}
	adm := kmsg.NewPtrOffsetFetchRequest()
	adm.Group = "g"
	resp, err := adm.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Topics[0].Partitions[0].Offset; got != 3 {
		t.Fatalf("committed offset %d after the fault, want 3", got)
	}
}

// initProducerID sends one transactional InitProducerID straight to the
// broker and returns its error code.
func initProducerID(t *testing.T, cl *kgo.Client) int16 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrInitProducerIDRequest()
	txnID := "tx"
	req.TransactionalID = &txnID
	req.TransactionTimeoutMillis = 10000
	req.ProducerID, req.ProducerEpoch = -1, -1
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("init producer id: %v", err)
	}
	return resp.(*kmsg.InitProducerIDResponse).ErrorCode
}

// A full disk under __transaction_state (and the producer id file): the
// transaction coordinator answers a retriable coordinator error instead of
// crashing, and works once space is freed.
func TestTxnCoordinatorOnFullDisk(t *testing.T) {
	fsys := storage.NewMemFS()
	srv, err := New(Config{Listen: "127.0.0.1:0", DataDir: "/data", FS: fsys,
		Settings: map[string]string{"transaction.state.log.num.partitions": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	fsys.SetSpace(fsys.Used())
	switch code := initProducerID(t, cl); code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code:
		t.Logf("InitProducerID on a full disk: %v", kerr.ErrorForCode(code))
	default:
		t.Fatalf("InitProducerID on a full disk: %v, want a retriable coordinator error", kerr.ErrorForCode(code))
	}
	fsys.SetSpace(-1)
	if code := initProducerID(t, cl); code != 0 {
		t.Fatalf("InitProducerID after space was freed: %v", kerr.ErrorForCode(code))
	}
}
