package server

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/coordinator"
	"github.com/skiffmq/skiff/storage"
)

// Config configures a Server. The zero value plus a DataDir is usable:
// Validate fills defaults. Settings holds Kafka broker config names
// (server.properties syntax) and is how everything Kafka-named is set.
type Config struct {
	// Listen is the address to accept clients on, host:port; port 0 picks a
	// free port (see Server.Addr). Overridden by the listeners setting.
	Listen string
	// Advertise is the host:port clients are told to connect to. Empty
	// means the listen address (after port 0 is resolved).
	Advertise string
	// DataDir holds the partition logs and cluster metadata (log.dirs).
	DataDir string
	// NodeID is this broker's node id (node.id).
	NodeID int32
	// Settings are Kafka broker configs by name, e.g. "num.partitions".
	// Unknown names are an error.
	Settings map[string]string
	// Logger receives structured logs; the zero value discards them.
	Logger zerolog.Logger
	// FS is the filesystem DataDir lives on; nil is the operating system's.
	// Tests pass a storage.MemFS to simulate crashes and disk faults.
	FS storage.FS

	// Observability (see obsconfig.go; the skiff.* settings override these).
	// HTTPListen is the admin HTTP listener, host:port, serving /metrics,
	// /healthz and /readyz; empty: none.
	HTTPListen string
	// Pprof serves /debug/pprof/ on the HTTP listener.
	Pprof bool
	// DisableMetrics turns metric collection off (for overhead benchmarks).
	DisableMetrics bool
	// PartitionMetrics adds per-partition series (offsets, size): one set
	// per partition, so off by default.
	PartitionMetrics bool
	// Lifecycle, if set, is called at each Stage with the HTTP listener's
	// address ("" without one), synchronously: a test can look at /readyz
	// while the server is in that stage.
	Lifecycle func(stage Stage, httpAddr string)

	// Profile is a named set of defaults applied under Settings: "" (or
	// "production") keeps Kafka's defaults; "test" is what test suites want
	// (see profile.go). Settings given explicitly always win.
	Profile string
	// Clock is the broker's source of time for coordinators, transaction
	// timeouts, producer-id expiry and retention. Nil means the wall clock;
	// tests inject one they can advance (see Server.RunTimers).
	Clock coordinator.Clock
	// TestControl, if set, serves the fault-injection HTTP API (see
	// faults_http.go) on its own listener at this host:port. Off by
	// default: it lets anyone who reaches it break the broker's answers.
	TestControl string

	// ScramUsers are SCRAM users made (or replaced) at start, each
	// name:password[:SCRAM-SHA-256|SCRAM-SHA-512]; without a mechanism, a
	// credential for each. Only the salted hashes are kept.
	ScramUsers []string

	// Cluster makes the broker one of a cluster whose metadata lives in
	// etcd (etcdstate.Node implements it; see clusternode.go). Nil is a
	// single node, which needs no etcd at all. The server closes it.
	Cluster ClusterNode

	// Parsed by Validate.
	listenHost, listenPort string
	advertHost             string
	advertPort             int32
	explicitFlush          bool
	numPartitions          int32
	autoCreateTopics       bool
	socketRequestMaxBytes  int32
	socketSendBufferBytes  int           // SO_SNDBUF of accepted connections; <= 0: the OS default
	connectionsMaxIdle     time.Duration // <= 0: connections never expire
	queuedMaxRequestBytes  int64         // <= 0: unbounded
	connLimits             connLimits    // max.connections and friends; see connlimits.go
	fetchMaxBytes          int32
	fetchMemoryPoolBytes   int64
	retentionCheckMs       int64
	offsetsTopicPartitions int32
	defaultReplication     int16
	rack                   string            // broker.rack
	interBrokerListener    string            // inter.broker.listener.name, upper case; "" is the first listener
	replicaLagMax          time.Duration     // replica.lag.time.max.ms
	listeners              []listenerSpec    // in the order given; the first is Listen/Advertise
	topicDefaults          map[string]string // topic config name -> broker-level default
	staticTopicDefaults    map[string]bool   // topic configs whose default was set in Settings
	scram                  *scramStore       // SCRAM credentials; see sasl_scramstore.go
}

