// Package share holds the state of Kafka share groups (KIP-932): the
// share-partition state machine that hands records to the consumers of a
// share group under acquisition locks, and the codec of the records that
// make that state durable in the internal topic __share_group_state.
//
// # Usage
//
// A Partition is the state of one topic-partition inside one share group.
// It does no I/O and reads no clock: every input carries the time, so a
// test drives it exactly and the owner (the share coordinator in the
// server) decides when to persist and when to wake up:
//
//	p := share.NewPartition(share.DefaultConfig(), startOffset)
//	got := p.Acquire(now, "member-1", 500, highWatermark)   // records to return in ShareFetch
//	err := p.Acknowledge(now, "member-1", []share.Batch{{First: 10, Last: 19, Types: []share.AckType{share.AckAccept}}})
//	p.Tick(now)                                             // expire acquisition locks
//	next, ok := p.NextDeadline()                            // when Tick must run again
//	upd := p.TakeUpdate()                                   // what changed: write a ShareUpdate record
//
// The state that survives a restart is the share-partition start offset
// (SPSO) and, for each in-flight offset above it, its delivery state and
// delivery count. An ACQUIRED record is persisted as AVAILABLE with its
// delivery count, as Kafka does: after a restart its lock is gone, and the
// delivery that was under way still counts toward the delivery limit.
//
// Group is one share group's membership (ShareGroupHeartbeat with the
// simple assignor). Coordinator owns every Group and Partition of the
// broker behind one mutex, keeps the share sessions of ShareFetch, runs
// one timer for lock and session expiry through an injected Clock, and
// writes changed share-partitions to a Store outside that mutex; an
// acknowledgement is answered once its new state is durable.
//
// # Records
//
// __share_group_state uses Kafka's coordinator record framing: a key is an
// int16 record type (0 ShareSnapshot, 1 ShareUpdate) followed by
// {GroupId, TopicId, Partition}; a value is an int16 version (0) followed
// by the flexible ShareSnapshotValue or ShareUpdateValue. A snapshot holds
// the whole state; updates since the last snapshot are applied on top of
// it in log order (Replay).
package share
