package server

import (
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/coordinator"
	"github.com/skiffmq/skiff/coordinator/share"
)

// Group configs (KIP-848/KIP-932): IncrementalAlterConfigs and
// DescribeConfigs on a GROUP resource, as Kafka 4.2 sets a share group's
// share.auto.offset.reset, share.isolation.level and
// share.record.lock.duration.ms. Skiff supports these share.* names only;
// they are kept in the cluster metadata (groupconfigs.go).

// groupConfigDefs are the group configs Skiff knows, in describe order.
var groupConfigDefs = []struct {
	name string
	typ  configType
	doc  string
}{
	{share.ConfigAutoOffsetReset, typeString, "Where a share group starts consuming a partition it has no state for: earliest or latest."},
	{share.ConfigIsolationLevel, typeString, "Whether a share group reads uncommitted transactional records (read_uncommitted) or only committed ones (read_committed)."},
	{share.ConfigLockDuration, typeInt, "The acquisition lock duration of the share group's records; defaults to group.share.record.lock.duration.ms."},
	{coordinator.StreamsConfigSessionTimeout, typeInt, "The session timeout of the streams group's members; defaults to group.streams.session.timeout.ms."},
	{coordinator.StreamsConfigHeartbeatInterval, typeInt, "The heartbeat interval of the streams group's members; defaults to group.streams.heartbeat.interval.ms."},
	{coordinator.StreamsConfigNumStandbys, typeInt, "The standby replicas of each of the streams group's tasks; defaults to group.streams.num.standby.replicas."},
	{coordinator.StreamsConfigInitialDelay, typeInt, "How long the first member of the empty streams group waits for others before tasks are assigned; defaults to group.streams.initial.rebalance.delay.ms."},
}

// validateStreamsGroupConfig checks a streams.* group config as Kafka's
// GroupConfig does (the standby count up to group.streams.max.standby.replicas,
// 2 by default); isStreams is false for other names.
func validateStreamsGroupConfig(name, value string) (isStreams bool, ok bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 32)
	switch name {
	case coordinator.StreamsConfigSessionTimeout, coordinator.StreamsConfigHeartbeatInterval:
		return true, value == "" || (err == nil && n >= 1)
	case coordinator.StreamsConfigNumStandbys:
		return true, value == "" || (err == nil && n >= 0 && n <= 2)
	case coordinator.StreamsConfigInitialDelay:
		return true, value == "" || (err == nil && n >= 0)
	}
	return false, false
}

func (s *Server) alterGroupConfigs(group string, ops []alterOp, replace, validateOnly bool) error {
	if group == "" {
		return alterErr(kerr.InvalidRequest, "Group name must not be empty.")
	}
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.name] {
			return alterErr(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		seen[op.name] = true
		isShare, _ := share.ValidateGroupConfig(op.name, "")
		isStreams, _ := validateStreamsGroupConfig(op.name, "")
		if !isShare && !isStreams {
			return alterErr(kerr.InvalidConfig, "Unknown group config name: %s", op.name)
		}
		switch op.op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.value == nil {
				return alterErr(kerr.InvalidRequest, "Null value not supported for : %s", op.name)
			}
			if isStreams {
				if _, ok := validateStreamsGroupConfig(op.name, *op.value); !ok {
					return alterErr(kerr.InvalidConfig, "Invalid value %s for configuration %s", *op.value, op.name)
				}
			} else if _, err := share.ValidateGroupConfig(op.name, *op.value); err != nil {
				return alterErr(kerr.InvalidConfig, "Invalid value %s for configuration %s", *op.value, op.name)
			}
		case kmsg.IncrementalAlterConfigOpDelete:
		default:
			return alterErr(kerr.InvalidRequest, "Config %s is not a list: APPEND and SUBTRACT do not apply", op.name)
		}
	}
	next := s.shares.GroupConfigs(group)
	if replace {
		next = map[string]string{}
	}
	for _, op := range ops {
		if op.op == kmsg.IncrementalAlterConfigOpDelete {
			delete(next, op.name)
		} else {
			next[op.name] = *op.value
		}
	}
	if validateOnly {
		return nil
	}
	// Durable first (meta.json), then in effect.
	if err := s.meta.setGroupConfigs(group, next); err != nil {
		s.log.Error().Err(err).Str("group", group).Msg("altering group configs")
		return alterErr(kerr.UnknownServerError, "%v", err)
	}
	s.shares.SetGroupConfigs(group, next)
	s.groups.SetStreamsGroupConfigs(group, next)
	return nil
}

func (s *Server) groupConfigEntries(group string) ([]configEntry, *kerr.Error, string) {
	if group == "" {
		return nil, kerr.InvalidRequest, "Group name must not be empty."
	}
	set := s.shares.GroupConfigs(group)
	defaults := map[string]string{
		share.ConfigAutoOffsetReset:                "latest",
		share.ConfigIsolationLevel:                 "read_uncommitted",
		share.ConfigLockDuration:                   s.cfg.setting("group.share.record.lock.duration.ms"),
		coordinator.StreamsConfigSessionTimeout:    s.cfg.setting("group.streams.session.timeout.ms"),
		coordinator.StreamsConfigHeartbeatInterval: s.cfg.setting("group.streams.heartbeat.interval.ms"),
		coordinator.StreamsConfigNumStandbys:       s.cfg.setting("group.streams.num.standby.replicas"),
		coordinator.StreamsConfigInitialDelay:      s.cfg.setting("group.streams.initial.rebalance.delay.ms"),
	}
	out := make([]configEntry, 0, len(groupConfigDefs))
	for _, d := range groupConfigDefs {
		e := configEntry{name: d.name, typ: d.typ, doc: d.doc, source: kmsg.ConfigSourceDefaultConfig}
		v := defaults[d.name]
		if sv, ok := set[d.name]; ok {
			v, e.source = sv, kmsg.ConfigSourceGroupConfig
		}
		e.value = kmsg.StringPtr(v)
		out = append(out, e)
	}
	return out, nil, ""
}
