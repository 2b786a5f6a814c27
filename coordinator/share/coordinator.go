package share

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/coordinator"
)

// Logs tells the coordinator where a partition's log starts and ends.
type Logs interface {
	// Offsets returns the log start offset, the high watermark and the
	// last stable offset; ok is false if the partition does not exist.
	Offsets(topic string, partition int32) (logStart, highWatermark, lastStable int64, ok bool)
}

// Store is where share state becomes durable: the partitions of
// __share_group_state. Write returns once the records are durable.
type Store interface {
	Write(records []KV) error
}

// KV is one record for Store.Write; a nil Value is a tombstone.
type KV struct {
	Key, Value []byte
	// Route is the key the record is partitioned by: the share-partition
	// key "group:topicId:partition", as Kafka's share coordinator does.
	Route string
}

// Settings are the broker-wide share group settings.
type Settings struct {
	Partition Config
	Group     GroupConfig
}

// Group config names (IncrementalAlterConfigs on a GROUP resource).
const (
	ConfigAutoOffsetReset = "share.auto.offset.reset"
	ConfigIsolationLevel  = "share.isolation.level"
	ConfigLockDuration    = "share.record.lock.duration.ms"
)

// Deps are the coordinator's collaborators.
type Deps struct {
	Clock  coordinator.Clock // nil means coordinator.SystemClock()
	Topics Topics
	Logs   Logs
	Store  Store
	// Replayed is the state read back from __share_group_state at start.
	Replayed map[PartitionKey]Persisted
	// GroupConfigs are the share.* configs of each group, kept by the
	// owner of cluster metadata.
	GroupConfigs map[string]map[string]string
}

// Coordinator owns every share group and share-partition of the broker.
//
// Lock order: writeMu before mu. mu guards all state and is never held
// during I/O; writeMu only serializes Store writes so that they reach the
// log in the order their states were taken.
type Coordinator struct {
	set  Settings
	deps Deps

	writeMu sync.Mutex

	mu struct {
		sync.Mutex
		groups   map[string]*Group
		parts    map[PartitionKey]*Partition
		epochs   map[PartitionKey]int32 // snapshot epoch last written
		dirty    map[PartitionKey]bool
		deleted  map[PartitionKey]bool // tombstones to write
		configs  map[string]map[string]string
		sessions map[sessionKey]*session
		changed  chan struct{} // closed when records may have become available
		stop     func() bool   // the pending timer
		closed   bool
	}
}

// New builds the coordinator from replayed state.
func New(set Settings, deps Deps) (*Coordinator, error) {
	if err := set.Partition.Validate(); err != nil {
		return nil, err
	}
	if deps.Clock == nil {
		deps.Clock = coordinator.SystemClock()
	}
	c := &Coordinator{set: set, deps: deps}
	c.mu.groups = make(map[string]*Group)
	c.mu.parts = make(map[PartitionKey]*Partition)
	c.mu.epochs = make(map[PartitionKey]int32)
	c.mu.dirty = make(map[PartitionKey]bool)
	c.mu.deleted = make(map[PartitionKey]bool)
	c.mu.configs = make(map[string]map[string]string)
	c.mu.sessions = make(map[sessionKey]*session)
	c.mu.changed = make(chan struct{})
	for g, cfg := range deps.GroupConfigs {
		c.SetGroupConfigs(g, cfg)
	}
	for pk, st := range deps.Replayed {
		p, err := Restore(set.Partition, st)
		if err != nil {
			return nil, fmt.Errorf("share: restoring %s partition %d: %w", pk.GroupID, pk.Partition, err)
		}
		c.mu.parts[pk] = p
		if _, ok := c.mu.groups[pk.GroupID]; !ok {
			c.mu.groups[pk.GroupID] = NewGroup(pk.GroupID, set.Group)
		}
	}
	return c, nil
}

// Close stops the timer.
func (c *Coordinator) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.closed = true
	if c.mu.stop != nil {
		c.mu.stop()
	}
}

// Changed returns a channel closed when records may have become available
// again (a lock expired, a member released records): long-polling
// ShareFetches wait on it beside the logs' append notifiers.
func (c *Coordinator) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.changed
}

