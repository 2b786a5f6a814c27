package server

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/skiffmq/skiff/storage"
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
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	t, ok := c.mu.topics[name]
	if !ok {
		c.mu.Unlock()
		return errUnknownTopic
	}
	old := t.configs
	t.configs = maps.Clone(overrides)
	c.mu.Unlock()
	if err := c.saveMeta(); err != nil {
		c.mu.Lock()
		t.configs = old
		c.mu.Unlock()
		return err
	}
	c.mu.RLock()
	sc := c.storageConfigLocked(t)
	parts := append([]*partition(nil), t.partitions...)
	deletes := strings.Contains(c.topicConfigLocked(t, "cleanup.policy"), "delete")
	c.mu.RUnlock()
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

// addPartitions grows a topic to total partitions. The new logs are
// opened and meta.json written without holding mu; the partitions appear
// once both are done.
func (c *cluster) addPartitions(name string, total int32) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.RLock()
	t, ok := c.mu.topics[name]
	var from int32
	var sc storage.Config
	if ok {
		from = int32(len(t.partitions))
		sc = c.storageConfigLocked(t)
	}
	c.mu.RUnlock()
	if !ok {
		return errUnknownTopic
	}
	if total <= from {
		return fmt.Errorf("server: topic %s already has %d partitions", name, from)
	}
	ps, err := c.openPartitions(t, sc, from, total)
	if err == nil {
		c.mu.RLock()
		mf := c.snapshotLocked(nil, map[string]int32{name: total})
		c.mu.RUnlock()
		err = c.writeMeta(mf)
	}
	if err != nil {
		c.dropLogs(ps)
		return err
	}
	c.mu.Lock()
	t.partitions = append(t.partitions, ps...)
	c.mu.Unlock()
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
