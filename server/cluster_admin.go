package server

import (
	"fmt"
	"maps"
	"strings"
	"time"
)

// topicOverrides returns a copy of a topic's config overrides.
func (c *cluster) topicOverrides(name string) (map[string]string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.mu.topics[name]
	if !ok {
		return nil, false
	}
	return maps.Clone(t.configs), true
}

// setTopicConfigs replaces a topic's overrides (already validated),
// persists them and applies them to every partition log at once. When
// retention may have tightened it is enforced right away rather than at
// the next log.retention.check.interval.ms.
func (c *cluster) setTopicConfigs(name string, overrides map[string]string) error {
	c.mu.Lock()
	t, ok := c.mu.topics[name]
	if !ok {
		c.mu.Unlock()
		return errUnknownTopic
	}
	old := t.configs
	t.configs = maps.Clone(overrides)
	if err := c.saveLocked(); err != nil {
		t.configs = old
		c.mu.Unlock()
		return err
	}
	sc := c.storageConfigLocked(t)
	parts := append([]*partition(nil), t.partitions...)
	deletes := strings.Contains(c.topicConfigLocked(t, "cleanup.policy"), "delete")
	c.mu.Unlock()
	for _, p := range parts {
		p.log.SetConfig(sc)
	}
	c.log.Info().Str("topic", name).Interface("configs", overrides).Msg("topic configs changed")
	if deletes {
		c.enforceRetentionOf(parts, time.Now())
	}
	return nil
}

// enforceRetentionOf applies retention to the given partitions.
func (c *cluster) enforceRetentionOf(parts []*partition, now time.Time) {
	for _, p := range parts {
		n, err := p.log.EnforceRetention(now)
		if err != nil {
			c.log.Error().Err(err).Str("topic", p.topic).Int32("partition", p.index).Msg("retention")
		} else if n > 0 {
			c.log.Info().Str("topic", p.topic).Int32("partition", p.index).Int("segments", n).Msg("deleted segments past retention")
		}
	}
}

// addPartitions grows a topic to total partitions, opening the new logs.
func (c *cluster) addPartitions(name string, total int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.mu.topics[name]
	if !ok {
		return errUnknownTopic
	}
	from := int32(len(t.partitions))
	if total <= from {
		return fmt.Errorf("server: topic %s already has %d partitions", name, from)
	}
	if err := c.openPartitionsLocked(t, from, total); err != nil {
		c.dropLogs(t.partitions[from:])
		t.partitions = t.partitions[:from]
		return err
	}
	if err := c.saveLocked(); err != nil {
		c.dropLogs(t.partitions[from:])
		t.partitions = t.partitions[:from]
		return err
	}
	c.log.Info().Str("topic", name).Int32("partitions", total).Msg("partitions added")
	return nil
}

// partitions returns a topic's partitions, nil if it does not exist.
func (c *cluster) partitions(name string) []*partition {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.mu.topics[name]
	if !ok {
		return nil
	}
	return append([]*partition(nil), t.partitions...)
}
