package integration

import (
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Regression tests for the differences from Apache Kafka 4.1 that
// TestDifferential found in Skiff, one per bug, against Skiff alone (no
// JVM), at the request versions the differential test pins.

// rawConn is a raw connection to an embedded Skiff, numbering requests.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	corr int32
}

func newRawConn(t *testing.T, addr string) *rawConn {
	return &rawConn{t: t, conn: dialRaw(t, addr)}
}

// do sends req at version and returns the response.
func (rc *rawConn) do(req kmsg.Request, version int16) kmsg.Response {
	rc.t.Helper()
	req.SetVersion(version)
	rc.corr++
	return roundTrip(rc.t, rc.conn, req, rc.corr)
}

func TestMetadataInvalidTopicNameIsInvalidTopicException(t *testing.T) {
	b := startBroker(t, nil)
	rc := newRawConn(t, b.Addr())
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range []string{"bad/name", "fine-but-missing"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	resp := rc.do(req, 13).(*kmsg.MetadataResponse)
	want := map[string]int16{"bad/name": kerr.InvalidTopicException.Code, "fine-but-missing": kerr.UnknownTopicOrPartition.Code}
	for _, mt := range resp.Topics {
		if got := mt.ErrorCode; got != want[*mt.Topic] {
			t.Errorf("Metadata for %q: %v, want %v", *mt.Topic, kerr.ErrorForCode(got), kerr.ErrorForCode(want[*mt.Topic]))
		}
	}
}

func TestDescribeTopicPartitionsReportsTopicAuthorizedOperations(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, newAdmin(t, b.Addr()), "t", 1, nil)
	rc := newRawConn(t, b.Addr())
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	for _, name := range []string{"t", "missing"} {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = name
		req.Topics = append(req.Topics, rt)
	}
	resp := rc.do(req, 0).(*kmsg.DescribeTopicPartitionsResponse)
	// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS and
	// ALTER_CONFIGS: every topic operation, with no authorizer.
	const allTopicOps = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	for _, mt := range resp.Topics {
		if mt.AuthorizedOperations != allTopicOps {
			t.Errorf("topic %s: authorized operations %d, want %d", *mt.Topic, mt.AuthorizedOperations, allTopicOps)
		}
	}
}

func TestFetchOutOfRangeReportsNoWatermarks(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "t", 1, nil)
	produceSync(t, newClient(t, b.Addr()), &kgo.Record{Topic: "t", Value: []byte("a")}, &kgo.Record{Topic: "t", Value: []byte("b")})
	td, err := adm.ListTopics(testContext(t), "t")
	if err != nil {
		t.Fatal(err)
	}
	rc := newRawConn(t, b.Addr())
	for _, offset := range []int64{100, -5} {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.TopicID = td["t"].ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = offset, 1<<20, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		p := rc.do(req, 17).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != -1 || p.LastStableOffset != -1 || p.LogStartOffset != -1 {
			t.Errorf("fetch at %d: %v hw=%d lso=%d logStart=%d; want OFFSET_OUT_OF_RANGE and -1 for all three (Kafka's answer)",
				offset, kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, p.LastStableOffset, p.LogStartOffset)
		}
	}
}

