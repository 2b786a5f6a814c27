package integration

import (
	"errors"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/clusterstate/etcdstate"
	"github.com/skiffmq/skiff/server"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterLeaseTTL is the brokers' lease in cluster tests: short, so that
// a killed broker's partitions move quickly (etcd's minimum is about 2s).
const clusterLeaseTTL = 2 * time.Second

// clusterBroker is one in-process broker of a test cluster.
type clusterBroker struct {
	*server.Server
	node *etcdstate.Node
	id   int32
	dir  string // its data directory
}

// startCluster starts n in-process brokers (node ids 1..n) on 127.0.0.1
// port 0 sharing one embedded etcd member (port 0, in a temporary
// directory), and returns them once every broker sees all n. racks, if
// given, are the brokers' broker.rack in order.
func startCluster(t *testing.T, n int, settings map[string]string, racks ...string) []*clusterBroker {
	t.Helper()
	return startClusterEach(t, n, func(i int) map[string]string {
		own := maps.Clone(settings)
		if own == nil {
			own = map[string]string{}
		}
		if len(racks) >= i {
			own["broker.rack"] = racks[i-1]
		}
		return own
	})
}

// startClusterEach is startCluster with broker i's settings from settings(i).
func startClusterEach(t *testing.T, n int, settings func(i int) map[string]string) []*clusterBroker {
	t.Helper()
	m, err := etcdstate.StartEmbedded(etcdstate.EmbedConfig{Dir: t.TempDir(), PeerURL: "http://127.0.0.1:0", ClientURL: "http://127.0.0.1:0", Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	var out []*clusterBroker
	for i := 1; i <= n; i++ {
		node, err := etcdstate.NewNode(etcdstate.NodeConfig{Endpoints: []string{m.ClientURL()}, Prefix: "/" + t.Name() + "/",
			LeaseTTL: clusterLeaseTTL, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		cfg := server.Config{Listen: "127.0.0.1:0", DataDir: dir, NodeID: int32(i), Settings: settings(i), Cluster: node}
		if os.Getenv("SKIFF_TEST_LOG") != "" {
			cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).With().Int("node", i).Logger()
		}
		srv, err := server.New(cfg)
		if err != nil {
			node.Close()
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			srv.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		out = append(out, &clusterBroker{Server: srv, node: node, id: int32(i), dir: dir})
	}
	for _, b := range out {
		eventually(t, 30*time.Second, "every broker to see the whole cluster", func() bool {
			return len(b.node.Brokers()) == n && b.node.Controller() > 0
		})
	}
	return out
}

func clusterSeeds(bs []*clusterBroker) []string {
	var seeds []string
	for _, b := range bs {
		seeds = append(seeds, b.Addr())
	}
	return seeds
}

// TestClusterThreeBrokersLeadersAndFailover: three brokers sharing etcd
// are one cluster to a franz-go client: Metadata and DescribeCluster list
// all three and the same controller, an RF=3 topic has its leaders spread
// over the brokers, FindCoordinator names the leader of the group's
// __consumer_offsets partition, and a broker that does not lead a
// partition refuses produce and fetch with NOT_LEADER_OR_FOLLOWER. When
// a leader dies without leaving (its lease expires), the controller
// makes an ISR member leader with the next leader epoch, and the
// client's next produce goes there without any reconfiguration.
func TestClusterThreeBrokersLeadersAndFailover(t *testing.T) {
	bs := startCluster(t, 3, map[string]string{"default.replication.factor": "3"}, "rack-a", "rack-b", "rack-c")
	cl := newClient(t, bs[0].Addr(), kgo.SeedBrokers(clusterSeeds(bs)...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryTimeout(60*time.Second))
	adm := kadm.NewClient(cl)
	ctx := testContext(t)

	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := meta.Brokers.NodeIDs(); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("Metadata lists brokers %v, want [1 2 3]", got)
	}
	for _, b := range meta.Brokers {
		if b.Rack == nil || *b.Rack != "rack-"+string(rune('a'+b.NodeID-1)) {
			t.Fatalf("broker %d has rack %v, want its broker.rack", b.NodeID, b.Rack)
		}
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dc.Brokers) != 3 || dc.ControllerID != meta.Controller || dc.ControllerID < 1 {
		t.Fatalf("DescribeCluster: %d brokers, controller %d; Metadata controller %d", len(dc.Brokers), dc.ControllerID, meta.Controller)
	}

	// DescribeQuorum describes the controller election: the controller
	// leads and every live broker is a voter.
	dq := kmsg.NewPtrDescribeQuorumRequest()
	dqt := kmsg.NewDescribeQuorumRequestTopic()
	dqt.Topic = "__cluster_metadata"
	dqt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	dq.Topics = append(dq.Topics, dqt)
	dqr, err := dq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if qp := dqr.Topics[0].Partitions[0]; qp.LeaderID != meta.Controller || len(qp.CurrentVoters) != 3 || len(dqr.Nodes) != 3 {
		t.Fatalf("DescribeQuorum: leader %d, %d voters, %d nodes; want controller %d and 3 of each", qp.LeaderID, len(qp.CurrentVoters), len(dqr.Nodes), meta.Controller)
	}

	// RF above the live brokers is refused as Kafka refuses it.
	if r, _ := adm.CreateTopic(ctx, 1, 4, nil, "too-many"); !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("RF 4 on 3 brokers: %v, want INVALID_REPLICATION_FACTOR", r.Err)
	}
	const topic = "spread"
	if r, err := adm.CreateTopic(ctx, 6, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	var parts kadm.PartitionDetails
	var topicID [16]byte
	eventually(t, 30*time.Second, "every broker to serve the topic's metadata", func() bool {
		m, err := adm.Metadata(ctx, topic)
		if err != nil || m.Topics[topic].Err != nil || len(m.Topics[topic].Partitions) != 6 {
			return false
		}
		parts, topicID = m.Topics[topic].Partitions, m.Topics[topic].ID
		return true
	})
	leaders := map[int32]int{}
	for _, p := range parts {
		if len(p.Replicas) != 3 || len(p.ISR) != 3 {
			t.Fatalf("partition %d: replicas %v ISR %v, want 3 of each", p.Partition, p.Replicas, p.ISR)
		}
		leaders[p.Leader]++
	}
	if len(leaders) != 3 {
		t.Fatalf("leaders %v: not spread over the 3 brokers", leaders)
	}

	// Partitions added later are placed with the topic's replication
	// factor, or where the request puts them.
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = topic, 8
	for _, r := range [][]int32{{3, 1, 2}, {2, 3, 1}} {
		a := kmsg.NewCreatePartitionsRequestTopicAssignment()
		a.Replicas = r
		cpt.Assignment = append(cpt.Assignment, a)
	}
	cp.Topics = append(cp.Topics, cpt)
	cp.TimeoutMillis = 10000
	cpr, err := cp.RequestWith(ctx, cl)
	if err != nil || cpr.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreatePartitions with an assignment: %v %+v", err, cpr)
	}
	eventually(t, 30*time.Second, "the added partitions with their assigned replicas", func() bool {
		m, err := adm.Metadata(ctx, topic)
		if err != nil || len(m.Topics[topic].Partitions) != 8 {
			return false
		}
		p6, p7 := m.Topics[topic].Partitions[6], m.Topics[topic].Partitions[7]
		return slices.Equal(p6.Replicas, []int32{3, 1, 2}) && p6.Leader == 3 && slices.Equal(p7.Replicas, []int32{2, 3, 1})
	})

	// Produce to every partition through the leaders.
	for p := int32(0); p < 6; p++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("before")}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}

	// A broker that does not lead partition 0 refuses it.
	p0 := parts[0]
	var follower int32
	for _, id := range p0.Replicas {
		if id != p0.Leader {
			follower = id
			break
		}
	}
	preq := kmsg.NewPtrProduceRequest()
	preq.Acks, preq.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = topic, topicID // the name up to v12, the id from v13
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 0
	pp.Records = recordBatch("x") // hostile_test.go
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	presp, err := preq.RequestWith(ctx, cl.Broker(int(follower)))
	if err != nil {
		t.Fatal(err)
	}
	if code := presp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to follower %d: error %d, want NOT_LEADER_OR_FOLLOWER", follower, code)
	}
	freq := kmsg.NewPtrFetchRequest()
	freq.ReplicaID, freq.MaxBytes = -1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, topicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 0, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	fresp, err := freq.RequestWith(ctx, cl.Broker(int(follower)))
	if err != nil {
		t.Fatal(err)
	}
	if code := fresp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch from follower %d: error %d, want NOT_LEADER_OR_FOLLOWER", follower, code)
	}

	// FindCoordinator names the leader of the group's offsets partition.
	const group = "g1"
	var coord int32 = -1
	eventually(t, 30*time.Second, "a coordinator for the group", func() bool {
		resp := adm.FindGroupCoordinators(ctx, group)
		if resp[group].Err != nil {
			return false
		}
		coord = resp[group].NodeID
		return true
	})
	var offParts kadm.PartitionDetails
	eventually(t, 30*time.Second, "__consumer_offsets in the metadata", func() bool {
		om, err := adm.Metadata(ctx, "__consumer_offsets")
		if err != nil {
			return false
		}
		offParts = om.Topics["__consumer_offsets"].Partitions
		return len(offParts) > 0
	})
	if want := offParts[int32(offsetsPartition(group, len(offParts)))].Leader; coord != want {
		t.Fatalf("FindCoordinator(%s) = %d, want %d, the leader of its __consumer_offsets partition", group, coord, want)
	}

	// Kill the leader of partition 0 without leaving the cluster.
	victim := p0.Leader
	killed := time.Now()
	bs[victim-1].node.Crash()
	bs[victim-1].Close()
	var now kadm.PartitionDetail
	eventually(t, 60*time.Second, "a new leader of partition 0 from its ISR", func() bool {
		m, err := adm.Metadata(ctx, topic)
		if err != nil {
			return false
		}
		now = m.Topics[topic].Partitions[0]
		return now.Leader != victim && now.Leader > 0 && now.LeaderEpoch == p0.LeaderEpoch+1
	})
	if !slices.Contains(p0.ISR, now.Leader) || slices.Contains(now.ISR, victim) {
		t.Fatalf("new leader %d (ISR %v); the old ISR was %v and %d is dead", now.Leader, now.ISR, p0.ISR, victim)
	}
	t.Logf("partition 0 moved from broker %d to %d in %v (lease TTL %v)", victim, now.Leader, time.Since(killed).Round(10*time.Millisecond), clusterLeaseTTL)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after failover: %v", err)
	}
	meta, err = adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(meta.Brokers.NodeIDs(), victim) || meta.Controller == victim || meta.Controller < 1 {
		t.Fatalf("after the kill Metadata lists brokers %v, controller %d", meta.Brokers.NodeIDs(), meta.Controller)
	}
}