// brokerConfigDef describes a broker-level config that is not the synonym
// of a topic config.
type brokerConfigDef struct {
	name  string
	typ   configType
	def   string
	check func(string) error
}

// Kafka's defaults for offsets.topic.segment.bytes and
// transaction.state.log.segment.bytes.
const (
	offsetsTopicSegmentBytes = "104857600"
	txnStateSegmentBytes     = "104857600"
)

var brokerConfigDefs = []brokerConfigDef{
	{name: "node.id", typ: typeInt, def: "0", check: intRange(0, 1<<31-1)},
	{name: "broker.id", typ: typeInt, def: "-1", check: intRange(-1, 1<<31-1)},
	{name: "listeners", typ: typeList, def: "PLAINTEXT://localhost:9092"},
	{name: "advertised.listeners", typ: typeList, def: ""},
	{name: "listener.security.protocol.map", typ: typeString, def: defaultSecurityProtocolMap},
	{name: "log.dirs", typ: typeList, def: ""},
	{name: "log.dir", typ: typeString, def: "./skiff-data"},
	{name: "num.partitions", typ: typeInt, def: "1", check: intRange(1, 1<<31-1)},
	// Above 1 only in a cluster (New checks).
	{name: "default.replication.factor", typ: typeInt, def: "1", check: intRange(1, 32767)},
	{name: "broker.rack", typ: typeString, def: ""},
	{name: "inter.broker.listener.name", typ: typeString, def: ""},
	{name: "auto.create.topics.enable", typ: typeBoolean, def: "true"},
	{name: "delete.topic.enable", typ: typeBoolean, def: "true"},
	{name: "socket.request.max.bytes", typ: typeInt, def: "104857600", check: intRange(1, 1<<31-1)},
	// Kafka's default is 102400; Skiff's is -1 (the OS default), because a
	// fixed buffer turns off Linux's send buffer autotuning, which fetch
	// throughput over sendfile depends on.
	{name: "socket.send.buffer.bytes", typ: typeInt, def: "-1", check: intRange(-1, 1<<31-1)},
	{name: "connections.max.idle.ms", typ: typeLong, def: "600000"},
	// Connection limits (see connlimits.go), with Kafka's defaults.
	{name: "max.connections", typ: typeInt, def: "2147483647", check: intRange(0, 1<<31-1)},
	{name: "max.connections.per.ip", typ: typeInt, def: "2147483647", check: intRange(0, 1<<31-1)},
	{name: "max.connection.creation.rate", typ: typeInt, def: "2147483647", check: intRange(0, 1<<31-1)},
	{name: "max.connections.per.ip.overrides", typ: typeString, def: "", check: func(v string) error {
		_, err := parseIPOverrides(v, nil)
		return err
	}},
	{name: "queued.max.request.bytes", typ: typeLong, def: strconv.FormatInt(defaultQueuedMaxRequestBytes, 10)},
	{name: "fetch.max.bytes", typ: typeInt, def: "57671680", check: intRange(1024, 1<<31-1)},
	// Skiff-specific: the broker-wide budget for fetch response bytes being
	// built or sent (see fetchpool.go).
	{name: "fetch.memory.pool.bytes", typ: typeLong, def: "67108864", check: longMin(0)},
	{name: "log.retention.check.interval.ms", typ: typeLong, def: "300000", check: longMin(1)},
	{name: "log.retention.minutes", typ: typeInt, def: "", check: intRange(-1, 1<<31-1)},
	{name: "log.retention.hours", typ: typeInt, def: "168", check: intRange(-1, 1<<31-1)},
	{name: "log.roll.hours", typ: typeInt, def: "168", check: intRange(1, 1<<31-1)},
	{name: "offsets.topic.num.partitions", typ: typeInt, def: "50", check: intRange(1, 1<<31-1)},
	{name: "offsets.topic.replication.factor", typ: typeShort, def: "1", check: intRange(1, 1)},
	{name: "transaction.state.log.num.partitions", typ: typeInt, def: "50", check: intRange(1, 1<<31-1)},
	{name: "transaction.state.log.replication.factor", typ: typeShort, def: "1", check: intRange(1, 1)},
	{name: "transaction.state.log.min.isr", typ: typeInt, def: "1", check: intRange(1, 1)},
	{name: "group.initial.rebalance.delay.ms", typ: typeInt, def: "3000", check: intRange(0, 1<<31-1)},
	{name: "group.min.session.timeout.ms", typ: typeInt, def: "6000", check: intRange(0, 1<<31-1)},
	{name: "group.max.session.timeout.ms", typ: typeInt, def: "1800000", check: intRange(0, 1<<31-1)},
	{name: "group.max.size", typ: typeInt, def: "2147483647", check: intRange(1, 1<<31-1)},
	{name: "group.consumer.heartbeat.interval.ms", typ: typeInt, def: "5000", check: intRange(1, 1<<31-1)},
	{name: "group.consumer.session.timeout.ms", typ: typeInt, def: "45000", check: intRange(1, 1<<31-1)},
	{name: "group.consumer.assignors", typ: typeList, def: "uniform,range", check: oneOfList("uniform", "range")},
	{name: "group.streams.session.timeout.ms", typ: typeInt, def: "45000", check: intRange(1, 1<<31-1)},
	{name: "group.streams.heartbeat.interval.ms", typ: typeInt, def: "5000", check: intRange(1, 1<<31-1)},
	{name: "group.streams.num.standby.replicas", typ: typeInt, def: "0", check: intRange(0, 2)},
	{name: "group.streams.initial.rebalance.delay.ms", typ: typeInt, def: "3000", check: intRange(0, 1<<31-1)},
	{name: "group.share.record.lock.duration.ms", typ: typeInt, def: "30000", check: intRange(1000, 3600000)},
	{name: "group.share.delivery.count.limit", typ: typeInt, def: "5", check: intRange(2, 10)},
	{name: "group.share.partition.max.record.locks", typ: typeInt, def: "2000", check: intRange(100, 10000)},
	{name: "group.share.session.timeout.ms", typ: typeInt, def: "45000", check: intRange(1, 1<<31-1)},
	{name: "group.share.heartbeat.interval.ms", typ: typeInt, def: "5000", check: intRange(1, 1<<31-1)},
	{name: "group.share.max.size", typ: typeShort, def: "200", check: intRange(1, 1000)},
	{name: "share.coordinator.state.topic.num.partitions", typ: typeInt, def: "50", check: intRange(1, 1<<31-1)},
	{name: "offsets.retention.minutes", typ: typeInt, def: "10080", check: intRange(1, 1<<31-1)},
	{name: "offsets.retention.check.interval.ms", typ: typeLong, def: "600000", check: longMin(1)},
	{name: "offset.metadata.max.bytes", typ: typeInt, def: "4096", check: intRange(0, 1<<31-1)},
	{name: "transactional.id.expiration.ms", typ: typeInt, def: "604800000", check: intRange(1, 1<<31-1)},
	{name: "transaction.max.timeout.ms", typ: typeInt, def: "900000", check: intRange(1, 1<<31-1)},
	{name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", typ: typeInt, def: "10000", check: intRange(1, 1<<31-1)},
	{name: "producer.id.expiration.ms", typ: typeInt, def: "86400000", check: intRange(1, 1<<31-1)},
	{name: "producer.id.expiration.check.interval.ms", typ: typeInt, def: "600000", check: intRange(1, 1<<31-1)},
	{name: "log.flush.offset.checkpoint.interval.ms", typ: typeInt, def: "60000", check: intRange(0, 1<<31-1)},
	{name: "log.cleaner.enable", typ: typeBoolean, def: "true"},
	{name: "log.cleaner.threads", typ: typeInt, def: "1", check: intRange(1, 64)},
	{name: "log.cleaner.dedupe.buffer.size", typ: typeLong, def: "134217728", check: longMin(1 << 20)},
	{name: "log.cleaner.io.max.bytes.per.second", typ: typeDouble, def: "1.7976931348623157E308", check: doubleRange(1, math.MaxFloat64)},
	{name: "log.cleaner.backoff.ms", typ: typeLong, def: "15000", check: longMin(1)},
	{name: "offsets.topic.segment.bytes", typ: typeInt, def: offsetsTopicSegmentBytes, check: intRange(1, 1<<31-1)},
	{name: "transaction.state.log.segment.bytes", typ: typeInt, def: txnStateSegmentBytes, check: intRange(1, 1<<31-1)},
	// How long a follower may go without catching up to its leader's log
	// end before the leader drops it from the ISR.
	{name: "replica.lag.time.max.ms", typ: typeLong, def: "30000", check: intRange(1, math.MaxInt64)},
}

// ignoredBrokerConfigs are Kafka configs that appear in ordinary
// server.properties files but have no meaning for a single-process broker
// (threads, replication, KRaft quorum). They are accepted so that an
// existing file works, and have no effect.
var ignoredBrokerConfigs = []string{
	"process.roles", "controller.quorum.voters", "controller.quorum.bootstrap.servers",
	"controller.listener.names",
	"num.network.threads", "num.io.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir",
	"socket.receive.buffer.bytes",
	"replica.fetch.max.bytes", "replica.fetch.response.max.bytes", // follower-side fetch sizes
	"share.coordinator.state.topic.replication.factor", "share.coordinator.state.topic.min.isr",
	"group.coordinator.rebalance.protocols", "auto.leader.rebalance.enable",
	"zookeeper.connect", "confluent.support.metrics.enable",
}

// defaultQueuedMaxRequestBytes is Skiff's queued.max.request.bytes default.
// Kafka's is -1 (unbounded): there, what clients claim and send in frames
// decides the heap, so a few hundred slow or hostile connections can take
// gigabytes. Skiff bounds it by default at 256 MiB: room for two requests
// of the largest default size (socket.request.max.bytes, 100 MiB) plus
// ordinary traffic, and small enough for a broker used in tests and at the
// edge. When socket.request.max.bytes is raised above it and
// queued.max.request.bytes is not set, the pool follows so that the
// largest request still fits.
const defaultQueuedMaxRequestBytes = 256 << 20

// DefaultListen is where the broker listens when nothing else is said.
const DefaultListen = "localhost:9092"

// Validate checks the configuration, fills defaults and parses Settings.
// An unknown config name or an invalid value is an error.
func (c *Config) Validate() error {
	if err := c.applyProfile(); err != nil {
		return err
	}
	var errs []error
	set := func(name string) (string, bool) {
		v, ok := c.Settings[name]
		return strings.TrimSpace(v), ok
	}
	for name, v := range c.Settings {
		if err := validateSetting(name, strings.TrimSpace(v)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	get := func(name string) string {
		if v, ok := set(name); ok {
			return v
		}
		for _, d := range brokerConfigDefs {
			if d.name == name {
				return d.def
			}
		}
		return ""
	}

	if v, ok := set("node.id"); ok {
		c.NodeID = int32(parseLong(v))
	} else if v, ok := set("broker.id"); ok && parseLong(v) >= 0 {
		c.NodeID = int32(parseLong(v))
	}
	if c.NodeID < 0 {
		return fmt.Errorf("server: node id %d must not be negative", c.NodeID)
	}
	if v, ok := set("log.dirs"); ok && v != "" {
		dirs := strings.Split(v, ",")
		if len(dirs) > 1 {
			return fmt.Errorf("server: log.dirs: only one directory is supported, got %d", len(dirs))
		}
		c.DataDir = strings.TrimSpace(dirs[0])
	} else if v, ok := set("log.dir"); ok {
		c.DataDir = v
	}
	if c.DataDir == "" {
		c.DataDir = "./skiff-data"
	}

	for _, u := range c.ScramUsers {
		if _, _, _, err := parseScramUser(u); err != nil {
			return err
		}
	}
	c.scramStore()
	if err := c.parseListeners(set); err != nil {
		return err
	}
	if err := c.parseObsSettings(set); err != nil {
		return err
	}

	c.numPartitions = int32(parseLong(get("num.partitions")))
	c.autoCreateTopics = get("auto.create.topics.enable") == "true"
	c.socketRequestMaxBytes = int32(parseLong(get("socket.request.max.bytes")))
	c.socketSendBufferBytes = int(parseLong(get("socket.send.buffer.bytes")))
	c.connectionsMaxIdle = time.Duration(parseLong(get("connections.max.idle.ms"))) * time.Millisecond
	c.queuedMaxRequestBytes = parseLong(get("queued.max.request.bytes"))
	if _, ok := set("queued.max.request.bytes"); !ok {
		c.queuedMaxRequestBytes = max(c.queuedMaxRequestBytes, int64(c.socketRequestMaxBytes))
	} else if c.queuedMaxRequestBytes > 0 && c.queuedMaxRequestBytes < int64(c.socketRequestMaxBytes) {
		// Kafka's rule (KafkaConfig): a pool smaller than the largest
		// request could never hold it.
		return fmt.Errorf("server: queued.max.request.bytes (%d) must be -1 or at least socket.request.max.bytes (%d)",
			c.queuedMaxRequestBytes, c.socketRequestMaxBytes)
	}
	if err := c.parseConnLimits(); err != nil {
		return err
	}
	c.fetchMaxBytes = int32(parseLong(get("fetch.max.bytes")))
	c.fetchMemoryPoolBytes = parseLong(get("fetch.memory.pool.bytes"))
	c.retentionCheckMs = parseLong(get("log.retention.check.interval.ms"))
	c.offsetsTopicPartitions = int32(parseLong(get("offsets.topic.num.partitions")))
	c.defaultReplication = int16(parseLong(get("default.replication.factor")))
	c.rack = get("broker.rack")
	c.interBrokerListener = strings.ToUpper(get("inter.broker.listener.name"))
	if c.interBrokerListener != "" && !slices.ContainsFunc(c.listeners, func(l listenerSpec) bool { return l.name == c.interBrokerListener }) {
		// Kafka refuses to start with an inter-broker listener it does not have.
		return fmt.Errorf("server: inter.broker.listener.name %q is not one of the listeners", c.interBrokerListener)
	}
	if c.Cluster != nil {
		// Followers fetch without TLS or SASL (as User:ANONYMOUS), so the
		// listener they use must be PLAINTEXT; clients may use others.
		ib := c.listeners[0]
		for _, l := range c.listeners {
			if l.name == c.interBrokerListener {
				ib = l
			}
		}
		if ib.protocol != "PLAINTEXT" {
			return fmt.Errorf("server: the inter-broker listener %s is %s; replication needs a PLAINTEXT one (set inter.broker.listener.name)", ib.name, ib.protocol)
		}
	}
	c.replicaLagMax = time.Duration(parseLong(get("replica.lag.time.max.ms"))) * time.Millisecond

	// Topic defaults come from the broker-level synonyms, with Kafka's
	// precedence for the hour/minute/ms forms of retention and roll.
	c.topicDefaults = make(map[string]string, len(topicConfigDefs))
	c.staticTopicDefaults = make(map[string]bool)
	for _, d := range topicConfigDefs {
		c.topicDefaults[d.name] = d.def
		if v, ok := set(d.broker); ok && d.broker != "" {
			c.topicDefaults[d.name] = v
			c.staticTopicDefaults[d.name] = true
		}
	}
	if _, ok := set("log.retention.ms"); !ok {
		if v, ok := set("log.retention.minutes"); ok {
			c.topicDefaults["retention.ms"] = strconv.FormatInt(minutesOrUnlimited(parseLong(v), 60_000), 10)
			c.staticTopicDefaults["retention.ms"] = true
		} else if v, ok := set("log.retention.hours"); ok {
			c.topicDefaults["retention.ms"] = strconv.FormatInt(minutesOrUnlimited(parseLong(v), 3_600_000), 10)
			c.staticTopicDefaults["retention.ms"] = true
		}
	}
	if _, ok := set("log.roll.ms"); !ok {
		if v, ok := set("log.roll.hours"); ok {
			c.topicDefaults["segment.ms"] = strconv.FormatInt(parseLong(v)*3_600_000, 10)
			c.staticTopicDefaults["segment.ms"] = true
		}
	}
	_, fm := set("log.flush.interval.messages")
	_, fms := set("log.flush.interval.ms")
	c.explicitFlush = fm || fms
	// Kafka checks the broker's log defaults across configs as it checks
	// a topic's (LogConfig.validateBrokerLogConfigValues).
	if err := validateTopicConfigSet(nil, c.topicDefaults); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

func minutesOrUnlimited(n, unit int64) int64 {
	if n < 0 {
		return -1
	}
	return n * unit
}

func validateSetting(name, v string) error {
	for _, d := range brokerConfigDefs {
		if d.name == name {
			if err := checkType(d.typ, v); err != nil {
				return fmt.Errorf("server: invalid value %q for %s: %w", v, name, err)
			}
			if d.check != nil {
				if err := d.check(v); err != nil {
					return fmt.Errorf("server: invalid value %q for %s: %w", v, name, err)
				}
			}
			return nil
		}
	}
	for _, d := range topicConfigDefs {
		if d.broker == name {
			if err := d.validateValue(v); err != nil {
				return fmt.Errorf("server: %s: %w", name, err)
			}
			return nil
		}
	}
	if known, err := validateObsSetting(name, v); known {
		return err
	}
	if known, err := validateStorageSetting(name, v); known {
		return err
	}
	if ok, err := validateConnLimitSetting(name, v); ok {
		return err
	}
	if ok, err := validateSecuritySetting(name, v); ok {
		return err
	}
	for _, n := range ignoredBrokerConfigs {
		if n == name {
			return nil
		}
	}
	return fmt.Errorf("server: unknown config %q", name)
}

func isWildcard(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}

// setting returns a broker setting's value, or its default.
func (c *Config) setting(name string) string {
	if v, ok := c.Settings[name]; ok {
		return strings.TrimSpace(v)
	}
	for _, d := range brokerConfigDefs {
		if d.name == name {
			return d.def
		}
	}
	return ""
}

// storeOptions are the broker settings the storage engine takes.
func (c *Config) storeOptions() storage.StoreOptions {
	ms := func(name string) time.Duration {
		v, _ := strconv.ParseInt(c.setting(name), 10, 64) // validated
		return time.Duration(v) * time.Millisecond
	}
	ckpt := ms("log.flush.offset.checkpoint.interval.ms")
	if ckpt == 0 {
		ckpt = -1 // storage: no periodic checkpoint
	}
	ioRate, _ := strconv.ParseFloat(c.setting("log.cleaner.io.max.bytes.per.second"), 64) // validated
	if ioRate >= math.MaxFloat64 {
		ioRate = 0 // unlimited
	}
	opts := storage.StoreOptions{
		RecoveryPointInterval:             ckpt,
		ProducerIDExpiration:              ms("producer.id.expiration.ms"),
		ProducerIDExpirationCheckInterval: ms("producer.id.expiration.check.interval.ms"),
		FS:                                c.FS,
		SegmentFiles:                      c.segmentFiles(),
		Cleaner: storage.CleanerOptions{
			Disabled:            c.setting("log.cleaner.enable") == "false",
			Threads:             int(parseLong(c.setting("log.cleaner.threads"))),
			DedupeBufferSize:    parseLong(c.setting("log.cleaner.dedupe.buffer.size")),
			IOMaxBytesPerSecond: ioRate,
			Backoff:             ms("log.cleaner.backoff.ms"),
		},
	}
	if c.Clock != nil {
		opts.Now = c.Clock.Now
	}
	return opts
}
