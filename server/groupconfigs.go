package server

import "maps"

// Group configs (the GROUP config resource) are cluster metadata, as in
// Kafka, and kept in meta.json with the topics, so that a share group's
// share.auto.offset.reset or lock duration survives a restart.

func (c *cluster) groupConfigsLocked() map[string]map[string]string {
	if len(c.mu.groupCfgs) == 0 {
		return nil
	}
	out := make(map[string]map[string]string, len(c.mu.groupCfgs))
	for g, cfg := range c.mu.groupCfgs {
		out[g] = maps.Clone(cfg)
	}
	return out
}

// groupConfigs returns a copy of every group's configs.
func (c *cluster) groupConfigs() map[string]map[string]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.groupConfigsLocked()
}

// setGroupConfigs replaces one group's configs (none removes the group's
// entry) and persists the metadata; on failure nothing changes.
func (c *cluster) setGroupConfigs(group string, cfg map[string]string) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	old, had := c.mu.groupCfgs[group]
	if len(cfg) == 0 {
		delete(c.mu.groupCfgs, group)
	} else {
		c.mu.groupCfgs[group] = maps.Clone(cfg)
	}
	c.mu.Unlock()
	if err := c.saveMeta(); err != nil {
		c.mu.Lock()
		if had {
			c.mu.groupCfgs[group] = old
		} else {
			delete(c.mu.groupCfgs, group)
		}
		c.mu.Unlock()
		return err
	}
	return nil
}
