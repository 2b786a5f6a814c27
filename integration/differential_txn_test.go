package integration

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Differential scenarios for transactions and producer ids: the happy
// path, and the error paths (invalid txn state, producer fenced, invalid
// producer epoch), plus the transaction admin APIs.

func init() { diffScenarioLists = append(diffScenarioLists, diffTxnScenarios) }

// initProducerID sends InitProducerID for txnID ("" for an idempotent
// producer) until the coordinator has loaded, and returns the answer.
func (c *diffConn) initProducerID(txnID string, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	c.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	if txnID != "" {
		req.TransactionalID = kmsg.StringPtr(txnID)
	}
	req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch = 60000, pid, epoch
	var resp *kmsg.InitProducerIDResponse
	eventually(c.t, 30*time.Second, c.tgt.name+" InitProducerID past coordinator loading", func() bool {
		resp = c.do(req).(*kmsg.InitProducerIDResponse)
		err := kerr.ErrorForCode(resp.ErrorCode)
		return err != kerr.CoordinatorLoadInProgress && err != kerr.CoordinatorNotAvailable && err != kerr.NotCoordinator
	})
	return resp
}

// addPartitions is the client's AddPartitionsToTxn (v3, the last version
// clients send; v4+ is for brokers).
func (c *diffConn) addPartitions(txnID string, pid int64, epoch int16, topic string) kmsg.Response {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = txnID, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	return c.doAt(req, 3)
}

func endTxnReq(txnID string, pid int64, epoch int16, commit bool) *kmsg.EndTxnRequest {
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = txnID, pid, epoch, commit
	return req
}

// waitTxnState waits until DescribeTransactions shows txn in state: Kafka
// answers CONCURRENT_TRANSACTIONS while its markers are being written,
// for a time no scenario should depend on.
func (c *diffConn) waitTxnState(txn, state string) {
	c.t.Helper()
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{txn}
	eventually(c.t, 30*time.Second, txn+" in state "+state, func() bool {
		resp := c.do(req).(*kmsg.DescribeTransactionsResponse)
		return len(resp.TransactionStates) == 1 && resp.TransactionStates[0].State == state
	})
}

// produceRetrying sends a transactional Produce again while it fails with
// NOT_LEADER_OR_FOLLOWER, as a client would: Kafka answers so while its
// first check of the transaction with the coordinator (KIP-890) is under
// way, a start-up transient rather than a behaviour.
func (c *diffConn) produceRetrying(req *kmsg.ProduceRequest) kmsg.Response {
	c.t.Helper()
	var resp *kmsg.ProduceResponse
	eventually(c.t, 30*time.Second, c.tgt.name+" to take a transactional produce", func() bool {
		resp = c.do(req).(*kmsg.ProduceResponse)
		return resp.Topics[0].Partitions[0].ErrorCode != kerr.NotLeaderForPartition.Code
	})
	return resp
}

