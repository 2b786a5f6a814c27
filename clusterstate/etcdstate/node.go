package etcdstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/clusterstate"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// NodeConfig configures a broker's membership of a cluster.
type NodeConfig struct {
	// Endpoints are etcd's client URLs (--etcd-endpoints). With Embed
	// and no Endpoints, the broker uses its own member.
	Endpoints []string
	// Embed, if set, runs an etcd member inside the broker first.
	Embed *EmbedConfig
	// Prefix is the key prefix of this cluster in etcd; "/skiff/" unless
	// given, so that one etcd can hold several clusters.
	Prefix string
	// LeaseTTL is how long a broker that stopped answering etcd stays
	// registered (and leading its partitions): 10s unless given, and at
	// least etcd's minimum (about 2s with its default timing).
	LeaseTTL time.Duration
	Logger   zerolog.Logger
}

// joinOptions are what a broker registers and how its controller acts;
// the server knows them only once its listeners are bound.
type joinOptions struct {
	Self                     clusterstate.Broker
	State                    *clusterstate.State
	DefaultReplicationFactor int16 // default.replication.factor
}

// Node is one broker's membership of a cluster: its etcd client (and
// member, if embedded), its registration under a lease, the live brokers
// and the controller election. It implements clusterstate.Placer.
type Node struct {
	cfg      NodeConfig
	log      zerolog.Logger
	embedded *Embedded
	cli      *clientv3.Client
	backend  *Backend

	ctx      context.Context
	cancel   context.CancelFunc
	stopOnce sync.Once
	wg       sync.WaitGroup
	// kick wakes the controller loop (brokers or metadata changed).
	kick chan struct{}

	// mu guards the fields below; leaf, no I/O.
	mu struct {
		sync.Mutex
		brokers    map[int32]clusterstate.Broker // live, by node id
		controller int32
		self       joinOptions
		session    *concurrency.Session
		joined     bool
	}
}

// NewNode starts the embedded etcd member if configured and connects to
// etcd. It does not register the broker yet (Join does).
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "/skiff/"
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	n := &Node{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1)}
	n.mu.brokers = map[int32]clusterstate.Broker{}
	n.mu.controller = -1
	endpoints := cfg.Endpoints
	if cfg.Embed != nil {
		m, err := StartEmbedded(*cfg.Embed)
		if err != nil {
			return nil, err
		}
		n.embedded = m
		if len(endpoints) == 0 {
			endpoints = []string{m.ClientURL()}
		}
	}
	if len(endpoints) == 0 {
		return nil, errors.New("etcdstate: no etcd endpoints")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: quietZap()})
	if err != nil {
		n.closeEmbedded()
		return nil, fmt.Errorf("etcdstate: connecting to etcd %v: %w", endpoints, err)
	}
	n.cli = cli
	n.backend = NewBackend(cli, cfg.Prefix, cfg.Logger)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Backend is where the cluster metadata is stored.
func (n *Node) Backend() clusterstate.Backend { return n.backend }

// Embedded is the etcd member run by this broker, nil if none.
func (n *Node) Embedded() *Embedded { return n.embedded }

func (n *Node) brokerKey(id int32) string {
	return n.cfg.Prefix + "brokers/" + strconv.Itoa(int(id))
}

// Join registers the broker under a lease, follows the live brokers and
// campaigns for the controller. A broker whose previous registration is
// still alive (a restart within the lease TTL) waits for it to expire, as
// a Kafka broker waits to be unfenced.
func (n *Node) Join(self clusterstate.Broker, st *clusterstate.State, defaultReplicationFactor int16) error {
	n.mu.Lock()
	n.mu.self = joinOptions{Self: self, State: st, DefaultReplicationFactor: defaultReplicationFactor}
	n.mu.Unlock()
	if err := n.register(); err != nil {
		return err
	}
	rev, err := n.loadBrokers()
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.mu.joined = true
	n.mu.Unlock()
	n.goTracked(func() { n.watchBrokers(rev) })
	n.goTracked(n.membershipLoop)
	n.goTracked(n.controllerLoop)
	return nil
}

