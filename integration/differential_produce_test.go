package integration

import (
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Differential scenarios for the data path: Produce, Fetch, ListOffsets,
// DeleteRecords and OffsetForLeaderEpoch, with their edge cases.

func init() { diffScenarioLists = append(diffScenarioLists, diffProduceScenarios) }

// diffBatch is a magic-2 record batch with fixed timestamps, so both
// brokers are sent, and store, the same bytes.
type diffBatch struct {
	idempotent    bool // carries producerID, epoch and sequence
	producerID    int64
	epoch         int16
	sequence      int32
	transactional bool
	values        []string
}

func (b diffBatch) encode() []byte {
	var records []byte
	for i, v := range b.values {
		r := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		records = r.AppendTo(records)
	}
	pid, epoch, seq := b.producerID, b.epoch, b.sequence
	if !b.idempotent && !b.transactional {
		pid, epoch, seq = -1, -1, -1
	}
	var attrs int16
	if b.transactional {
		attrs |= 0x10
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(len(b.values) - 1),
		FirstTimestamp:       diffBaseTimestamp,
		MaxTimestamp:         diffBaseTimestamp + int64(len(b.values)-1),
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        seq,
		NumRecords:           int32(len(b.values)),
		Records:              records,
	}
	raw := rb.AppendTo(nil)
	// Length counts from the partition leader epoch (offset 12); the
	// CRC32C covers everything from the attributes (offset 21).
	rb.Length = int32(len(raw) - 12)
	raw = rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return rb.AppendTo(nil)
}

// produceReq is a Produce request with one batch for one partition.
func (c *diffConn) produceReq(topic string, partition int32, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	if c.tgt.versions[req.Key()] >= 13 {
		rt.TopicID = c.topicIDOrZero(topic)
	}
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetchReq is a sessionless Fetch of one partition from offset.
func (c *diffConn) fetchReq(topic string, partition int32, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 0, 1<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, c.topicIDOrZero(topic)
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// topicIDOrZero is topic's id, or zeros for a topic that does not exist.
func (c *diffConn) topicIDOrZero(topic string) [16]byte {
	td, err := c.tgt.admin.ListTopics(testContext(c.t), topic)
	if err != nil || td[topic].Err != nil {
		return [16]byte{}
	}
	return td[topic].ID
}

// listOffsetsReq asks for one partition's offset at timestamp.
func listOffsetsReq(topic string, partition int32, timestamp int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = partition, timestamp, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

var diffProduceScenarios = []diffScenario{
	{name: "ProduceAndFetch", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		p1 := c.do(c.produceReq(topic, 0, diffBatch{values: []string{"a", "b"}}.encode()))
		p2 := c.do(c.produceReq(topic, 0, diffBatch{values: []string{"c"}}.encode()))
		f := c.do(c.fetchReq(topic, 0, 0))
		mid := c.do(c.fetchReq(topic, 0, 2))
		return []any{p1, p2, f, mid}
	}},
	{name: "ProduceUnknownTopicAndPartition", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		batch := diffBatch{values: []string{"x"}}.encode()
		return []any{
			c.do(c.produceReq(c.name("missing"), 0, batch)),
			c.do(c.produceReq(topic, 7, batch)),
		}
	}},
	{name: "ProduceBadCRC", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		batch := diffBatch{values: []string{"x"}}.encode()
		batch[len(batch)-1] ^= 0xff
		return []any{c.do(c.produceReq(topic, 0, batch)), c.do(listOffsetsReq(topic, 0, -1))}
	}},
	{name: "ProduceOversize", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("1000")})
		big := make([]byte, 2000)
		for i := range big {
			big[i] = byte('a' + i%26)
		}
		return []any{c.do(c.produceReq(topic, 0, diffBatch{values: []string{string(big)}}.encode()))}
	}},
	{name: "ProduceInvalidAcks", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		req := c.produceReq(topic, 0, diffBatch{values: []string{"x"}}.encode())
		req.Acks = 2
		return []any{c.do(req)}
	}},
	{name: "ProduceIdempotentSequences", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		init := c.initProducerID("", -1, -1)
		b := diffBatch{idempotent: true, producerID: init.ProducerID, epoch: init.ProducerEpoch, values: []string{"a", "b"}}
		first := c.do(c.produceReq(topic, 0, b.encode()))
		dup := c.do(c.produceReq(topic, 0, b.encode()))
		b.sequence = 5 // a gap
		gap := c.do(c.produceReq(topic, 0, b.encode()))
		b.sequence, b.epoch = 2, init.ProducerEpoch+1 // an epoch the broker never gave
		epoch := c.do(c.produceReq(topic, 0, b.encode()))
		return []any{init, first, dup, gap, epoch, c.do(listOffsetsReq(topic, 0, -1))}
	}},
	{name: "ProduceEmptyAndTruncated", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		return []any{
			c.do(c.produceReq(topic, 0, []byte{})),
			c.do(c.produceReq(topic, 0, diffBatch{values: []string{"x"}}.encode()[:30])), // truncated
		}
	}},
	{name: "ProduceToInternalTopic", run: func(c *diffConn) []any {
		return []any{c.do(c.produceReq("__consumer_offsets", 0, diffBatch{values: []string{"x"}}.encode()))}
	}},
	{name: "ListOffsetsReadCommittedOpenTxn", run: func(c *diffConn) []any {
		topic, txn := c.name("t"), c.name("txn")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "a")
		init := c.initProducerID(txn, -1, -1)
		c.addPartitions(txn, init.ProducerID, init.ProducerEpoch, topic)
		req := c.produceReq(topic, 0, diffBatch{producerID: init.ProducerID, epoch: init.ProducerEpoch, transactional: true, values: []string{"open"}}.encode())
		req.TransactionID = kmsg.StringPtr(txn)
		c.produceRetrying(req)
		committed := listOffsetsReq(topic, 0, -1)
		committed.IsolationLevel = 1
		fetch := c.fetchReq(topic, 0, 0)
		fetch.IsolationLevel = 1
		f := c.do(fetch).(*kmsg.FetchResponse)
		p := &f.Topics[0].Partitions[0]
		p.RecordBatches = nil // the committed record only: its bytes are compared elsewhere
		out := []any{c.do(committed), c.do(listOffsetsReq(topic, 0, -1)), f}
		c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, false))
		return out
	}},
	{name: "FetchReadCommittedAbortedTxn", run: func(c *diffConn) []any {
		topic, txn := c.name("t"), c.name("txn")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "before")
		init := c.initProducerID(txn, -1, -1)
		c.addPartitions(txn, init.ProducerID, init.ProducerEpoch, topic)
		req := c.produceReq(topic, 0, diffBatch{producerID: init.ProducerID, epoch: init.ProducerEpoch, transactional: true, values: []string{"aborted"}}.encode())
		req.TransactionID = kmsg.StringPtr(txn)
		c.produceRetrying(req)
		c.do(endTxnReq(txn, init.ProducerID, init.ProducerEpoch, false))
		c.waitTxnState(txn, "CompleteAbort")
		c.produce(topic, 0, "after")
		committed := c.fetchReq(topic, 0, 0)
		committed.IsolationLevel = 1
		lso := listOffsetsReq(topic, 0, -1)
		lso.IsolationLevel = 1
		resp := c.do(committed).(*kmsg.FetchResponse)
		// The batches hold the producer id, which differs: compare
		// the partition's answer around them.
		p := &resp.Topics[0].Partitions[0]
		n := len(p.RecordBatches)
		p.RecordBatches = nil
		return []any{resp, n > 0, c.do(lso)}
	}},
	{name: "FetchOutOfRange", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "a", "b")
		return []any{
			c.do(c.fetchReq(topic, 0, 100)),
			c.do(c.fetchReq(topic, 0, -5)),
			c.do(c.fetchReq(topic, 0, 2)), // the end: empty, no error
		}
	}},
	{name: "FetchUnknownTopicAndPartition", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		unknown := c.fetchReq(c.name("missing"), 0, 0)
		unknown.Topics[0].TopicID = [16]byte{9, 9, 9}
		return []any{c.do(unknown), c.do(c.fetchReq(topic, 3, 0))}
	}},
	{name: "FetchSessions", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "a")
		open := c.fetchReq(topic, 0, 0)
		open.SessionEpoch = 0 // ask for a session
		first := c.do(open).(*kmsg.FetchResponse)
		id := first.SessionID
		incremental := func(sessionID, epoch int32) kmsg.Response {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID, req.MaxBytes, req.SessionID, req.SessionEpoch = -1, 1<<20, sessionID, epoch
			return c.do(req)
		}
		return []any{
			first,
			incremental(id, 1),       // nothing changed: no partitions
			incremental(id, 5),       // wrong epoch
			incremental(id+1_000, 1), // unknown session
			incremental(id, -1),      // close it
		}
	}},
	{name: "ListOffsets", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "a", "b", "c")
		var out []any
		for _, ts := range []int64{-2, -1, -3, diffBaseTimestamp + 1, diffBaseTimestamp + 100, -5} {
			out = append(out, c.do(listOffsetsReq(topic, 0, ts)))
		}
		out = append(out, c.do(listOffsetsReq(c.name("missing"), 0, -1)), c.do(listOffsetsReq(topic, 4, -1)))
		return out
	}},
	{name: "DeleteRecords", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "a", "b", "c", "d")
		del := func(partition int32, offset int64) kmsg.Response {
			req := kmsg.NewPtrDeleteRecordsRequest()
			req.TimeoutMillis = 30000
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Partition, rp.Offset = partition, offset
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return c.do(req)
		}
		return []any{
			del(0, 2), del(0, 1), del(0, 99), del(0, -1), del(5, 1),
			c.do(listOffsetsReq(topic, 0, -2)),
			c.do(c.fetchReq(topic, 0, 0)),
		}
	}},
	{name: "OffsetForLeaderEpoch", run: func(c *diffConn) []any {
		topic := c.name("t")
		c.createTopic(topic, 1, nil)
		c.produce(topic, 0, "a", "b")
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = topic
		for _, e := range []struct{ p, epoch int32 }{{0, 0}, {0, 7}, {9, 0}} {
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = e.p, e.epoch, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return []any{c.do(req)}
	}},
}