func (c *Coordinator) notifyLocked() {
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
}

// Heartbeat handles ShareGroupHeartbeat.
func (c *Coordinator) Heartbeat(req *kmsg.ShareGroupHeartbeatRequest, clientID, host string) *kmsg.ShareGroupHeartbeatResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.deps.Clock.Now()
	g, ok := c.mu.groups[req.GroupID]
	if !ok {
		g = NewGroup(req.GroupID, c.set.Group)
	}
	resp := g.Heartbeat(now, req, clientID, host, c.deps.Topics)
	if resp.ErrorCode == 0 && req.GroupID != "" {
		c.mu.groups[req.GroupID] = g
	}
	if req.MemberEpoch == -1 && resp.ErrorCode == 0 {
		c.releaseMemberLocked(req.GroupID, req.MemberID)
	}
	c.scheduleLocked()
	return resp
}

// Describe handles ShareGroupDescribe.
func (c *Coordinator) Describe(req *kmsg.ShareGroupDescribeRequest) *kmsg.ShareGroupDescribeResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := kmsg.NewPtrShareGroupDescribeResponse()
	resp.Version = req.Version
	for _, id := range req.GroupIDs {
		g, ok := c.mu.groups[id]
		if !ok {
			d := kmsg.NewShareGroupDescribeResponseGroup()
			d.GroupID = id
			d.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "Group " + id + " not found."
			d.ErrorMessage = &msg
			d.AuthorizedOperations = -2147483648
			resp.Groups = append(resp.Groups, d)
			continue
		}
		d := g.Describe(c.deps.Topics)
		d.AuthorizedOperations = -2147483648
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

// IsMember reports whether member is in group (ShareFetch and
// ShareAcknowledge from anyone else fail with UNKNOWN_MEMBER_ID).
func (c *Coordinator) IsMember(group, member string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.mu.groups[group]
	return ok && g.IsMember(member)
}

// Has reports whether group is a share group.
func (c *Coordinator) Has(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.mu.groups[group]
	return ok
}

// LockDuration is the acquisition lock duration that applies to group.
func (c *Coordinator) LockDuration(group string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.partitionConfigLocked(group).LockDuration
}

func (c *Coordinator) partitionConfigLocked(group string) Config {
	cfg := c.set.Partition
	if v, ok := c.mu.configs[group][ConfigLockDuration]; ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			cfg.LockDuration = time.Duration(ms) * time.Millisecond
		}
	}
	return cfg
}

func (c *Coordinator) partitionLocked(group string, tp TopicPartition) (*Partition, string, bool) {
	topic, ok := c.deps.Topics.TopicNameByID(tp.TopicID)
	if !ok {
		return nil, "", false
	}
	pk := PartitionKey{GroupID: group, TopicID: tp.TopicID, Partition: tp.Partition}
	if p, ok := c.mu.parts[pk]; ok {
		p.SetConfig(c.partitionConfigLocked(group))
		return p, topic, true
	}
	logStart, hwm, _, ok := c.deps.Logs.Offsets(topic, tp.Partition)
	if !ok {
		return nil, "", false
	}
	start := hwm
	if c.mu.configs[group][ConfigAutoOffsetReset] == "earliest" {
		start = logStart
	}
	p := NewPartition(c.partitionConfigLocked(group), start)
	c.mu.parts[pk] = p
	c.mu.dirty[pk] = true
	return p, topic, true
}

// Acquire locks up to maxRecords records across tps for member and
// returns them per partition. Partitions that do not exist are left out.
func (c *Coordinator) Acquire(group, member string, tps []TopicPartition, maxRecords int) map[TopicPartition][]Acquired {
	return c.AcquireBelow(group, member, tps, maxRecords, nil)
}

// NextFetchOffsets returns, for each partition of tps that exists, the
// offset a ShareFetch reads from (Partition.NextFetchOffset), after
// expiring locks and moving past truncated records as Acquire does.
func (c *Coordinator) NextFetchOffsets(group string, tps []TopicPartition) map[TopicPartition]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.deps.Clock.Now()
	out := make(map[TopicPartition]int64, len(tps))
	for _, tp := range tps {
		p, topic, ok := c.partitionLocked(group, tp)
		if !ok {
			continue
		}
		logStart, _, _, _ := c.deps.Logs.Offsets(topic, tp.Partition)
		p.Tick(now)
		p.TruncateTo(logStart)
		out[tp] = p.NextFetchOffset()
	}
	return out
}