func TestProduceOutOfOrderSequenceReportsLogStartOffset(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, newAdmin(t, b.Addr()), "t", 1, nil)
	rc := newRawConn(t, b.Addr())
	init := rc.do(kmsg.NewPtrInitProducerIDRequest(), 5).(*kmsg.InitProducerIDResponse)
	batch := diffBatch{idempotent: true, producerID: init.ProducerID, epoch: init.ProducerEpoch, values: []string{"a"}}
	produce := func() kmsg.ProduceResponseTopicPartition {
		req := produceV9("t", 0, batch.encode())
		return rc.do(req, 9).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	if p := produce(); p.ErrorCode != 0 {
		t.Fatalf("first produce: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	batch.sequence = 7 // a gap
	if p := produce(); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code || p.LogStartOffset != 0 {
		t.Errorf("produce with a sequence gap: %v logStart=%d; want OUT_OF_ORDER_SEQUENCE_NUMBER with the log start offset 0",
			kerr.ErrorForCode(p.ErrorCode), p.LogStartOffset)
	}
}

func TestDescribeTransactionsUnknownIDLeavesFieldsAtDefaults(t *testing.T) {
	b := startBroker(t, nil)
	rc := newRawConn(t, b.Addr())
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{"never-used"}
	st := rc.do(req, 0).(*kmsg.DescribeTransactionsResponse).TransactionStates[0]
	if st.ErrorCode != kerr.TransactionalIDNotFound.Code || st.ProducerID != 0 || st.ProducerEpoch != 0 || st.StartTimestamp != 0 {
		t.Errorf("unknown transactional id: %+v; want TRANSACTIONAL_ID_NOT_FOUND and zeros, as Kafka", st)
	}
}

func TestUpdateFeaturesFailsAsAWholeWithATopLevelError(t *testing.T) {
	b := startBroker(t, nil)
	rc := newRawConn(t, b.Addr())
	for _, v := range []int16{1, 2} {
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.TimeoutMillis = 30000
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.MaxVersionLevel, u.UpgradeType = "no.such.feature", 1, 1
		req.FeatureUpdates = append(req.FeatureUpdates, u)
		resp := rc.do(req, v).(*kmsg.UpdateFeaturesResponse)
		if resp.ErrorCode != kerr.InvalidUpdateVersion.Code || len(resp.Results) != 0 {
			t.Errorf("v%d: top-level %v with %d results; want INVALID_UPDATE_VERSION and none", v, kerr.ErrorForCode(resp.ErrorCode), len(resp.Results))
		}
	}
}

// txnV5 drives EndTxn v5 (KIP-890 transactions version 2) on one id.
type txnV5 struct {
	rc    *rawConn
	id    string
	pid   int64
	epoch int16
}

func newTxnV5(t *testing.T, rc *rawConn, id string) *txnV5 {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr(id), 60000
	resp := rc.do(req, 5).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	return &txnV5{rc: rc, id: id, pid: resp.ProducerID, epoch: resp.ProducerEpoch}
}

func (x *txnV5) end(epoch int16, commit bool) *kmsg.EndTxnResponse {
	return x.rc.do(endTxnReq(x.id, x.pid, epoch, commit), 5).(*kmsg.EndTxnResponse)
}

func TestEndTxnV5AbortWithNoTransactionBumpsEpoch(t *testing.T) {
	b := startBroker(t, nil)
	x := newTxnV5(t, newRawConn(t, b.Addr()), "tx")
	if r := x.end(x.epoch, true); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Errorf("commit with nothing open: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(r.ErrorCode))
	}
	r := x.end(x.epoch, false)
	if r.ErrorCode != 0 || r.ProducerEpoch != x.epoch+1 {
		t.Fatalf("abort with nothing open: %v epoch %d; want OK and epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch, x.epoch+1)
	}
	// The old epoch may retry that abort, and only that.
	if r := x.end(x.epoch, false); r.ErrorCode != 0 || r.ProducerEpoch != x.epoch+1 {
		t.Errorf("retried abort: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
	}
	if r := x.end(x.epoch, true); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Errorf("commit with the pre-abort epoch: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(r.ErrorCode))
	}
}

func TestEndTxnV5RetryWithPreviousEpochIsNotFenced(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "t", 1, nil)
	rc := newRawConn(t, b.Addr())
	x := newTxnV5(t, rc, "tx")
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = x.id, x.pid, x.epoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "t", []int32{0}
	add.Topics = append(add.Topics, at)
	if r := rc.do(add, 3).(*kmsg.AddPartitionsToTxnResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AddPartitionsToTxn: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	commit := x.end(x.epoch, true)
	if commit.ErrorCode != 0 || commit.ProducerEpoch != x.epoch+1 {
		t.Fatalf("commit: %v epoch %d", kerr.ErrorForCode(commit.ErrorCode), commit.ProducerEpoch)
	}
	if r := x.end(x.epoch, true); r.ErrorCode != 0 || r.ProducerEpoch != commit.ProducerEpoch {
		t.Errorf("commit retried with the epoch it was sent with: %v epoch %d; want OK and epoch %d (Kafka treats it as a retry)",
			kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch, commit.ProducerEpoch)
	}
	if r := x.end(x.epoch, false); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Errorf("abort with the pre-commit epoch: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := x.end(commit.ProducerEpoch, true); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Errorf("commit with nothing open at the new epoch: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := x.end(x.epoch-1, true); r.ErrorCode != kerr.ProducerFenced.Code {
		t.Errorf("commit with an epoch two behind: %v, want PRODUCER_FENCED", kerr.ErrorForCode(r.ErrorCode))
	}
}

func TestLeaveGroupOfUnknownGroupAnswersEachMember(t *testing.T) {
	b := startBroker(t, nil)
	rc := newRawConn(t, b.Addr())
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = "no-such-group"
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = "no-such-member"
	req.Members = append(req.Members, m)
	resp := rc.do(req, 5).(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode != 0 || len(resp.Members) != 1 || resp.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("leave of an unknown group: %+v; want no group error and the member UNKNOWN_MEMBER_ID", resp)
	}
}

func TestEndTxnWithoutTransactionalIDIsInvalidRequest(t *testing.T) {
	b := startBroker(t, nil)
	rc := newRawConn(t, b.Addr())
	resp := rc.do(endTxnReq("", 1, 0, true), 5).(*kmsg.EndTxnResponse)
	if resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("EndTxn without a transactional id: %v, want INVALID_REQUEST", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestInitProducerIDWithForeignProducerIDIsFenced(t *testing.T) {
	b := startBroker(t, nil)
	rc := newRawConn(t, b.Addr())
	x := newTxnV5(t, rc, "tx")
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 60000
	req.ProducerID, req.ProducerEpoch = x.pid+1000, 3
	if resp := rc.do(req, 5).(*kmsg.InitProducerIDResponse); resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Errorf("InitProducerID with a producer id the coordinator does not hold: %v, want PRODUCER_FENCED", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestTxnWrongEpochIsInvalidProducerEpoch(t *testing.T) {
	b := startBroker(t, nil)
	createTopic(t, newAdmin(t, b.Addr()), "t", 1, nil)
	rc := newRawConn(t, b.Addr())
	x := newTxnV5(t, rc, "tx")
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = x.id, x.pid, x.epoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "t", []int32{0}
	add.Topics = append(add.Topics, at)
	rc.do(add, 3)
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = x.id, x.pid, x.epoch, "g"
	rc.do(ao, 3)

	// A transactional produce with an epoch newer than the coordinator's.
	req := produceV9("t", 0, diffBatch{producerID: x.pid, epoch: x.epoch + 1, transactional: true, values: []string{"a"}}.encode())
	req.TransactionID = kmsg.StringPtr(x.id)
	if p := rc.do(req, 9).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Errorf("transactional produce with a newer epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(p.ErrorCode))
	}
	// TxnOffsetCommit with an epoch newer or older than the coordinator's.
	for _, epoch := range []int16{x.epoch + 1, x.epoch - 1} {
		commit := kmsg.NewPtrTxnOffsetCommitRequest()
		commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch, commit.Generation = x.id, "g", x.pid, epoch, -1
		ct := kmsg.NewTxnOffsetCommitRequestTopic()
		ct.Topic = "t"
		cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		cp.Offset, cp.LeaderEpoch = 1, -1
		ct.Partitions = append(ct.Partitions, cp)
		commit.Topics = append(commit.Topics, ct)
		resp := rc.do(commit, 5).(*kmsg.TxnOffsetCommitResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidProducerEpoch.Code {
			t.Errorf("TxnOffsetCommit at epoch %d (coordinator's %d): %v, want INVALID_PRODUCER_EPOCH", epoch, x.epoch, kerr.ErrorForCode(code))
		}
	}
}

func TestAlterBrokerConfigsStaticConfigIsInvalidRequest(t *testing.T) {
	b := startBroker(t, nil)
	rc := newRawConn(t, b.Addr())
	md := rc.do(kmsg.NewPtrMetadataRequest(), 13).(*kmsg.MetadataResponse)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(md.Brokers[0].NodeID))
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Op, cfg.Value = "log.dirs", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("/elsewhere")
	res.Configs = append(res.Configs, cfg)
	req.Resources = append(req.Resources, res)
	resp := rc.do(req, 1).(*kmsg.IncrementalAlterConfigsResponse)
	if code := resp.Resources[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("altering log.dirs at run time: %v, want INVALID_REQUEST as Kafka", kerr.ErrorForCode(code))
	}
}

func TestProduceToInternalTopicIsRefused(t *testing.T) {
	b := startBroker(t, nil)
	adm := newAdmin(t, b.Addr())
	// A group commit makes sure __consumer_offsets exists.
	createTopic(t, adm, "t", 1, nil)
	if _, err := adm.CommitOffsets(testContext(t), "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "t", Partition: 0, Offset: 0})); err != nil {
		t.Fatal(err)
	}
	rc := newRawConn(t, b.Addr())
	for _, topic := range []string{"__consumer_offsets", "__transaction_state"} {
		req := produceV9(topic, 0, diffBatch{values: []string{"garbage"}}.encode())
		p := rc.do(req, 9).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		if p.ErrorCode != kerr.InvalidTopicException.Code {
			t.Errorf("produce to %s: %v, want INVALID_TOPIC_EXCEPTION (only the coordinators write there)", topic, kerr.ErrorForCode(p.ErrorCode))
		}
	}
}

func TestAlterPartitionAssignmentsV1EchoesAllowReplicationFactorChange(t *testing.T) {
	b := startBroker(t, nil)
	rc := newRawConn(t, b.Addr())
	for _, allow := range []bool{false, true} {
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.TimeoutMillis, req.AllowReplicationFactorChange = 30000, allow
		resp := rc.do(req, 1).(*kmsg.AlterPartitionAssignmentsResponse)
		if resp.ErrorCode != 0 || resp.AllowReplicationFactorChange != allow {
			t.Errorf("v1 with allow_replication_factor_change=%v: %+v", allow, resp)
		}
	}
}
