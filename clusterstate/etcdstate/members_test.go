package etcdstate

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/clusterstate"
)

func freePorts(t *testing.T, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Three brokers, each with its own embedded etcd member of one
// three-member cluster, see each other and the same controller.
func TestNodesWithOwnMembersSeeEachOther(t *testing.T) {
	ports := freePorts(t, 6)
	var initial []string
	for i := range 3 {
		initial = append(initial, "m"+strconv.Itoa(i)+"=http://127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	start := time.Now()
	nodes := make([]*Node, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = NewNode(NodeConfig{Prefix: "/m/", LeaseTTL: 2 * time.Second, Logger: zerolog.Nop(), Embed: &EmbedConfig{
				Name: "m" + strconv.Itoa(i), Dir: t.TempDir(), InitialCluster: strings.Join(initial, ","),
				PeerURL: "http://127.0.0.1:" + strconv.Itoa(ports[i]), ClientURL: "http://127.0.0.1:" + strconv.Itoa(ports[3+i]), Quiet: true}})
		}()
	}
	wg.Wait()
	t.Logf("members started in %v", time.Since(start))
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nodes[i].Close() })
	}
	for i, n := range nodes {
		st := openStateOn(t, n.Backend(), int32(i+1), n)
		if err := n.Join(clusterstate.Broker{NodeID: int32(i + 1)}, st, 3); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("joined after %v", time.Since(start))
	for _, n := range nodes {
		eventually(t, "3 live brokers and a controller", func() bool { return len(n.Brokers()) == 3 && n.Controller() > 0 })
	}
	t.Logf("all see each other after %v", time.Since(start))
}