// AcquireBelow is Acquire with an exclusive end offset per partition
// (ends; a partition not in it is bounded only by its log): a ShareFetch
// acquires only records in the log bytes its MaxBytes covers, as Kafka
// acquires from the batches it read.
func (c *Coordinator) AcquireBelow(group, member string, tps []TopicPartition, maxRecords int, ends map[TopicPartition]int64) map[TopicPartition][]Acquired {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.deps.Clock.Now()
	out := make(map[TopicPartition][]Acquired)
	readCommitted := c.mu.configs[group][ConfigIsolationLevel] == "read_committed"
	for _, tp := range tps {
		if maxRecords <= 0 {
			break
		}
		p, topic, ok := c.partitionLocked(group, tp)
		if !ok {
			continue
		}
		logStart, hwm, lso, _ := c.deps.Logs.Offsets(topic, tp.Partition)
		p.Tick(now)
		p.TruncateTo(logStart)
		end := hwm
		if readCommitted {
			end = lso
		}
		if e, ok := ends[tp]; ok {
			end = min(end, e)
		}
		got := p.Acquire(now, member, maxRecords, end)
		for _, a := range got {
			maxRecords -= int(a.Last - a.First + 1)
		}
		if len(got) > 0 {
			out[tp] = got
			c.mu.dirty[PartitionKey{group, tp.TopicID, tp.Partition}] = true
		}
	}
	c.scheduleLocked()
	return out
}

// Acknowledge applies acknowledgements and returns once the resulting
// state is durable. The error per partition is a Kafka error (nil if the
// acknowledgements applied).
func (c *Coordinator) Acknowledge(group, member string, acks map[TopicPartition][]Batch) map[TopicPartition]error {
	out := make(map[TopicPartition]error, len(acks))
	c.mu.Lock()
	now := c.deps.Clock.Now()
	for tp, batches := range acks {
		pk := PartitionKey{group, tp.TopicID, tp.Partition}
		p, ok := c.mu.parts[pk]
		if !ok {
			out[tp] = kerr.InvalidRecordState
			continue
		}
		p.Tick(now)
		out[tp] = p.Acknowledge(now, member, batches)
		c.mu.dirty[pk] = true
	}
	c.notifyLocked() // released records may be fetched again
	c.scheduleLocked()
	c.mu.Unlock()
	if err := c.Flush(); err != nil {
		for tp, e := range out {
			if e == nil {
				out[tp] = kerr.CoordinatorNotAvailable
			}
		}
	}
	return out
}

// ReleaseMember releases every lock member holds in group's partitions
// (share session closed).
func (c *Coordinator) ReleaseMember(group, member string) {
	c.mu.Lock()
	c.releaseMemberLocked(group, member)
	c.mu.Unlock()
	_ = c.Flush() // a failed write leaves the state dirty for the next one
}

func (c *Coordinator) releaseMemberLocked(group, member string) {
	for pk, p := range c.mu.parts {
		if pk.GroupID == group {
			p.ReleaseMember(member)
			c.mu.dirty[pk] = true
		}
	}
	c.notifyLocked()
}

