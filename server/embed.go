package server

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RunTimers runs the broker's time-driven checks at once, against
// Config.Clock: transactions past their transaction.timeout.ms are
// aborted (and idle transactional ids expired), idle producer ids are
// forgotten, and retention is applied. They otherwise run on wall-clock
// tickers; a test that advances a fake clock calls RunTimers so that what
// is due happens without waiting. Coordinator timers (sessions,
// rebalances) follow the clock by themselves.
func (s *Server) RunTimers() {
	s.txn.Tick()
	s.store.ExpireProducers()
	s.meta.enforceRetention(s.cfg.clock().Now())
}

// CreateTopic creates a topic as a CreateTopics request would, with the
// same checks, for embedders and test kits that set topics up before any
// client connects. partitions <= 0 means num.partitions.
func (s *Server) CreateTopic(name string, partitions int32, configs map[string]string) error {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
	if partitions > 0 {
		rt.NumPartitions = partitions
	}
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	n, _, _, cfgs, code, msg := s.validateNewTopic(&rt)
	if code != nil {
		return fmt.Errorf("server: create topic %s: %w: %s", name, code, msg)
	}
	if _, err := s.meta.createTopic(name, n, cfgs); err != nil {
		return fmt.Errorf("server: create topic %s: %w", name, err)
	}
	return nil
}