var diffTxnScenarios = []diffScenario{
	{name: "TxnCommitAndReadCommitted", run: func(c *diffConn) []any {
		topic, txn := c.name("t"), c.name("txn")
		c.createTopic(topic, 1, nil)
		init := c.initProducerID(txn, -1, -1)
		add := c.addPartitions(txn, init.ProducerID, init.ProducerEpoch, topic)
		req := c.produceReq(topic, 0, diffBatch{producerID: init.ProducerID, epoch: init.ProducerEpoch, transactional: true, values: []string{"a"}}.encode())
		req.TransactionID = kmsg.StringPtr(txn)
		produced := c.produceRetrying(req)
		lso := listOffsetsReq(topic, 0, -1)
		lso.IsolationLevel = 1
		before := c.do(lso)
		end := c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, true))
		eventually(c.t, 30*time.Second, "the commit marker", func() bool {
			r := c.do(listOffsetsReq(topic, 0, -1)).(*kmsg.ListOffsetsResponse)
			return r.Topics[0].Partitions[0].Offset == 2
		})
		return []any{init, add, produced, before, end, c.do(lso)}
	}},
	{name: "TxnInvalidState", run: func(c *diffConn) []any {
		txn := c.name("txn")
		init := c.initProducerID(txn, -1, -1)
		// Nothing was added: committing and aborting an empty
		// transaction, then ending twice.
		commit := c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, true))
		abort := c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, false)).(*kmsg.EndTxnResponse)
		var after []any
		if abort.ErrorCode == 0 {
			c.waitTxnState(txn, "CompleteAbort")
			after = append(after,
				c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, false)), // a retry
				c.do(endTxnReq(txn, init.ProducerID, abort.ProducerEpoch, true)),
				c.do(endTxnReq(txn, init.ProducerID, abort.ProducerEpoch, false)))
		}
		return append([]any{commit, abort}, after...)
	}},
	{name: "TxnInvalidStateAfterCommit", run: func(c *diffConn) []any {
		topic, txn := c.name("t"), c.name("txn")
		c.createTopic(topic, 1, nil)
		init := c.initProducerID(txn, -1, -1)
		c.addPartitions(txn, init.ProducerID, init.ProducerEpoch, topic)
		commit := c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, true))
		c.waitTxnState(txn, "CompleteCommit")
		// With EndTxn v5 (KIP-890) the commit bumped the epoch: the old
		// one is now only good for retrying that very commit.
		old := init.ProducerEpoch
		abortOld := c.do(endTxnReq(txn, init.ProducerID, old, false))
		retry := c.do(endTxnReq(txn, init.ProducerID, old, true))
		next := commit.(*kmsg.EndTxnResponse).ProducerEpoch
		commitAgain := c.do(endTxnReq(txn, init.ProducerID, next, true))
		abortEmpty := c.do(endTxnReq(txn, init.ProducerID, next, false))
		return []any{commit, abortOld, retry, commitAgain, abortEmpty}
	}},
	{name: "TxnProducerFenced", run: func(c *diffConn) []any {
		topic, txn := c.name("t"), c.name("txn")
		c.createTopic(topic, 1, nil)
		old := c.initProducerID(txn, -1, -1)
		fresh := c.initProducerID(txn, -1, -1) // fences old
		return []any{
			old, fresh,
			c.addPartitions(txn, old.ProducerID, old.ProducerEpoch, topic),
			c.do(endTxnReq(txn, old.ProducerID, old.ProducerEpoch, true)),
			c.addPartitions(txn, fresh.ProducerID, fresh.ProducerEpoch, topic),
		}
	}},
	{name: "TxnInvalidProducerEpochAndID", run: func(c *diffConn) []any {
		topic, txn := c.name("t"), c.name("txn")
		c.createTopic(topic, 1, nil)
		init := c.initProducerID(txn, -1, -1)
		return []any{
			c.addPartitions(txn, init.ProducerID, init.ProducerEpoch+3, topic),
			c.addPartitions(txn, init.ProducerID+1000, init.ProducerEpoch, topic),
			c.addPartitions(c.name("unknown-txn"), init.ProducerID, init.ProducerEpoch, topic),
			c.do(endTxnReq(c.name("unknown-txn"), init.ProducerID, init.ProducerEpoch, true)),
		}
	}},
	{name: "InitProducerIDErrors", run: func(c *diffConn) []any {
		txn := c.name("txn")
		long := kmsg.NewPtrInitProducerIDRequest()
		long.TransactionalID, long.TransactionTimeoutMillis = kmsg.StringPtr(txn), 1_000_000_000 // above transaction.max.timeout.ms
		long.ProducerID, long.ProducerEpoch = -1, -1
		init := c.initProducerID(txn, -1, -1)
		// KIP-360: re-initialising with an id and epoch the coordinator
		// does not hold.
		wrong := kmsg.NewPtrInitProducerIDRequest()
		wrong.TransactionalID, wrong.TransactionTimeoutMillis = kmsg.StringPtr(txn), 60000
		wrong.ProducerID, wrong.ProducerEpoch = init.ProducerID+1000, 3
		mismatch := c.do(wrong)
		wrong.ProducerID, wrong.ProducerEpoch = init.ProducerID, init.ProducerEpoch+5
		staleEpoch := c.do(wrong)
		empty := kmsg.NewPtrEndTxnRequest()
		empty.ProducerID, empty.ProducerEpoch = init.ProducerID, init.ProducerEpoch
		return []any{c.do(long), mismatch, staleEpoch, c.do(empty)}
	}},
	{name: "TxnOffsetCommitErrors", run: func(c *diffConn) []any {
		topic, txn, g := c.name("t"), c.name("txn"), c.name("g")
		c.createTopic(topic, 1, nil)
		init := c.initProducerID(txn, -1, -1)
		commit := func(group string, epoch int16, member string, generation int32) kmsg.Response {
			req := kmsg.NewPtrTxnOffsetCommitRequest()
			req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = txn, group, init.ProducerID, epoch
			req.MemberID, req.Generation = member, generation
			ct := kmsg.NewTxnOffsetCommitRequestTopic()
			ct.Topic = topic
			cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			cp.Partition, cp.Offset, cp.LeaderEpoch = 0, 1, -1
			ct.Partitions = append(ct.Partitions, cp)
			req.Topics = append(req.Topics, ct)
			return c.do(req)
		}
		// With a member of a group that does not know it, then with
		// epochs the coordinator never gave.
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = txn, init.ProducerID, init.ProducerEpoch, g
		added := c.doAt(ao, min(c.tgt.versions[ao.Key()], 3))
		c.stableMember(g)
		unknownMember := commit(g, init.ProducerEpoch, "no-such-member", 1)
		higher := commit(g, init.ProducerEpoch+1, "", -1)
		lower := commit(g, init.ProducerEpoch-1, "", -1)
		c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, false))
		return []any{added, unknownMember, higher, lower}
	}},
	{name: "TxnOffsetCommitWithoutAddOffsets", run: func(c *diffConn) []any {
		topic, txn, g := c.name("t"), c.name("txn"), c.name("g")
		c.createTopic(topic, 1, nil)
		init := c.initProducerID(txn, -1, -1)
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = txn, g, init.ProducerID, init.ProducerEpoch, -1
		ct := kmsg.NewTxnOffsetCommitRequestTopic()
		ct.Topic = topic
		cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset, cp.LeaderEpoch = 0, 1, -1
		ct.Partitions = append(ct.Partitions, cp)
		req.Topics = append(req.Topics, ct)
		return []any{c.do(req)}
	}},
	{name: "TxnProduceBadEpoch", run: func(c *diffConn) []any {
		topic, txn := c.name("t"), c.name("txn")
		c.createTopic(topic, 1, nil)
		c.initProducerID(txn, -1, -1)
		init := c.initProducerID(txn, -1, -1) // epoch 1, so that 0 is stale
		c.addPartitions(txn, init.ProducerID, init.ProducerEpoch, topic)
		produce := func(epoch int16) kmsg.Response {
			req := c.produceReq(topic, 0, diffBatch{producerID: init.ProducerID, epoch: epoch, transactional: true, values: []string{"a"}}.encode())
			req.TransactionID = kmsg.StringPtr(txn)
			return c.produceRetrying(req)
		}
		return []any{produce(init.ProducerEpoch + 1), produce(init.ProducerEpoch - 1), produce(init.ProducerEpoch)}
	}},
	{name: "TxnOffsets", run: func(c *diffConn) []any {
		topic, txn, g := c.name("t"), c.name("txn"), c.name("g")
		c.createTopic(topic, 1, nil)
		init := c.initProducerID(txn, -1, -1)
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = txn, init.ProducerID, init.ProducerEpoch, g
		added := c.doAt(ao, min(c.tgt.versions[ao.Key()], 3))
		commit := kmsg.NewPtrTxnOffsetCommitRequest()
		commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = txn, g, init.ProducerID, init.ProducerEpoch
		commit.Generation = -1
		ct := kmsg.NewTxnOffsetCommitRequestTopic()
		ct.Topic = topic
		cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		cp.Partition, cp.Offset, cp.LeaderEpoch = 0, 7, -1
		ct.Partitions = append(ct.Partitions, cp)
		commit.Topics = append(commit.Topics, ct)
		committed := c.do(commit)
		pendingFetch := offsetFetchReq(g)
		pendingFetch.RequireStable = true
		pending := c.do(pendingFetch)
		end := c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, true))
		var after kmsg.Response
		eventually(c.t, 30*time.Second, "the committed offset", func() bool {
			after = c.do(offsetFetchReq(g))
			gs := after.(*kmsg.OffsetFetchResponse).Groups
			return len(gs) == 1 && len(gs[0].Topics) == 1 && gs[0].Topics[0].Partitions[0].Offset == 7
		})
		return []any{added, committed, pending, end, after}
	}},
	{name: "TxnAdmin", run: func(c *diffConn) []any {
		topic, txn := c.name("t"), c.name("txn")
		c.createTopic(topic, 1, nil)
		init := c.initProducerID(txn, -1, -1)
		c.addPartitions(txn, init.ProducerID, init.ProducerEpoch, topic)
		req := c.produceReq(topic, 0, diffBatch{producerID: init.ProducerID, epoch: init.ProducerEpoch, transactional: true, values: []string{"a", "b"}}.encode())
		req.TransactionID = kmsg.StringPtr(txn)
		produced := c.produceRetrying(req)
		dt := kmsg.NewPtrDescribeTransactionsRequest()
		dt.TransactionalIDs = []string{txn, c.name("missing")}
		described := c.do(dt).(*kmsg.DescribeTransactionsResponse)
		for i := range described.TransactionStates {
			described.TransactionStates[i].TimeoutMillis = 0
		}
		lt := kmsg.NewPtrListTransactionsRequest()
		lt.StateFilters = []string{"Ongoing"}
		lt.TransactionalIDPattern = kmsg.StringPtr(txn)
		listed := c.do(lt).(*kmsg.ListTransactionsResponse)
		var mine []kmsg.ListTransactionsResponseTransactionState
		for _, s := range listed.TransactionStates {
			if s.TransactionalID == txn {
				mine = append(mine, s)
			}
		}
		dp := kmsg.NewPtrDescribeProducersRequest()
		dpt := kmsg.NewDescribeProducersRequestTopic()
		dpt.Topic, dpt.Partitions = topic, []int32{0, 3}
		dp.Topics = append(dp.Topics, dpt)
		producers := c.do(dp).(*kmsg.DescribeProducersResponse)
		end := c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, false))
		return []any{produced, described, listed.ErrorCode, listed.UnknownStateFilters, mine, producers, end}
	}},
}
