package server

// Group configs (the GROUP config resource) are cluster metadata, as in
// Kafka, kept by clusterstate in meta.json with the topics, so that a share
// group's share.auto.offset.reset or lock duration survives a restart.

// groupConfigs returns a copy of every group's configs.
func (c *cluster) groupConfigs() map[string]map[string]string { return c.GroupConfigs() }

// setGroupConfigs replaces one group's configs (none removes the group's
// entry) and persists the metadata; on failure nothing changes.
func (c *cluster) setGroupConfigs(group string, cfg map[string]string) error {
	return c.SetGroupConfigs(group, cfg)
}
