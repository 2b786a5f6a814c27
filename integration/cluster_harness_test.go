package integration

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/clusterstate"
	"github.com/skiffmq/skiff/server"
)

// linkProxy is an in-process TCP proxy in front of one address, which a
// test can cut (every open connection is closed, new ones are closed as
// soon as they are accepted) and heal. Replication tests put one on every
// broker-to-broker link.
type linkProxy struct {
	ln net.Listener

	mu     sync.Mutex // guards target, cut and conns
	target string     // "": refuse connections until SetTarget
	cut    bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

// newLinkProxy starts a proxy to target on 127.0.0.1:0, stopped at test end.
func newLinkProxy(t testing.TB, target string) *linkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is where to connect instead of the target.
func (p *linkProxy) Addr() string { return p.ln.Addr().String() }

func (p *linkProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		if target == "" {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", target)
		if err != nil || !p.track(up) {
			c.Close()
			if up != nil {
				up.Close()
			}
			continue
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// track registers a connection unless the link is cut.
func (p *linkProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *linkProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// SetTarget points the proxy at target: for a proxy whose address must
// be known before the target's (an advertised listener).
func (p *linkProxy) SetTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// Cut closes the link until Heal.
func (p *linkProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Heal lets connections through again.
func (p *linkProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func (p *linkProxy) close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

// testCluster is brokers 1..n in this process sharing one in-memory
// metadata backend (no etcd, no controller: a test assigns leaders
// itself); broker i reaches broker j (for replication and in the
// Metadata it answers) through links[i][j], a linkProxy.
type testCluster struct {
	backend *clusterstate.MemBackend
	brokers map[int32]*server.Server
	dirs    map[int32]string
	links   map[int32]map[int32]*linkProxy
}

// memNode is a broker's server.ClusterNode in a testCluster: a static
// registry in place of etcd's registrations. Each broker sees the others
// at the addresses of its own link proxies, so cutting a link cuts what
// one broker reaches.
type memNode struct {
	backend *clusterstate.MemBackend
	id      int32

	mu      sync.Mutex // guards brokers, filled once every broker is bound
	brokers []clusterstate.Broker
}

func (n *memNode) Backend() clusterstate.Backend { return n.backend }

// Place puts every new partition on the creating broker alone, as a single
// node would; tests then assign the replicas they want.
func (n *memNode) Place(_ string, _, count int32, _ int16) ([][]int32, error) {
	out := make([][]int32, count)
	for i := range out {
		out[i] = []int32{n.id}
	}
	return out, nil
}

func (n *memNode) Join(clusterstate.Broker, *clusterstate.State, int16) error { return nil }

func (n *memNode) Brokers() []clusterstate.Broker {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.brokers
}

func (n *memNode) Controller() int32 { return 1 }
func (n *memNode) Close() error      { return nil }

func (n *memNode) setBrokers(addrs map[int32]string) {
	var bs []clusterstate.Broker
	for id, addr := range addrs {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		bs = append(bs, clusterstate.Broker{NodeID: id, Endpoints: []clusterstate.Endpoint{{Listener: "PLAINTEXT", Host: host, Port: int32(p)}}})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].NodeID < bs[j].NodeID })
	n.mu.Lock()
	n.brokers = bs
	n.mu.Unlock()
}

// startMemCluster starts n brokers with the given settings.
func startMemCluster(t testing.TB, n int32, settings map[string]string) *testCluster {
	t.Helper()
	c := &testCluster{
		backend: clusterstate.NewMemBackend(),
		brokers: map[int32]*server.Server{},
		dirs:    map[int32]string{},
		links:   map[int32]map[int32]*linkProxy{},
	}
	nodes := map[int32]*memNode{}
	for id := int32(1); id <= n; id++ {
		dir := t.TempDir()
		nodes[id] = &memNode{backend: c.backend, id: id}
		cfg := server.Config{
			Listen:   "127.0.0.1:0",
			DataDir:  dir,
			NodeID:   id,
			Settings: settings,
			Profile:  server.ProfileProduction,
			Cluster:  nodes[id],
		}
		if os.Getenv("SKIFF_TEST_LOG") != "" {
			cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).With().Int32("node", id).Logger()
		}
		s, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		c.brokers[id], c.dirs[id] = s, dir
	}
	for i := range c.brokers {
		addrs := map[int32]string{i: c.brokers[i].Addr()}
		c.links[i] = map[int32]*linkProxy{}
		for j := range c.brokers {
			if i != j {
				c.links[i][j] = newLinkProxy(t, c.brokers[j].Addr())
				addrs[j] = c.links[i][j].Addr()
			}
		}
		nodes[i].setBrokers(addrs)
	}
	return c
}

// assign sets partitions' assignments in the shared metadata, as a
// controller would.
func (c *testCluster) assign(t testing.TB, topic string, as ...clusterstate.Assignment) {
	t.Helper()
	_, err := c.backend.Update(context.Background(), func(img *clusterstate.Image) {
		for i := range img.Topics {
			if img.Topics[i].Name == topic {
				img.Topics[i].Assignments = as
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// assignment reads a partition's stored assignment.
func (c *testCluster) assignment(t testing.TB, topic string, partition int) clusterstate.Assignment {
	t.Helper()
	img, _, err := c.backend.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range img.Topics {
		if it.Name == topic && partition < len(it.Assignments) {
			return it.Assignments[partition]
		}
	}
	t.Fatalf("no assignment for %s-%d", topic, partition)
	return clusterstate.Assignment{}
}

// segmentBytes is the concatenation of a partition's segment files on a
// broker, oldest first.
func (c *testCluster) segmentBytes(t testing.TB, id int32, topic string, partition int) []byte {
	t.Helper()
	return segmentBytesIn(t, c.dirs[id], topic, partition)
}

// segmentBytesIn is the concatenation of a partition's segment files in a
// broker's data directory, oldest first.
func segmentBytesIn(t testing.TB, dir, topic string, partition int) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, topic+"-"+strconv.Itoa(partition), "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}
