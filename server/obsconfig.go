package server

import (
	"fmt"
	"net"
	"strings"
)

// Skiff's own settings for observability. They are not Kafka broker
// configs (Kafka has JMX instead), so DescribeConfigs does not list them;
// they are named in Kafka's style so that one server.properties holds
// everything.
const (
	settingHTTPListeners    = "skiff.http.listeners"            // HTTP://host:port or host:port; "" off
	settingPprof            = "skiff.http.pprof.enable"         // serve /debug/pprof/
	settingMetrics          = "skiff.metrics.enable"            // collect metrics at all (default true)
	settingPartitionMetrics = "skiff.metrics.partitions.enable" // per-partition series (default false)
)

// DefaultHTTPListen is where the skiff binary serves /metrics, /healthz
// and /readyz unless told otherwise. The embeddable server has no HTTP
// listener unless Config.HTTPListen is set.
const DefaultHTTPListen = "localhost:9644"

// Stage is a point in a server's life at which Config.Lifecycle is called.
type Stage int

const (
	// StageRecovering: the HTTP listener is up and the logs are about to
	// be opened and recovered; /readyz answers 503 until they are.
	StageRecovering Stage = iota
	// StageStopping: Close has begun; /readyz answers 503 from now on.
	StageStopping
)

func validateObsSetting(name, v string) (known bool, err error) {
	switch name {
	case settingHTTPListeners:
		if v != "" {
			_, err = parseHTTPListen(v)
		}
	case settingPprof, settingMetrics, settingPartitionMetrics:
		err = checkType(typeBoolean, v)
	default:
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("server: invalid value %q for %s: %w", v, name, err)
	}
	return true, nil
}

// parseObsSettings applies the skiff.* observability settings over the
// Config fields (settings win, as Kafka names do elsewhere).
func (c *Config) parseObsSettings(set func(string) (string, bool)) error {
	if v, ok := set(settingHTTPListeners); ok {
		c.HTTPListen = v
	}
	if c.HTTPListen != "" {
		addr, err := parseHTTPListen(c.HTTPListen)
		if err != nil {
			return fmt.Errorf("server: http listener: %w", err)
		}
		c.HTTPListen = addr
	}
	if v, ok := set(settingPprof); ok {
		c.Pprof = v == "true"
	}
	if v, ok := set(settingMetrics); ok {
		c.DisableMetrics = v != "true"
	}
	if v, ok := set(settingPartitionMetrics); ok {
		c.PartitionMetrics = v == "true"
	}
	return nil
}

// parseHTTPListen accepts host:port, or one Kafka-style listener
// HTTP://host:port, and returns host:port.
func parseHTTPListen(v string) (string, error) {
	v = strings.TrimSpace(v)
	if scheme, rest, ok := strings.Cut(v, "://"); ok {
		if !strings.EqualFold(scheme, "http") {
			return "", fmt.Errorf("only HTTP is supported, got %q", scheme)
		}
		v = rest
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return "", err
	}
	return v, nil
}
