// Package coordinator is Skiff's group coordinator: Kafka's classic group
// membership protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the
// KIP-848 consumer group protocol (ConsumerGroupHeartbeat), KIP-1071
// streams groups (StreamsGroupHeartbeat, StreamsGroupDescribe), committed
// offsets (OffsetCommit, OffsetFetch, OffsetDelete) and group
// administration (ListGroups, DescribeGroups, DeleteGroups), with Apache
// Kafka 4.x's rules and error codes. Skiff is a single node, so this
// coordinator coordinates every group.
//
// # Usage
//
// The server builds one Groups at start-up from the partitions of the
// internal topic __consumer_offsets, and routes the group APIs to it:
//
//	groups, err := coordinator.New(cfg, coordinator.Deps{
//		Clock:      coordinator.SystemClock(),
//		Logger:     logger,
//		Topics:     cluster,          // coordinator.TopicLookup
//		Logs:       offsetsLogs,      // []coordinator.Log; empty if the topic does not exist yet
//		CreateLogs: createOffsetsTopic,
//	})
//	if err != nil { ... }          // replaying __consumer_offsets failed
//	defer groups.Close()
//
//	// in the JoinGroup handler; JoinGroup blocks until the rebalance's join
//	// phase completes, or ctx ends (close ctx when the connection closes):
//	ctx = coordinator.WithClientInfo(ctx, coordinator.ClientInfo{ClientID: hdr.ClientID, Host: "/" + ip})
//	resp := groups.JoinGroup(ctx, req.(*kmsg.JoinGroupRequest))
//
// Every method takes the kmsg request (its Version selects the response
// version) and returns the kmsg response; Kafka errors travel as error
// codes in it, never as Go errors. Blocking methods return promptly when
// ctx ends. The client id and host that Kafka derives member ids from and
// reports in DescribeGroups come from the context (WithClientInfo). After
// DeleteTopics the server calls TopicsDeleted so that groups drop the
// offsets of deleted topics, as Kafka does.
//
// Not implemented: Kafka's online migration between the classic and the
// KIP-848 protocol inside one live group (a classic member cannot join a
// consumer group that has members, and vice versa; empty groups convert),
// and rack-aware assignment.
//
// # Design
//
// Group state lives in memory behind one mutex and changes only in short
// sequential steps driven by requests and by timers of the injected Clock
// (session, rebalance, join and sync timeouts, offset expiry). Nothing
// blocks while holding the mutex: a request that must wait (a JoinGroup
// until everyone rejoined, a follower's SyncGroup until the leader's
// assignment is stored, any write until it is durable) parks on a channel.
//
// Whatever must survive a restart is written to __consumer_offsets in
// Kafka's own record formats, so the topic is interchangeable with Kafka's:
// committed offsets (OffsetCommitKey/Value), a classic group's generation
// and members after each completed rebalance (GroupMetadataKey/Value), a
// KIP-848 group's epochs, member subscriptions, target and current
// assignments (the ConsumerGroup* records, key versions 3-8), and
// tombstones when offsets, members or groups are deleted. A group's records go to
// partition abs(hashCode(groupId)) % partitions. Writes are appended with
// sync=true and acknowledged only once durable; writes to one partition
// are appended one batch at a time (concurrent ones share a batch) and
// applied to memory in log order, so memory always equals a replay of the
// log. New replays every partition from offset 0; groups come back with
// their members (classic groups Stable), whose sessions restart.
//
// KIP-848 consumer groups use the server-side assignors "uniform" and
// "range" and reconcile incrementally: a partition moves to its new owner
// only after its previous owner has acknowledged revoking it.
//
// KIP-1071 streams groups (streams_*.go) work the same way with tasks
// instead of partitions: the first member's topology is resolved against
// the topics (InternalTopicManager's rules), the internal topics it needs
// are handed to Deps.CreateStreamsTopics with no lock held, a sticky
// assignor places active and standby tasks, and the StreamsGroup* records
// (key types 17-23) keep them in __consumer_offsets. As in Kafka 4.2,
// static members, source topic regexes, warm-up tasks, task offsets and
// topology updates are refused.
package coordinator