// offsetsPartition is Kafka's abs(hashCode(group)) % n.
func offsetsPartition(group string, n int) int {
	var h int32
	for _, r := range group {
		h = 31*h + int32(r)
	}
	if h < 0 {
		h = -h
	}
	return int(h) % n
}

// TestClusterThreeSkiffProcessesWithEmbeddedEtcd: three skiff binaries
// with --embedded-etcd and nothing else installed form one cluster (like
// KRaft's combined mode): a client seeded with any of them sees all
// three, creates an RF=3 topic and produces to it; after the leader of a
// partition is killed with SIGKILL, a surviving ISR member leads it once
// the dead broker's lease expires, and the same client produces again;
// the killed broker restarted on its data joins again.
func TestClusterThreeSkiffProcessesWithEmbeddedEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three skiff processes")
	}
	bin := buildClusterSkiff(t)
	ports := freePorts(t, 6)
	var initial []string
	for i := range 3 {
		initial = append(initial, "s"+strconv.Itoa(i+1)+"=http://127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	args := func(i int) []string {
		return []string{"--node-id=" + strconv.Itoa(i+1),
			"--embedded-etcd", "--etcd-name=s" + strconv.Itoa(i+1),
			"--etcd-initial-cluster=" + strings.Join(initial, ","),
			"--etcd-peer-url=http://127.0.0.1:" + strconv.Itoa(ports[i]),
			"--etcd-client-url=http://127.0.0.1:" + strconv.Itoa(ports[3+i]),
			"--etcd-lease-ttl=" + clusterLeaseTTL.String(),
			"default.replication.factor=3"}
	}
	var procs []*skiffProcess
	var dirs []string
	for i := range 3 {
		dirs = append(dirs, t.TempDir())
		procs = append(procs, launchSkiff(t, bin, dirs[i], args(i)...))
	}
	var seeds []string
	for _, p := range procs {
		p.waitStarted(t)
		// The etcd member's directory is not taken for a partition log
		// (which made a new broker report an unclean stop).
		if !p.cleanStart {
			t.Errorf("a broker on a new data dir reported an unclean previous stop")
		}
		seeds = append(seeds, p.addr)
	}
	// Every broker knows the others and the controller, asked directly
	// (a client answers Metadata from its cache).
	for _, addr := range seeds {
		c := dialRaw(t, addr)
		var last *kmsg.MetadataResponse
		eventually(t, 30*time.Second, "three brokers and a controller in "+addr+"'s metadata", func() bool {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 12
			last = roundTrip(t, c, req, 1).(*kmsg.MetadataResponse)
			return len(last.Brokers) == 3 && last.ControllerID > 0
		})
		c.Close()
	}
	cl := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryTimeout(60*time.Second))
	adm := kadm.NewClient(cl)
	ctx := testContext(t)
	const topic = "procs"
	if r, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	var p0 kadm.PartitionDetail
	eventually(t, 30*time.Second, "the topic's leaders", func() bool {
		m, err := adm.Metadata(ctx, topic)
		if err != nil || len(m.Topics[topic].Partitions) != 3 {
			return false
		}
		p0 = m.Topics[topic].Partitions[0]
		return p0.Leader > 0 && len(p0.ISR) == 3
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	victim := int(p0.Leader - 1)
	procs[victim].kill9(t)
	eventually(t, 60*time.Second, "a new leader of partition 0", func() bool {
		m, err := adm.Metadata(ctx, topic)
		if err != nil {
			return false
		}
		p := m.Topics[topic].Partitions[0]
		return p.Leader > 0 && p.Leader != p0.Leader && p.LeaderEpoch > p0.LeaderEpoch
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the leader's kill: %v", err)
	}

	// The killed broker restarts on its data: its etcd member rejoins and
	// it registers again once its old lease has expired.
	back := startSkiff(t, bin, dirs[victim], args(victim)...)
	c := dialRaw(t, back.addr)
	defer c.Close()
	eventually(t, 60*time.Second, "the restarted broker to see all three", func() bool {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		m := roundTrip(t, c, req, 2).(*kmsg.MetadataResponse)
		return len(m.Brokers) == 3 && m.ControllerID > 0
	})
}
