package share

import (
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeOffsets answers one group of DescribeShareGroupOffsets. A
// partition the group never fetched from has StartOffset -1.
func (c *Coordinator) DescribeOffsets(rg kmsg.DescribeShareGroupOffsetsRequestGroup) kmsg.DescribeShareGroupOffsetsResponseGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
	out.GroupID = rg.GroupID
	if _, ok := c.mu.groups[rg.GroupID]; !ok {
		out.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + rg.GroupID + " not found."
		out.ErrorMessage = &msg
		return out
	}
	topics := rg.Topics
	if topics == nil { // all the partitions the group has state for
		byName := make(map[string][]int32)
		for pk := range c.mu.parts {
			if pk.GroupID != rg.GroupID {
				continue
			}
			if name, ok := c.deps.Topics.TopicNameByID(pk.TopicID); ok {
				byName[name] = append(byName[name], pk.Partition)
			}
		}
		for name, parts := range byName {
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			topics = append(topics, kmsg.DescribeShareGroupOffsetsRequestGroupTopic{Topic: name, Partitions: parts})
		}
		sort.Slice(topics, func(i, j int) bool { return topics[i].Topic < topics[j].Topic })
	}
	for _, rt := range topics {
		ot := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
		ot.Topic = rt.Topic
		id, known := c.deps.Topics.TopicID(rt.Topic)
		ot.TopicID = id
		for _, part := range rt.Partitions {
			op := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
			op.Partition, op.StartOffset, op.LeaderEpoch, op.Lag = part, -1, -1, -1
			_, hwm, _, exists := c.deps.Logs.Offsets(rt.Topic, part)
			if !known || !exists {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if p, ok := c.mu.parts[PartitionKey{rg.GroupID, id, part}]; ok {
				op.StartOffset, op.LeaderEpoch = p.StartOffset(), 0
				// KIP-1226: records still to deliver, not counting those
				// above SPSO whose delivery already ended.
				op.Lag = max(0, hwm-p.StartOffset()-int64(p.DeliveryCompleteCount()))
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		out.Topics = append(out.Topics, ot)
	}
	return out
}

// AlterOffsets handles AlterShareGroupOffsets: it moves SPSO of the named
// partitions and forgets their in-flight state. The group must be empty.
func (c *Coordinator) AlterOffsets(req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse {
	resp := kmsg.NewPtrAlterShareGroupOffsetsResponse()
	resp.Version = req.Version
	c.mu.Lock()
	g, ok := c.mu.groups[req.GroupID]
	if ok && !g.Empty() {
		c.mu.Unlock()
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		msg := "The group is not empty."
		resp.ErrorMessage = &msg
		return resp
	}
	if !ok {
		c.mu.groups[req.GroupID] = NewGroup(req.GroupID, c.set.Group)
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		ot.Topic = rt.Topic
		id, known := c.deps.Topics.TopicID(rt.Topic)
		ot.TopicID = id
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			logStart, hwm, _, exists := c.deps.Logs.Offsets(rt.Topic, rp.Partition)
			switch {
			case !known || !exists:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.StartOffset < -1:
				op.ErrorCode = kerr.InvalidRequest.Code
			default:
				start := rp.StartOffset
				if start == -1 {
					start = hwm
				}
				start = min(max(start, logStart), hwm)
				pk := PartitionKey{req.GroupID, id, rp.Partition}
				p, ok := c.mu.parts[pk]
				if !ok {
					p = NewPartition(c.partitionConfigLocked(req.GroupID), start)
					c.mu.parts[pk] = p
				}
				p.Reset(start)
				c.mu.dirty[pk] = true
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	c.mu.Unlock()
	if err := c.Flush(); err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	}
	return resp
}

// DeleteOffsets handles DeleteShareGroupOffsets: the group forgets the
// topics' share-partitions. The group must be empty.
func (c *Coordinator) DeleteOffsets(req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse {
	resp := kmsg.NewPtrDeleteShareGroupOffsetsResponse()
	resp.Version = req.Version
	c.mu.Lock()
	g, ok := c.mu.groups[req.GroupID]
	switch {
	case !ok:
		c.mu.Unlock()
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	case !g.Empty():
		c.mu.Unlock()
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		ot.Topic = rt.Topic
		id, known := c.deps.Topics.TopicID(rt.Topic)
		ot.TopicID = id
		if !known {
			ot.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		for pk := range c.mu.parts {
			if known && pk.GroupID == req.GroupID && pk.TopicID == id {
				delete(c.mu.parts, pk)
				delete(c.mu.dirty, pk)
				c.mu.deleted[pk] = true
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	c.mu.Unlock()
	if err := c.Flush(); err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	}
	return resp
}

// GroupConfigs returns the share.* configs set on group.
func (c *Coordinator) GroupConfigs(group string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.mu.configs[group]))
	for k, v := range c.mu.configs[group] {
		out[k] = v
	}
	return out
}

// ValidateGroupConfig checks one share group config as Kafka's
// GroupConfig does; it reports whether name is a share group config.
func ValidateGroupConfig(name, value string) (isShare bool, err error) {
	switch name {
	case ConfigAutoOffsetReset:
		if value != "earliest" && value != "latest" {
			return true, kerr.InvalidConfig
		}
	case ConfigIsolationLevel:
		if value != "read_committed" && value != "read_uncommitted" {
			return true, kerr.InvalidConfig
		}
	case ConfigLockDuration:
		ms, err := strconv.ParseInt(strings.TrimSpace(value), 10, 32)
		if err != nil || ms < 1000 || ms > 3600000 {
			return true, kerr.InvalidConfig
		}
	default:
		return false, nil
	}
	return true, nil
}

// SetGroupConfigs replaces group's share.* configs.
func (c *Coordinator) SetGroupConfigs(group string, cfg map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(cfg) == 0 {
		delete(c.mu.configs, group)
		return
	}
	c.mu.configs[group] = make(map[string]string, len(cfg))
	for k, v := range cfg {
		c.mu.configs[group][k] = v
	}
}

// SetGroupConfig sets (value non-nil) or deletes a share group config.
// Callers validate first.
func (c *Coordinator) SetGroupConfig(group, name string, value *string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if value == nil {
		delete(c.mu.configs[group], name)
		return
	}
	if c.mu.configs[group] == nil {
		c.mu.configs[group] = make(map[string]string)
	}
	c.mu.configs[group][name] = *value
}
