package server

import (
	"fmt"
)

// newTopic is one topic of a create request, already validated.
type newTopic struct {
	name       string
	partitions int32
	configs    map[string]string
}

// createResult is the outcome of creating one newTopic.
type createResult struct {
	view topicView
	err  error // errTopicExists, errTopicCollision or a storage error
}

// createTopics creates topics together: their names are checked under mu,
// their logs opened and meta.json written once for all of them with mu
// released, and then they are published under mu. A request creating
// thousands of topics thus costs one metadata write, and produce, fetch and
// metadata requests are never held up by it. Results are in specs' order.
func (c *cluster) createTopics(specs []newTopic) []createResult {
	res := make([]createResult, len(specs))
	c.saveMu.Lock()
	defer c.saveMu.Unlock()

	// Reserve. Only saveMu holders add topics, so what is checked here
	// still holds when the topics are published.
	var created []*topic
	var idx []int                                   // index in specs of each created topic
	reserved := make(map[string]string, len(specs)) // collision key -> name
	c.mu.RLock()
	for i, sp := range specs {
		if _, ok := c.mu.topics[sp.name]; ok {
			res[i].err = errTopicExists
			continue
		}
		key := collisionKey(sp.name)
		if other, ok := reserved[key]; ok {
			if other == sp.name {
				res[i].err = errTopicExists
			} else {
				res[i].err = fmt.Errorf("%w: %q collides with topic %q", errTopicCollision, sp.name, other)
			}
			continue
		}
		if clash := c.collidingTopicLocked(sp.name); clash != "" {
			res[i].err = fmt.Errorf("%w: %q collides with existing topic %q", errTopicCollision, sp.name, clash)
			continue
		}
		reserved[key] = sp.name
		configs := sp.configs
		if configs == nil {
			configs = map[string]string{}
		}
		t := &topic{name: sp.name, id: c.newTopicIDLocked(), internal: isInternalTopic(sp.name), configs: configs}
		created = append(created, t)
		idx = append(idx, i)
	}
	c.mu.RUnlock()
	if len(created) == 0 {
		return res
	}

	// Open the logs. The topics are not visible yet, so this needs no lock.
	kept := created[:0:0]
	keptIdx := idx[:0:0]
	for j, t := range created {
		// storageConfigLocked reads t.configs and c.cfg only; t is ours.
		ps, err := c.openPartitions(t, c.storageConfigLocked(t), 0, specs[idx[j]].partitions)
		if err != nil {
			c.dropLogs(ps)
			res[idx[j]].err = err
			continue
		}
		t.partitions = ps
		kept = append(kept, t)
		keptIdx = append(keptIdx, idx[j])
	}
	if len(kept) == 0 {
		return res
	}

	// Persist once for the whole request, then publish.
	c.mu.RLock()
	mf := c.snapshotLocked(kept, nil)
	c.mu.RUnlock()
	if err := c.writeMeta(mf); err != nil {
		for j, t := range kept {
			c.dropLogs(t.partitions)
			res[keptIdx[j]].err = err
		}
		return res
	}
	c.mu.Lock()
	for _, t := range kept {
		c.mu.topics[t.name] = t
		c.mu.byID[t.id] = t
	}
	c.mu.Unlock()
	for j, t := range kept {
		res[keptIdx[j]].view = topicView{name: t.name, id: t.id, internal: t.internal, partitions: int32(len(t.partitions))}
	}
	if len(kept) == 1 {
		c.log.Info().Str("topic", kept[0].name).Int("partitions", len(kept[0].partitions)).Msg("topic created")
	} else {
		c.log.Info().Int("topics", len(kept)).Msg("topics created")
	}
	return res
}

// newTopicIDLocked returns a fresh topic id that no topic uses. Callers
// hold mu (either mode) and saveMu.
func (c *cluster) newTopicIDLocked() [16]byte {
	for {
		id := newTopicID()
		if _, taken := c.mu.byID[id]; !taken {
			return id
		}
	}
}
