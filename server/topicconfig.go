package server

import (
	"errors"
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
	// internal marks a config Kafka defines with defineInternal: accepted
	// and honoured, never listed by DescribeConfigs or CreateTopics.
	internal bool
}

const maxLong = "9223372036854775807"

const (
	// minSegmentBytes is Kafka 4's lower bound on segment.bytes and
	// log.segment.bytes (LogConfig, KIP-1030).
	minSegmentBytes = 1 << 20
	// internalSegmentBytes is the config Kafka 4 keeps for tests that need
	// small segments; when set it replaces segment.bytes.
	internalSegmentBytes = "internal.segment.bytes"
	// minInternalSegmentBytes keeps even the test override above one
	// batch header, so every segment can hold a batch. Kafka has no
	// validator here (a tiny value just rolls per batch).
	minInternalSegmentBytes = 61
)

// topicConfigDefs lists every topic config of Apache Kafka 4.x that a
// single-node broker can honour or at least store and report.
var topicConfigDefs = []topicConfigDef{
	{name: "cleanup.policy", broker: "log.cleanup.policy", typ: typeList, def: "delete", check: oneOfList("delete", "compact")},
	{name: "compression.type", broker: "compression.type", typ: typeString, def: "producer", check: oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")},
	{name: "compression.gzip.level", broker: "compression.gzip.level", typ: typeInt, def: "-1", check: gzipLevel},
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
	// Kafka puts no bound on retention.bytes: any negative value means unlimited.
	{name: "retention.bytes", broker: "log.retention.bytes", typ: typeLong, def: "-1"},
	{name: "retention.ms", broker: "log.retention.ms", typ: typeLong, def: "604800000", check: longMin(-1)},
	// KIP-1030 (Kafka 4.0) raised the minimum from 14 bytes to 1 MiB: tiny
	// segments open a file per batch and exhaust descriptors.
	{name: "segment.bytes", broker: "log.segment.bytes", typ: typeInt, def: "1073741824", check: intRange(minSegmentBytes, math.MaxInt32)},
	// Kafka 4's testing-only override of segment.bytes, without a minimum.
	{name: internalSegmentBytes, typ: typeInt, check: intRange(minInternalSegmentBytes, math.MaxInt32), internal: true},
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

// validateValue checks v against the def's type and extra check. Errors
// read as Kafka's ConfigException: "Invalid value V for configuration N:
// reason".
func (d *topicConfigDef) validateValue(v string) error {
	err := checkType(d.typ, v)
	if err == nil && d.check != nil {
		err = d.check(v)
	}
	if err != nil {
		return fmt.Errorf("Invalid value %s for configuration %s: %w", v, d.name, err)
	}
	return nil
}

// validateTopicConfigSet applies Kafka's checks across configs
// (LogConfig.validateValues) to a topic's overrides over the broker's
// defaults.
func validateTopicConfigSet(overrides, defaults map[string]string) error {
	get := func(name string) int64 {
		if v, ok := overrides[name]; ok {
			return parseLong(v)
		}
		return parseLong(defaults[name])
	}
	if minLag, maxLag := get("min.compaction.lag.ms"), get("max.compaction.lag.ms"); minLag > maxLag {
		return fmt.Errorf("conflict topic config setting min.compaction.lag.ms (%d) > max.compaction.lag.ms (%d)", minLag, maxLag)
	}
	return nil
}

// checkType parses v as Kafka's ConfigDef.parseType does (trimmed;
// booleans in any case) and words failures as it does.
func checkType(t configType, v string) error {
	var err error
	switch t {
	case typeBoolean:
		if b := strings.TrimSpace(v); !strings.EqualFold(b, "true") && !strings.EqualFold(b, "false") {
			return errors.New("Expected value to be either true or false")
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
		return fmt.Errorf("Not a number of type %s", strings.ToUpper(typeName(t)))
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

// oneOf is Kafka's ValidString.in.
func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("String must be one of: %s", strings.Join(allowed, ", "))
		}
		return nil
	}
}

// oneOfList is Kafka's ValidList.in: every item must be allowed.
func oneOfList(allowed ...string) func(string) error {
	return func(v string) error {
		for _, item := range strings.Split(v, ",") {
			if !slices.Contains(allowed, strings.TrimSpace(item)) {
				return fmt.Errorf("String must be one of: %s", strings.Join(allowed, ", "))
			}
		}
		return nil
	}
}

// intRange is Kafka's ConfigDef.Range (atLeast / between) for integers.
func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch {
		case n < lo:
			return fmt.Errorf("Value must be at least %d", lo)
		case n > hi:
			return fmt.Errorf("Value must be no more than %d", hi)
		}
		return nil
	}
}

func longMin(lo int64) func(string) error {
	return intRange(lo, math.MaxInt64)
}

// gzipLevel is Kafka's gzip level validator: 1 to 9, or -1 for the
// codec's default.
func gzipLevel(v string) error {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if n != -1 && (n < 1 || n > 9) {
		return errors.New("Value must be between 1 and 9 or equal to -1")
	}
	return nil
}

func doubleRange(lo, hi float64) func(string) error {
	return func(v string) error {
		f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch {
		case f < lo:
			return fmt.Errorf("Value must be at least %g", lo)
		case f > hi:
			return fmt.Errorf("Value must be no more than %g", hi)
		}
		return nil
	}
}

func parseLong(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}
