// Package txn is Skiff's transaction coordinator: producer id allocation
// for idempotent and transactional producers (InitProducerId) and the
// state machine of every transactional id (AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, timeouts, fencing), as Kafka's
// TransactionCoordinator keeps it.
//
// State lives in the internal compacted topic __transaction_state, one
// TxnMetadata record (Kafka's own key/value layout) per state transition,
// in partition abs(javaHash(transactionalID)) % numPartitions; the topic is
// created on first use and replayed by New. Producer ids are handed out
// from blocks whose upper bound is persisted (storage.WriteFileAtomicFS)
// before the first id of a block is used, so ids never repeat after a
// restart.
//
// Ending a transaction is synchronous: the coordinator writes
// PrepareCommit/PrepareAbort, has the markers written to every partition
// of the transaction (Deps.WriteMarkers), then writes
// CompleteCommit/CompleteAbort, and only then answers. A transaction found
// in a Prepare state at start-up (a crash between those steps) is
// completed by New; one found Ongoing is aborted when its timeout passes,
// like any other.
//
// Concurrency: operations that change state run one at a time (opMu), so
// each is a plain sequence of writes; mu guards the maps for concurrent
// readers (produce verification, DescribeTransactions, ListTransactions)
// and is never held during disk I/O. Lock order: opMu, idMu, mu. opMu is
// held across the durable __transaction_state appends of an operation (and
// the marker writes of EndTxn): transactional operations of different
// transactional ids wait for each other's fsyncs. That is the price of
// keeping each operation a plain sequence; per-id serialization is the
// way out if it shows up in measurements. A new block of producer ids is
// persisted under idMu alone.
//
// Usage:
//
//	c, err := txn.New(cfg, deps) // replays __transaction_state
//	c.Start()                    // timeout / expiration loop
//	pid, epoch, code := c.InitProducerID(&id, 60000, -1, -1)
//	defer c.Close()
package txn
