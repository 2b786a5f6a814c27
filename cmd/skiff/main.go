// Command skiff runs a Kafka-compatible broker.
//
//	skiff --listen localhost:9092 --data-dir ./skiff-data
//	skiff --config server.properties --override num.partitions=3
//
// Settings use Apache Kafka's broker config names; see the README.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/server"
)

// exitConfig is the exit code for an invalid configuration.
const exitConfig = 2

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type overrides []string

func (o *overrides) String() string     { return strings.Join(*o, ",") }
func (o *overrides) Set(v string) error { *o = append(*o, v); return nil }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("skiff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", envOr("SKIFF_LISTEN", server.DefaultListen), "address to accept clients on, host:port (env SKIFF_LISTEN)")
	advertise := fs.String("advertise", os.Getenv("SKIFF_ADVERTISE"), "host:port clients are told to connect to; default the listen address (env SKIFF_ADVERTISE)")
	listeners := fs.String("listeners", os.Getenv("SKIFF_LISTENERS"), "Kafka listeners, NAME://host:port,...; overrides --listen (env SKIFF_LISTENERS)")
	advertisedListeners := fs.String("advertised-listeners", os.Getenv("SKIFF_ADVERTISED_LISTENERS"), "Kafka advertised.listeners, NAME://host:port,... (env SKIFF_ADVERTISED_LISTENERS)")
	protocolMap := fs.String("listener-security-protocol-map", os.Getenv("SKIFF_LISTENER_SECURITY_PROTOCOL_MAP"), "Kafka listener.security.protocol.map, NAME:PLAINTEXT,... (env SKIFF_LISTENER_SECURITY_PROTOCOL_MAP)")
	dataDir := fs.String("data-dir", envOr("SKIFF_DATA_DIR", "./skiff-data"), "directory for logs and metadata (env SKIFF_DATA_DIR)")
	nodeID := fs.Int("node-id", 0, "this broker's node id")
	configFile := fs.String("config", os.Getenv("SKIFF_CONFIG"), "Kafka server.properties-style config file (env SKIFF_CONFIG)")
	httpListen := fs.String("http-listen", envOr("SKIFF_HTTP_LISTEN", server.DefaultHTTPListen), "admin HTTP listener for /metrics, /healthz and /readyz, host:port; empty turns it off (Kafka-style setting skiff.http.listeners; env SKIFF_HTTP_LISTEN)")
	pprofOn := fs.Bool("pprof", false, "serve /debug/pprof/ on the HTTP listener")
	partitionMetrics := fs.Bool("metrics-partitions", false, "export per-partition offset and size series (one set per partition; skiff.metrics.partitions.enable)")
	health := fs.Bool("healthcheck", false, "check that the broker configured by the other flags and variables answers on its first listener, and exit 0 if so (for container health checks)")
	profile := fs.String("profile", envOr("SKIFF_PROFILE", server.ProfileProduction), "defaults to start from: production (Kafka's) or test (for integration test suites; see the README) (env SKIFF_PROFILE)")
	testControl := fs.String("test-control", os.Getenv("SKIFF_TEST_CONTROL"), "serve the fault-injection HTTP API (/v1/faults, /v1/requests) on host:port; for tests only, off by default (env SKIFF_TEST_CONTROL)")
	cluster := addClusterFlags(fs)
	var ovr overrides
	fs.Var(&ovr, "override", "a Kafka config, key=value; repeatable")
	var scramUsers overrides
	fs.Var(&scramUsers, "scram-user", "a SCRAM user made at start, name:password[:SCRAM-SHA-256|SCRAM-SHA-512] (both without a mechanism); repeatable; only salted hashes are stored (env SKIFF_SCRAM_USERS, comma-separated)")
	logLevel := fs.String("log-level", envOr("SKIFF_LOG_LEVEL", "info"), "debug, info, warn or error (env SKIFF_LOG_LEVEL)")
	logFormat := fs.String("log-format", envOr("SKIFF_LOG_FORMAT", "console"), "json or console (env SKIFF_LOG_FORMAT)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "skiff: unexpected arguments: %v\n", fs.Args())
		return exitConfig
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	logger, err := newLogger(*logLevel, *logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "skiff: %v\n", err)
		return exitConfig
	}

	settings := map[string]string{}
	if *configFile != "" {
		if err := readProperties(*configFile, settings); err != nil {
			fmt.Fprintf(stderr, "skiff: %v\n", err)
			return exitConfig
		}
	}
	for _, kv := range ovr {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			fmt.Fprintf(stderr, "skiff: --override %q is not key=value\n", kv)
			return exitConfig
		}
		settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	// --listeners and friends (or their SKIFF_* variables) win over the
	// config file, as the flags below do.
	for name, v := range map[string]string{
		"listeners":                      *listeners,
		"advertised.listeners":           *advertisedListeners,
		"listener.security.protocol.map": *protocolMap,
	} {
		if v != "" {
			settings[name] = v
		}
	}
	if v := os.Getenv("SKIFF_SCRAM_USERS"); v != "" && len(scramUsers) == 0 {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				scramUsers = append(scramUsers, u)
			}
		}
	}
	cfg := server.Config{Settings: settings, Logger: logger, NodeID: int32(*nodeID),
		Pprof: *pprofOn, PartitionMetrics: *partitionMetrics, Profile: *profile, TestControl: *testControl,
		ScramUsers: scramUsers}
	// Like --listen: the flag yields to the config file unless given.
	if _, ok := settings["skiff.http.listeners"]; !ok || explicit["http-listen"] {
		cfg.HTTPListen = *httpListen
		delete(settings, "skiff.http.listeners")
	}
	// Flags given on the command line win over the config file; flags left
	// at their defaults yield to it.
	if _, ok := settings["listeners"]; !ok || explicit["listen"] && *listeners == "" {
		cfg.Listen = *listen
		delete(settings, "listeners")
	}
	if _, ok := settings["advertised.listeners"]; !ok || explicit["advertise"] && *advertisedListeners == "" {
		cfg.Advertise = *advertise
		delete(settings, "advertised.listeners")
	}
	_, dirs := settings["log.dirs"]
	_, dir := settings["log.dir"]
	if !(dirs || dir) || explicit["data-dir"] {
		cfg.DataDir = *dataDir
		delete(settings, "log.dirs")
		delete(settings, "log.dir")
	}
	if explicit["node-id"] {
		settings["node.id"] = strconv.Itoa(*nodeID)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "skiff: invalid configuration: %v\n", err)
		return exitConfig
	}

	if *health {
		if err := healthcheck(cfg.Listen, 3*time.Second); err != nil {
			fmt.Fprintf(stderr, "skiff: unhealthy: %v\n", err)
			return 1
		}
		return 0
	}

	if cluster.enabled() {
		// The data dir must exist before the embedded member makes its
		// directory under it.
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			logger.Error().Err(err).Msg("cannot start")
			return 1
		}
		node, err := cluster.node(&cfg, logger)
		if err != nil {
			logger.Error().Err(err).Msg("cannot start")
			return 1
		}
		cfg.Cluster = node // the server closes it
	}
	srv, err := server.New(cfg)
	if err != nil {
		logger.Error().Err(err).Msg("cannot start")
		if cfg.Cluster != nil {
			cfg.Cluster.Close()
		}
		return 1
	}
	if err := srv.Start(); err != nil {
		logger.Error().Err(err).Msg("cannot start")
		srv.Close()
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	sig := <-sigs
	logger.Info().Str("signal", sig.String()).Msg("shutting down")
	signal.Stop(sigs)
	if err := srv.Close(); err != nil {
		logger.Error().Err(err).Msg("shutdown")
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newLogger(level, format string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("invalid --log-level %q", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(w)}
	default:
		return zerolog.Logger{}, fmt.Errorf("invalid --log-format %q (json or console)", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// readProperties reads a Java properties file (Kafka's server.properties):
// key=value, key: value or key value; # and ! comments; a trailing
// backslash continues a line.
func readProperties(path string, into map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + strings.TrimSpace(lines[i])
		}
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		sep := strings.IndexAny(line, "=: \t")
		if sep < 0 {
			into[line] = ""
			continue
		}
		key := strings.TrimSpace(line[:sep])
		val := strings.TrimLeft(strings.TrimSpace(line[sep+1:]), "=:")
		into[key] = strings.TrimSpace(val)
	}
	return nil
}

// isTerminal reports whether w is a character device, so that log colours
// are only used where a person reads them.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
