//go:build etcd

package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/clusterstate/etcdstate"
	"github.com/skiffmq/skiff/server"
)

// clusterFlags are the flags that make the broker one of a cluster whose
// metadata lives in etcd. Without --etcd-endpoints or --embedded-etcd the
// broker is a single node and nothing here runs or dials anything.
type clusterFlags struct {
	endpoints      *string
	embedded       *bool
	name           *string
	initialCluster *string
	peerURL        *string
	clientURL      *string
	token          *string
	prefix         *string
	leaseTTL       *time.Duration
	logLevel       *string
}

func addClusterFlags(fs *flag.FlagSet) *clusterFlags {
	return &clusterFlags{
		endpoints: fs.String("etcd-endpoints", os.Getenv("SKIFF_ETCD_ENDPOINTS"), "etcd client URLs, comma-separated: join the cluster whose metadata is in this etcd (env SKIFF_ETCD_ENDPOINTS)"),
		embedded:  fs.Bool("embedded-etcd", os.Getenv("SKIFF_EMBEDDED_ETCD") == "true", "run an etcd member inside the broker, data under <data-dir>/.etcd (env SKIFF_EMBEDDED_ETCD=true)"),
		name:      fs.String("etcd-name", os.Getenv("SKIFF_ETCD_NAME"), "this broker's etcd member name in --etcd-initial-cluster; default skiff-<node.id> (env SKIFF_ETCD_NAME)"),
		initialCluster: fs.String("etcd-initial-cluster", os.Getenv("SKIFF_ETCD_INITIAL_CLUSTER"),
			"the embedded etcd members, name=peerURL,...; default this member alone (env SKIFF_ETCD_INITIAL_CLUSTER)"),
		peerURL:   fs.String("etcd-peer-url", envOr("SKIFF_ETCD_PEER_URL", "http://127.0.0.1:2380"), "URL the embedded etcd member listens on for, and is reached by, the other members (env SKIFF_ETCD_PEER_URL)"),
		clientURL: fs.String("etcd-client-url", envOr("SKIFF_ETCD_CLIENT_URL", "http://127.0.0.1:2379"), "URL the embedded etcd member serves clients on (env SKIFF_ETCD_CLIENT_URL)"),
		token:     fs.String("etcd-cluster-token", envOr("SKIFF_ETCD_CLUSTER_TOKEN", "skiff"), "the embedded etcd cluster's initial token (env SKIFF_ETCD_CLUSTER_TOKEN)"),
		prefix:    fs.String("etcd-prefix", envOr("SKIFF_ETCD_PREFIX", "/skiff/"), "key prefix of this cluster in etcd (env SKIFF_ETCD_PREFIX)"),
		leaseTTL:  fs.Duration("etcd-lease-ttl", 10*time.Second, "how long a broker that stopped answering stays registered and leading before its partitions get new leaders"),
		logLevel:  fs.String("etcd-log-level", "error", "the embedded etcd member's own log level (debug, info, warn, error)"),
	}
}

// enabled reports whether the broker is to join a cluster.
func (c *clusterFlags) enabled() bool { return *c.embedded || strings.TrimSpace(*c.endpoints) != "" }

// node starts the embedded member (if asked) and connects to etcd, for a
// broker whose validated configuration is cfg.
func (c *clusterFlags) node(cfg *server.Config, logger zerolog.Logger) (server.ClusterNode, error) {
	nc := etcdstate.NodeConfig{Prefix: *c.prefix, LeaseTTL: *c.leaseTTL, Logger: logger}
	for _, e := range strings.Split(*c.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			nc.Endpoints = append(nc.Endpoints, e)
		}
	}
	if *c.embedded {
		name := *c.name
		if name == "" {
			name = "skiff-" + strconv.Itoa(int(cfg.NodeID))
		}
		nc.Embed = &etcdstate.EmbedConfig{
			Name: name,
			// A dot directory: the store takes every other directory
			// in the data dir for a partition log.
			Dir:            filepath.Join(cfg.DataDir, ".etcd"),
			InitialCluster: *c.initialCluster,
			PeerURL:        *c.peerURL,
			ClientURL:      *c.clientURL,
			ClusterToken:   *c.token,
			LogLevel:       *c.logLevel,
		}
	}
	n, err := etcdstate.NewNode(nc)
	if err != nil {
		return nil, fmt.Errorf("joining the cluster: %w", err)
	}
	return n, nil
}
