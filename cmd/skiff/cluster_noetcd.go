//go:build !etcd

package main

import (
	"errors"
	"flag"
	"os"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/server"
)

type clusterFlags struct {
	endpoints *string
	embedded  *bool
}

func addClusterFlags(fs *flag.FlagSet) *clusterFlags {
	return &clusterFlags{
		endpoints: fs.String("etcd-endpoints", os.Getenv("SKIFF_ETCD_ENDPOINTS"), "not in this build: build with -tags etcd to join a cluster"),
		embedded:  fs.Bool("embedded-etcd", false, "not in this build: build with -tags etcd to join a cluster"),
	}
}

func (c *clusterFlags) enabled() bool { return *c.endpoints != "" || *c.embedded }

func (c *clusterFlags) node(*server.Config, zerolog.Logger) (server.ClusterNode, error) {
	return nil, errors.New("this skiff was built without -tags etcd and cannot join a cluster (go build -tags etcd ./cmd/skiff)")
}
