package etcdstate

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EmbedConfig configures an etcd member run inside the broker.
type EmbedConfig struct {
	// Name is the member's name in InitialCluster (--etcd-name).
	Name string
	// Dir holds the member's data (the broker puts it under its data
	// directory, in etcd/).
	Dir string
	// InitialCluster lists every member as name=peerURL,... (etcd's
	// --initial-cluster); empty is a cluster of this member alone.
	InitialCluster string
	// PeerURL is where the member listens for, and is reached by, the
	// other members; ClientURL is where brokers reach it. Port 0 picks a
	// free port, which only a cluster of one can use for PeerURL.
	PeerURL, ClientURL string
	// ClusterToken keeps members of different clusters apart.
	ClusterToken string
	// LogLevel is etcd's own log level (zap): "error" unless given.
	LogLevel string
	// Quiet discards etcd's own logs (tests).
	Quiet bool
}

// Embedded is a running etcd member.
type Embedded struct {
	e *embed.Etcd
}

// embedReadyTimeout bounds the wait for the member to join its cluster:
// the other members of a new cluster must start within it.
const embedReadyTimeout = 2 * time.Minute

// StartEmbedded starts an etcd member and waits until it serves clients,
// which for a new cluster of several members means until a quorum of them
// has started.
func StartEmbedded(c EmbedConfig) (*Embedded, error) {
	cfg := embed.NewConfig()
	cfg.Name = c.Name
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	cfg.Dir = c.Dir
	peer, err := url.Parse(c.PeerURL)
	if err != nil || c.PeerURL == "" {
		return nil, fmt.Errorf("etcdstate: bad etcd peer URL %q", c.PeerURL)
	}
	client, err := url.Parse(c.ClientURL)
	if err != nil || c.ClientURL == "" {
		return nil, fmt.Errorf("etcdstate: bad etcd client URL %q", c.ClientURL)
	}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.InitialCluster = c.InitialCluster
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.Name + "=" + c.PeerURL
	}
	if c.ClusterToken != "" {
		cfg.InitialClusterToken = c.ClusterToken
	}
	cfg.LogLevel = c.LogLevel
	if cfg.LogLevel == "" {
		cfg.LogLevel = "error"
	}
	if c.Quiet {
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	}
	// A restarted member finds its data and rejoins; InitialCluster is
	// then ignored, as etcd documents.
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdstate: starting embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcdstate: embedded etcd: %w", err)
	case <-time.After(embedReadyTimeout):
		e.Close()
		return nil, errors.New("etcdstate: embedded etcd did not join its cluster in time (are the other members started?)")
	}
	return &Embedded{e: e}, nil
}

// ClientURL is the address brokers reach this member on (with the port
// the system picked, if the configured one was 0).
func (m *Embedded) ClientURL() string {
	return "http://" + m.e.Clients[0].Addr().String()
}

// IsLeader reports whether this member is etcd's Raft leader.
func (m *Embedded) IsLeader() bool { return m.e.Server.Leader() == m.e.Server.MemberID() }

// Members are the etcd cluster's members, name -> peer URLs.
func (m *Embedded) Members() map[string][]string {
	out := map[string][]string{}
	for _, mem := range m.e.Server.Cluster().Members() {
		out[mem.Name] = mem.PeerURLs
	}
	return out
}

// Close stops the member.
func (m *Embedded) Close() {
	m.e.Close()
	<-m.e.Server.StopNotify()
}
