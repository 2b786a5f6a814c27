package server

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// configType is the type Kafka documents for a config, used to validate
// values and to report it in DescribeConfigs.
type configType int8

// The values match DescribeConfigs' config_type field.
const (
	typeBoolean configType = 1
	typeString  configType = 2
	typeInt     configType = 3
	typeShort   configType = 4
	typeLong    configType = 5
	typeDouble  configType = 6
	typeList    configType = 7
)

// topicConfigDef describes one topic-level config: its Kafka name, the
// broker config that supplies its default, its type and default value, and
// an optional check beyond the type.
type topicConfigDef struct {
	name   string
	broker string // broker-level synonym (e.g. log.retention.ms), "" if none
	typ    configType
	def    string
	check  func(string) error
}

const maxLong = "9223372036854775807"

// topicConfigDefs lists every topic config of Apache Kafka 4.x that a
// single-node broker can honour or at least store and report.
var topicConfigDefs = []topicConfigDef{
	{name: "cleanup.policy", broker: "log.cleanup.policy", typ: typeList, def: "delete", check: oneOfList("delete", "compact")},
	{name: "compression.type", broker: "compression.type", typ: typeString, def: "producer", check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")},
	{name: "compression.gzip.level", broker: "compression.gzip.level", typ: typeInt, def: "-1", check: intRange(-1, 9)},
	{name: "compression.lz4.level", broker: "compression.lz4.level", typ: typeInt, def: "9", check: intRange(1, 17)},
	{name: "compression.zstd.level", broker: "compression.zstd.level", typ: typeInt, def: "3", check: intRange(-131072, 22)},
	{name: "delete.retention.ms", broker: "log.cleaner.delete.retention.ms", typ: typeLong, def: "86400000", check: longMin(0)},
	{name: "file.delete.delay.ms", broker: "log.segment.delete.delay.ms", typ: typeLong, def: "60000", check: longMin(0)},
	{name: "flush.messages", broker: "log.flush.interval.messages", typ: typeLong, def: maxLong, check: longMin(1)},
	{name: "flush.ms", broker: "log.flush.interval.ms", typ: typeLong, def: maxLong, check: longMin(0)},
	{name: "follower.replication.throttled.replicas", broker: "", typ: typeList, def: ""},
	{name: "index.interval.bytes", broker: "log.index.interval.bytes", typ: typeInt, def: "4096", check: intRange(0, math.MaxInt32)},
	{name: "leader.replication.throttled.replicas", broker: "", typ: typeList, def: ""},
	{name: "local.retention.bytes", broker: "log.local.retention.bytes", typ: typeLong, def: "-2", check: longMin(-2)},
	{name: "local.retention.ms", broker: "log.local.retention.ms", typ: typeLong, def: "-2", check: longMin(-2)},
	{name: "max.compaction.lag.ms", broker: "log.cleaner.max.compaction.lag.ms", typ: typeLong, def: maxLong, check: longMin(1)},
	{name: "max.message.bytes", broker: "message.max.bytes", typ: typeInt, def: "1048588", check: intRange(0, math.MaxInt32)},
	{name: "message.timestamp.after.max.ms", broker: "log.message.timestamp.after.max.ms", typ: typeLong, def: "3600000", check: longMin(0)},
	{name: "message.timestamp.before.max.ms", broker: "log.message.timestamp.before.max.ms", typ: typeLong, def: maxLong, check: longMin(0)},
	{name: "message.timestamp.type", broker: "log.message.timestamp.type", typ: typeString, def: "CreateTime", check: oneOf("CreateTime", "LogAppendTime")},
	{name: "min.cleanable.dirty.ratio", broker: "log.cleaner.min.cleanable.ratio", typ: typeDouble, def: "0.5", check: doubleRange(0, 1)},
	{name: "min.compaction.lag.ms", broker: "log.cleaner.min.compaction.lag.ms", typ: typeLong, def: "0", check: longMin(0)},
	{name: "min.insync.replicas", broker: "min.insync.replicas", typ: typeInt, def: "1", check: intRange(1, math.MaxInt32)},
	{name: "preallocate", broker: "log.preallocate", typ: typeBoolean, def: "false"},
	{name: "remote.log.copy.disable", broker: "", typ: typeBoolean, def: "false"},
	{name: "remote.log.delete.on.disable", broker: "", typ: typeBoolean, def: "false"},
	{name: "remote.storage.enable", broker: "", typ: typeBoolean, def: "false", check: oneOf("false")},
	{name: "retention.bytes", broker: "log.retention.bytes", typ: typeLong, def: "-1", check: longMin(-1)},
	{name: "retention.ms", broker: "log.retention.ms", typ: typeLong, def: "604800000", check: longMin(-1)},
	{name: "segment.bytes", broker: "log.segment.bytes", typ: typeInt, def: "1073741824", check: intRange(14, math.MaxInt32)},
	{name: "segment.index.bytes", broker: "log.index.size.max.bytes", typ: typeInt, def: "10485760", check: intRange(4, math.MaxInt32)},
	{name: "segment.jitter.ms", broker: "log.roll.jitter.ms", typ: typeLong, def: "0", check: longMin(0)},
	{name: "segment.ms", broker: "log.roll.ms", typ: typeLong, def: "604800000", check: longMin(1)},
	{name: "unclean.leader.election.enable", broker: "unclean.leader.election.enable", typ: typeBoolean, def: "false"},
}

func findTopicConfig(name string) (*topicConfigDef, bool) {
	for i := range topicConfigDefs {
		if topicConfigDefs[i].name == name {
			return &topicConfigDefs[i], true
		}
	}
	return nil, false
}

// validateValue checks v against the def's type and extra check.
func (d *topicConfigDef) validateValue(v string) error {
	if err := checkType(d.typ, v); err != nil {
		return fmt.Errorf("invalid value %q for configuration %s: %w", v, d.name, err)
	}
	if d.check != nil {
		if err := d.check(v); err != nil {
			return fmt.Errorf("invalid value %q for configuration %s: %w", v, d.name, err)
		}
	}
	return nil
}

func checkType(t configType, v string) error {
	var err error
	switch t {
	case typeBoolean:
		if v != "true" && v != "false" {
			err = fmt.Errorf("expected true or false")
		}
	case typeInt:
		_, err = strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	case typeShort:
		_, err = strconv.ParseInt(strings.TrimSpace(v), 10, 16)
	case typeLong:
		_, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	case typeDouble:
		_, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
	}
	if err != nil {
		return fmt.Errorf("not a valid %s", typeName(t))
	}
	return nil
}

func typeName(t configType) string {
	switch t {
	case typeBoolean:
		return "boolean"
	case typeInt:
		return "int"
	case typeShort:
		return "short"
	case typeLong:
		return "long"
	case typeDouble:
		return "double"
	case typeList:
		return "list"
	}
	return "string"
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
		}
		return nil
	}
}

func oneOfList(allowed ...string) func(string) error {
	return func(v string) error {
		for _, item := range strings.Split(v, ",") {
			if !slices.Contains(allowed, strings.TrimSpace(item)) {
				return fmt.Errorf("each item must be one of %s", strings.Join(allowed, ", "))
			}
		}
		return nil
	}
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return nil
	}
}

func longMin(lo int64) func(string) error {
	return intRange(lo, math.MaxInt64)
}

func doubleRange(lo, hi float64) func(string) error {
	return func(v string) error {
		f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if f < lo || f > hi {
			return fmt.Errorf("must be between %g and %g", lo, hi)
		}
		return nil
	}
}

func parseLong(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}