// register grants the lease and writes the broker's key under it.
func (n *Node) register() error {
	n.mu.Lock()
	self := n.mu.self.Self
	n.mu.Unlock()
	data, err := json.Marshal(self)
	if err != nil {
		return fmt.Errorf("etcdstate: encoding registration: %w", err)
	}
	ttl := int(max(n.cfg.LeaseTTL.Round(time.Second)/time.Second, 1))
	deadline := time.Now().Add(2*n.cfg.LeaseTTL + 5*time.Second)
	for {
		s, err := concurrency.NewSession(n.cli, concurrency.WithTTL(ttl))
		if err != nil {
			return fmt.Errorf("etcdstate: granting broker lease: %w", err)
		}
		key := n.brokerKey(self.NodeID)
		ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
		resp, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(data), clientv3.WithLease(s.Lease()))).Commit()
		cancel()
		if err == nil && resp.Succeeded {
			n.mu.Lock()
			n.mu.session = s
			n.mu.Unlock()
			n.log.Info().Int32("node_id", self.NodeID).Int("lease_ttl_s", ttl).Msg("registered in the cluster")
			return nil
		}
		s.Close()
		if err != nil {
			return fmt.Errorf("etcdstate: registering broker: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcdstate: node.id %d is registered by a live broker", self.NodeID)
		}
		select {
		case <-n.ctx.Done():
			return n.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// membershipLoop registers again when the lease is lost (etcd
// unreachable for longer than the TTL): the broker was declared dead and
// its partitions given to others; once back it is a live broker again.
func (n *Node) membershipLoop() {
	for {
		n.mu.Lock()
		s := n.mu.session
		n.mu.Unlock()
		select {
		case <-n.ctx.Done():
			return
		case <-s.Done():
		}
		if n.ctx.Err() != nil {
			return
		}
		n.log.Warn().Msg("lost the broker lease; registering again")
		if err := n.register(); err != nil && n.ctx.Err() == nil {
			n.log.Error().Err(err).Msg("registering again")
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// loadBrokers reads the live brokers and returns the revision read at.
func (n *Node) loadBrokers() (int64, error) {
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	resp, err := n.cli.Get(ctx, n.cfg.Prefix+"brokers/", clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("etcdstate: listing brokers: %w", err)
	}
	live := map[int32]clusterstate.Broker{}
	for _, kv := range resp.Kvs {
		var b clusterstate.Broker
		if json.Unmarshal(kv.Value, &b) == nil {
			live[b.NodeID] = b
		}
	}
	n.mu.Lock()
	n.mu.brokers = live
	n.mu.Unlock()
	n.wake()
	return resp.Header.Revision, nil
}

// watchBrokers follows registrations and expiries.
func (n *Node) watchBrokers(rev int64) {
	for n.ctx.Err() == nil {
		wch := n.cli.Watch(clientv3.WithRequireLeader(n.ctx), n.cfg.Prefix+"brokers/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wch {
			if wr.Err() != nil || wr.CompactRevision != 0 {
				break
			}
			n.mu.Lock()
			next := make(map[int32]clusterstate.Broker, len(n.mu.brokers))
			for id, b := range n.mu.brokers {
				next[id] = b
			}
			for _, ev := range wr.Events {
				id, err := strconv.Atoi(strings.TrimPrefix(string(ev.Kv.Key), n.cfg.Prefix+"brokers/"))
				if err != nil {
					continue
				}
				rev = max(rev, ev.Kv.ModRevision)
				if ev.Type == clientv3.EventTypeDelete {
					delete(next, int32(id))
					n.log.Info().Int("node_id", id).Msg("broker left the cluster")
					continue
				}
				var b clusterstate.Broker
				if json.Unmarshal(ev.Kv.Value, &b) == nil {
					next[b.NodeID] = b
				}
			}
			n.mu.brokers = next
			n.mu.Unlock()
			n.wake()
		}
		if n.ctx.Err() != nil {
			return
		}
		r, err := n.loadBrokers()
		if err != nil {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		rev = r
	}
}

func (n *Node) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Brokers are the live brokers, by node id.
func (n *Node) Brokers() []clusterstate.Broker {
	n.mu.Lock()
	out := make([]clusterstate.Broker, 0, len(n.mu.brokers))
	for _, b := range n.mu.brokers {
		out = append(out, b)
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Broker returns a live broker.
func (n *Node) Broker(id int32) (clusterstate.Broker, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, ok := n.mu.brokers[id]
	return b, ok
}

// Controller is the node id of the elected controller, -1 while none (a
// controller whose registration expired is none: its successor is being
// elected).
func (n *Node) Controller() int32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, live := n.mu.brokers[n.mu.controller]; !live {
		return -1
	}
	return n.mu.controller
}

// Place implements clusterstate.Placer over the live brokers.
func (n *Node) Place(_ string, from, count int32, rf int16) ([][]int32, error) {
	n.mu.Lock()
	if rf <= 0 {
		rf = max(n.mu.self.DefaultReplicationFactor, 1)
	}
	n.mu.Unlock()
	brokers := n.Brokers()
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%w: no broker is registered yet", clusterstate.ErrInvalidReplicationFactor)
	}
	return place(brokers, from, count, rf, rand.IntN(len(brokers)))
}

func (n *Node) goTracked(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close leaves the cluster: the lease is revoked, so the other brokers
// see this one gone at once (its partitions get new leaders), and the
// embedded member, if any, stops.
func (n *Node) Close() error {
	var err error
	n.stopOnce.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.mu.Lock()
		s := n.mu.session
		n.mu.Unlock()
		if s != nil {
			s.Close() // revokes the lease
		}
		err = n.cli.Close()
		n.closeEmbedded()
	})
	return err
}

// Crash stops the node as a killed process would: the lease is neither
// revoked nor kept alive, so the broker stays registered until its TTL
// runs out. For tests of failover; a later Close does nothing.
func (n *Node) Crash() {
	n.stopOnce.Do(func() {
		n.mu.Lock()
		s := n.mu.session
		n.mu.Unlock()
		if s != nil {
			s.Orphan()
		}
		n.cancel()
		n.wg.Wait()
		n.cli.Close()
		n.closeEmbedded()
	})
}

func (n *Node) closeEmbedded() {
	if n.embedded != nil {
		n.embedded.Close()
	}
}

// A Node is what a broker of a cluster is given (server.ClusterNode).
var _ clusterstate.Placer = (*Node)(nil)
