package server

import (
	"fmt"
	"net"

	"github.com/skiffmq/skiff/clusterstate"
)

// ClusterNode makes a broker one of a cluster. etcdstate.Node implements
// it; the server depends only on this interface, so that a single node
// (and every embedder of the server package) links and starts no etcd.
//
// The node's Backend stores the metadata shared by all brokers and its
// Placer places new partitions on live brokers. Join registers the
// broker once its listeners are bound; from then on Brokers and
// Controller answer from memory, with no I/O, so that Metadata can ask
// them on every request.
type ClusterNode interface {
	Backend() clusterstate.Backend
	clusterstate.Placer
	Join(self clusterstate.Broker, st *clusterstate.State, defaultReplicationFactor int16) error
	// Brokers are the live brokers, sorted by node id.
	Brokers() []clusterstate.Broker
	// Controller is the elected controller's node id, -1 while none.
	Controller() int32
	// Close leaves the cluster (the lease is revoked).
	Close() error
}

// joinCluster registers this broker with its bound listeners, rack and
// node id. Called by Start once the listeners are bound.
func (s *Server) joinCluster() error {
	if s.cfg.Cluster == nil {
		return nil
	}
	self := clusterstate.Broker{NodeID: s.cfg.NodeID, Rack: s.cfg.rack}
	for _, l := range s.cfg.listeners {
		self.Endpoints = append(self.Endpoints, clusterstate.Endpoint{Listener: l.name, Host: l.advertHost, Port: l.advertPort})
	}
	if err := s.cfg.Cluster.Join(self, s.meta.State, s.cfg.defaultReplication); err != nil {
		return fmt.Errorf("server: joining the cluster: %w", err)
	}
	return nil
}

// listenerNameFor is the name of the listener a request came in on.
func (s *Server) listenerNameFor(r *request) string {
	if r != nil && r.local != nil && len(s.cfg.listeners) > 1 {
		if ta, ok := r.local.(*net.TCPAddr); ok {
			for _, l := range s.cfg.listeners {
				if l.boundPort == ta.Port {
					return l.name
				}
			}
		}
	}
	return s.cfg.listeners[0].name
}

// brokerAddr is a broker as Metadata and DescribeCluster list it.
type brokerAddr struct {
	id   int32
	host string
	port int32
	rack *string
}

// brokersFor lists the live brokers at their addresses on the listener r
// came in on (a broker without that listener is left out, as Kafka
// does), so that a client stays on the network it came from. A single
// node lists itself.
func (s *Server) brokersFor(r *request) []brokerAddr {
	if s.cfg.Cluster == nil {
		h, p := s.advertisedFor(r)
		return []brokerAddr{{id: s.cfg.NodeID, host: h, port: p}}
	}
	name := s.listenerNameFor(r)
	var out []brokerAddr
	for _, b := range s.cfg.Cluster.Brokers() {
		e, ok := b.Endpoint(name)
		if !ok {
			continue
		}
		ba := brokerAddr{id: b.NodeID, host: e.Host, port: e.Port}
		if b.Rack != "" {
			rack := b.Rack
			ba.rack = &rack
		}
		out = append(out, ba)
	}
	return out
}

// brokerAddrFor returns a live broker's address on r's listener.
func (s *Server) brokerAddrFor(r *request, id int32) (string, int32, bool) {
	if s.cfg.Cluster == nil || id == s.cfg.NodeID {
		h, p := s.advertisedFor(r)
		return h, p, id == s.cfg.NodeID
	}
	for _, b := range s.brokersFor(r) {
		if b.id == id {
			return b.host, b.port, true
		}
	}
	return "", -1, false
}

// controllerID is the controller Metadata and DescribeCluster report: a
// single node is its own; a cluster's is the elected one (-1 while none).
func (s *Server) controllerID() int32 {
	if s.cfg.Cluster == nil {
		return s.cfg.NodeID
	}
	return s.cfg.Cluster.Controller()
}

// liveBrokers is the set of live node ids; nil on a single node.
func (s *Server) liveBrokers() map[int32]bool {
	if s.cfg.Cluster == nil {
		return nil
	}
	live := map[int32]bool{}
	for _, b := range s.cfg.Cluster.Brokers() {
		live[b.NodeID] = true
	}
	return live
}

// notLeader reports whether this broker must refuse a client's produce or
// fetch of p with NOT_LEADER_OR_FOLLOWER: in a cluster, only the leader
// serves them (the client refreshes its metadata and follows the leader).
func (s *Server) notLeader(p *partition) bool {
	return s.cfg.Cluster != nil && p.Leader != s.cfg.NodeID
}

// liveBrokerCount is how many brokers can hold a replica.
func (s *Server) liveBrokerCount() int {
	if s.cfg.Cluster == nil {
		return 1
	}
	return len(s.cfg.Cluster.Brokers())
}