// Flush writes the state of every changed share-partition.
func (c *Coordinator) Flush() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	var recs []KV
	var keys []PartitionKey
	for pk := range c.mu.deleted {
		recs = append(recs, KV{Key: Key{RecordSnapshot, pk.GroupID, pk.TopicID, pk.Partition}.AppendTo(nil), Route: route(pk)})
		keys = append(keys, pk)
	}
	now := c.deps.Clock.Now().UnixMilli()
	for pk := range c.mu.dirty {
		p, ok := c.mu.parts[pk]
		if !ok {
			continue
		}
		st, changed := p.TakeUpdate()
		if !changed {
			continue
		}
		c.mu.epochs[pk]++
		v := SnapshotValue{SnapshotEpoch: c.mu.epochs[pk], StateEpoch: 0, LeaderEpoch: -1, StartOffset: st.StartOffset,
			DeliveryCompleteCount: st.DeliveryCompleteCount, CreateTimestamp: now, WriteTimestamp: now, Batches: st.Batches}
		recs = append(recs, KV{Key: Key{RecordSnapshot, pk.GroupID, pk.TopicID, pk.Partition}.AppendTo(nil), Value: v.AppendTo(nil), Route: route(pk)})
	}
	c.mu.dirty = make(map[PartitionKey]bool)
	c.mu.deleted = make(map[PartitionKey]bool)
	c.mu.Unlock()
	if len(recs) == 0 {
		return nil
	}
	if err := c.deps.Store.Write(recs); err != nil {
		// Mark everything dirty again so the next flush retries.
		c.mu.Lock()
		for pk := range c.mu.parts {
			c.mu.parts[pk].dirty = true
			c.mu.dirty[pk] = true
		}
		for _, pk := range keys {
			c.mu.deleted[pk] = true
		}
		c.mu.Unlock()
		return fmt.Errorf("share: writing __share_group_state: %w", err)
	}
	return nil
}

func route(pk PartitionKey) string {
	return fmt.Sprintf("%s:%x:%d", pk.GroupID, pk.TopicID, pk.Partition)
}

// scheduleLocked arms the timer for the next lock or session expiry.
func (c *Coordinator) scheduleLocked() {
	if c.mu.closed {
		return
	}
	var next time.Time
	have := false
	consider := func(t time.Time, ok bool) {
		if ok && (!have || t.Before(next)) {
			next, have = t, true
		}
	}
	for _, p := range c.mu.parts {
		consider(p.NextDeadline())
	}
	for _, g := range c.mu.groups {
		consider(g.NextDeadline())
	}
	if c.mu.stop != nil {
		c.mu.stop()
		c.mu.stop = nil
	}
	if !have {
		return
	}
	d := next.Sub(c.deps.Clock.Now())
	if d < 0 {
		d = 0
	}
	c.mu.stop = c.deps.Clock.AfterFunc(d, c.tick)
}

// tick expires locks and sessions, then persists what changed.
func (c *Coordinator) tick() {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	now := c.deps.Clock.Now()
	for id, g := range c.mu.groups {
		for _, m := range g.Expire(now, c.deps.Topics) {
			c.releaseMemberLocked(id, m)
			delete(c.mu.sessions, sessionKey{id, m})
		}
	}
	for pk, p := range c.mu.parts {
		if d, ok := p.NextDeadline(); ok && !d.After(now) {
			p.Tick(now)
			c.mu.dirty[pk] = true
		}
	}
	c.notifyLocked()
	c.mu.stop = nil
	c.scheduleLocked()
	c.mu.Unlock()
	_ = c.Flush()
}

// ListedGroup is a share group for ListGroups.
type ListedGroup struct {
	ID, State string
}

// List returns every share group, sorted by ID.
func (c *Coordinator) List() []ListedGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ListedGroup, 0, len(c.mu.groups))
	for id, g := range c.mu.groups {
		st := "Stable"
		if g.Empty() {
			st = "Empty"
		}
		out = append(out, ListedGroup{ID: id, State: st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// DeleteGroup deletes an empty share group and its state; a group with
// members fails with NON_EMPTY_GROUP, an unknown one with
// GROUP_ID_NOT_FOUND.
func (c *Coordinator) DeleteGroup(id string) error {
	c.mu.Lock()
	g, ok := c.mu.groups[id]
	switch {
	case !ok:
		c.mu.Unlock()
		return kerr.GroupIDNotFound
	case !g.Empty():
		c.mu.Unlock()
		return kerr.NonEmptyGroup
	}
	delete(c.mu.groups, id)
	delete(c.mu.configs, id)
	for pk := range c.mu.parts {
		if pk.GroupID == id {
			delete(c.mu.parts, pk)
			delete(c.mu.dirty, pk)
			c.mu.deleted[pk] = true
		}
	}
	c.mu.Unlock()
	if err := c.Flush(); err != nil {
		return kerr.CoordinatorNotAvailable
	}
	return nil
}
