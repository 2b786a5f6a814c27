package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffmq/skiff/server"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// javaClient39 is a franz-go client limited to the request versions of the
// Java client 3.9, which Kafdrop 4 embeds; extra lowers single APIs
// further.
func javaClient39(t *testing.T, addr string, extra map[kmsg.Key]int16) *kgo.Client {
	t.Helper()
	v := kversion.V3_9_0()
	for k, max := range extra {
		v.SetMaxKeyVersion(int16(k), max)
	}
	return newClient(t, addr, kgo.MaxVersions(v))
}

// request issues req and fails the test on a transport error.
func request[R kmsg.Response](t *testing.T, ctx context.Context, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

// TestKafdropReplay sends what Kafdrop sends when its pages are opened, at
// the Java 3.9 client's versions, and checks every answer is what Kafka's
// would be (DESIGN.md, "What Kafdrop needs").
func TestKafdropReplay(t *testing.T) {
	b := startBroker(t, nil)
	ctx := testContext(t)
	cl := javaClient39(t, b.Addr(), nil)
	adm := kadm.NewClient(cl)

	createTopic(t, adm, "orders", 3, map[string]*string{"retention.ms": kmsg.StringPtr("3600000")})
	var recs []*kgo.Record
	for i := range 9 {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 3), Value: []byte("v" + strconv.Itoa(i))})
	}
	prod := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	t.Run("DescribeCluster", func(t *testing.T) {
		req := kmsg.NewPtrDescribeClusterRequest()
		resp := request[*kmsg.DescribeClusterResponse](t, ctx, cl, req)
		if resp.Version != 1 {
			t.Errorf("version %d, want 1 (Java 3.9)", resp.Version)
		}
		if resp.ErrorCode != 0 || resp.ClusterID == "" || len(resp.Brokers) != 1 {
			t.Fatalf("response %+v", resp)
		}
		br := resp.Brokers[0]
		if resp.ControllerID != br.NodeID {
			t.Errorf("controller %d is not a listed broker (%d)", resp.ControllerID, br.NodeID)
		}
		addr := net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
		if addr != b.Addr() {
			t.Errorf("advertised %s, want %s", addr, b.Addr())
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("advertised address %s unreachable: %v", addr, err)
		}
		c.Close()
	})

	t.Run("MetadataAllTopics", func(t *testing.T) {
		req := kmsg.NewPtrMetadataRequest() // null topics: all
		resp := request[*kmsg.MetadataResponse](t, ctx, cl, req)
		if resp.Version != 12 {
			t.Errorf("version %d, want 12", resp.Version)
		}
		nodes := map[int32]bool{}
		for _, br := range resp.Brokers {
			nodes[br.NodeID] = true
		}
		if !nodes[resp.ControllerID] {
			t.Errorf("controller %d not among brokers", resp.ControllerID)
		}
		found := false
		for _, mt := range resp.Topics {
			if mt.ErrorCode != 0 {
				t.Errorf("topic %v has error %v", mt.Topic, kerr.ErrorForCode(mt.ErrorCode))
			}
			if *mt.Topic == "orders" {
				found = len(mt.Partitions) == 3
			}
			for _, p := range mt.Partitions {
				if p.ErrorCode != 0 || !nodes[p.Leader] || len(p.Replicas) != 1 || !nodes[p.Replicas[0]] || len(p.ISR) != 1 || !nodes[p.ISR[0]] {
					t.Errorf("%s/%d: %+v", *mt.Topic, p.Partition, p)
				}
			}
		}
		if !found {
			t.Errorf("orders with 3 partitions not listed: %+v", resp.Topics)
		}
	})

	t.Run("DescribeConfigs", func(t *testing.T) {
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "orders"
		req.Resources = append(req.Resources, rr)
		resp := request[*kmsg.DescribeConfigsResponse](t, ctx, cl, req)
		if resp.Version != 4 || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("response v%d %+v", resp.Version, resp.Resources)
		}
		got := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, c := range resp.Resources[0].Configs {
			got[c.Name] = c
		}
		if len(got) < 30 {
			t.Errorf("only %d topic configs described", len(got))
		}
		for name, want := range map[string]struct {
			value  string
			source kmsg.ConfigSource
		}{
			"retention.ms":      {"3600000", kmsg.ConfigSourceDynamicTopicConfig},
			"cleanup.policy":    {"delete", kmsg.ConfigSourceDefaultConfig},
			"segment.bytes":     {"1073741824", kmsg.ConfigSourceDefaultConfig},
			"max.message.bytes": {"1048588", kmsg.ConfigSourceDefaultConfig},
		} {
			c, ok := got[name]
			if !ok || c.Value == nil || *c.Value != want.value || c.Source != want.source || c.ReadOnly || c.IsSensitive {
				t.Errorf("%s: got %+v, want value %s source %v", name, c, want.value, want.source)
			}
			if c.ConfigType == 0 {
				t.Errorf("%s: no config type", name)
			}
		}

		// A topic that does not exist.
		req.Resources[0].ResourceName = "no-such-topic"
		resp = request[*kmsg.DescribeConfigsResponse](t, ctx, cl, req)
		if resp.Resources[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("unknown topic: %v", kerr.ErrorForCode(resp.Resources[0].ErrorCode))
		}
	})

	t.Run("ListOffsetsReadCommitted", func(t *testing.T) {
		for _, tc := range []struct {
			ts   int64
			want int64
		}{{-2, 0}, {-1, 3}} {
			req := kmsg.NewPtrListOffsetsRequest()
			req.IsolationLevel = 1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "orders"
			for p := range int32(3) {
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Partition, rp.Timestamp = p, tc.ts
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			resp := request[*kmsg.ListOffsetsResponse](t, ctx, cl, req)
			if resp.Version < 2 {
				t.Errorf("version %d", resp.Version)
			}
			for _, p := range resp.Topics[0].Partitions {
				if p.ErrorCode != 0 || p.Offset != tc.want {
					t.Errorf("ts %d partition %d: offset %d err %v, want %d", tc.ts, p.Partition, p.Offset, kerr.ErrorForCode(p.ErrorCode), tc.want)
				}
			}
		}
	})

	t.Run("FetchReadCommitted", func(t *testing.T) {
		for _, version := range []int16{12, 17} {
			fcl := javaClient39(t, b.Addr(), map[kmsg.Key]int16{kmsg.Fetch: version})
			md := request[*kmsg.MetadataResponse](t, ctx, fcl, kmsg.NewPtrMetadataRequest())
			var id [16]byte
			for _, mt := range md.Topics {
				if *mt.Topic == "orders" {
					id = mt.TopicID
				}
			}
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID, req.IsolationLevel = -1, 1
			req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 5000, 1, 1<<20
			req.SessionEpoch = -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = "orders", id
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, 0, 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			start := time.Now()
			resp := request[*kmsg.FetchResponse](t, ctx, fcl, req)
			if resp.Version != version {
				t.Errorf("fetch version %d, want %d", resp.Version, version)
			}
			if time.Since(start) > 4*time.Second {
				t.Errorf("fetch v%d waited although data exists", version)
			}
			if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("fetch v%d: %+v", version, resp)
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.HighWatermark != 3 || p.LastStableOffset != 3 || p.LogStartOffset != 0 || len(p.RecordBatches) == 0 || len(p.AbortedTransactions) != 0 {
				t.Errorf("fetch v%d partition: err %v hw %d lso %d start %d %d bytes aborted %v", version,
					kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, p.LastStableOffset, p.LogStartOffset, len(p.RecordBatches), p.AbortedTransactions)
			}
		}
	})

	t.Run("GroupWithOnlyCommits", func(t *testing.T) {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2, LeaderEpoch: -1})
		offs.Add(kadm.Offset{Topic: "orders", Partition: 2, At: 1, LeaderEpoch: -1})
		cr, err := adm.CommitOffsets(ctx, "kafdrop-viewer", offs)
		if err != nil || cr.Error() != nil {
			t.Fatalf("commit: %v %v", err, cr.Error())
		}

		lg := request[*kmsg.ListGroupsResponse](t, ctx, cl, kmsg.NewPtrListGroupsRequest())
		listed := false
		for _, g := range lg.Groups {
			if g.Group == "kafdrop-viewer" {
				listed = true
				if g.GroupState != "Empty" {
					t.Errorf("state %q, want Empty", g.GroupState)
				}
			}
		}
		if lg.ErrorCode != 0 || !listed {
			t.Errorf("group not listed: %+v", lg)
		}

		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = "kafdrop-viewer"
		fc.CoordinatorKeys = []string{"kafdrop-viewer"}
		fr := request[*kmsg.FindCoordinatorResponse](t, ctx, cl, fc)
		if len(fr.Coordinators) != 1 || fr.Coordinators[0].ErrorCode != 0 ||
			net.JoinHostPort(fr.Coordinators[0].Host, strconv.Itoa(int(fr.Coordinators[0].Port))) != b.Addr() {
			t.Errorf("find coordinator: %+v", fr)
		}

		of := kmsg.NewPtrOffsetFetchRequest()
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = "kafdrop-viewer" // Topics nil: every committed partition
		of.Groups = append(of.Groups, g)
		or := request[*kmsg.OffsetFetchResponse](t, ctx, cl, of)
		if len(or.Groups) != 1 || or.Groups[0].ErrorCode != 0 {
			t.Fatalf("offset fetch: %+v", or)
		}
		got := map[int32]int64{}
		for _, tp := range or.Groups[0].Topics {
			for _, p := range tp.Partitions {
				if tp.Topic == "orders" {
					got[p.Partition] = p.Offset
				}
			}
		}
		if len(got) != 2 || got[0] != 2 || got[2] != 1 {
			t.Errorf("committed offsets %v, want map[0:2 2:1]", got)
		}
	})

	t.Run("DescribeAcls", func(t *testing.T) {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType = kmsg.ACLResourceTypeAny
		req.ResourcePatternType = kmsg.ACLResourcePatternTypeAny
		req.Operation = kmsg.ACLOperationAny
		req.PermissionType = kmsg.ACLPermissionTypeAny
		resp := request[*kmsg.DescribeACLsResponse](t, ctx, cl, req)
		if resp.ErrorCode != kerr.SecurityDisabled.Code || resp.ErrorMessage == nil {
			t.Errorf("describe acls: %v %v", kerr.ErrorForCode(resp.ErrorCode), resp.ErrorMessage)
		}
	})

	t.Run("CreateDeleteTopicsAtController", func(t *testing.T) {
		cr, err := adm.CreateTopic(ctx, 2, 1, nil, "kafdrop-made")
		if err != nil || cr.Err != nil {
			t.Fatalf("create: %v %v", err, cr.Err)
		}
		dr, err := adm.DeleteTopics(ctx, "kafdrop-made")
		if err != nil || dr.Error() != nil {
			t.Fatalf("delete: %v %v", err, dr.Error())
		}
	})
}

// TestDockerComposeFile checks docker-compose.yml without a Docker engine:
// it parses (PyYAML under the system python, installed by .ci/run), Kafdrop
// (on port 9000) connects to Skiff's INTERNAL listener, the host reaches
// Skiff on 9092, data lives in a named volume, Skiff has a
// health check Kafdrop waits for, and Skiff's listener settings validate.
// Prometheus scrapes Skiff's HTTP listener with the config in deploy/, and
// Grafana is provisioned with it and the dashboard.
func TestDockerComposeFile(t *testing.T) {
	script := `import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)`
	out, err := exec.Command("/usr/bin/python3", "-c", script, "../docker-compose.yml").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("parsing docker-compose.yml (needs python3-yaml): %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("parsing docker-compose.yml (needs /usr/bin/python3 with python3-yaml): %v", err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `json:"image"`
			Build       any               `json:"build"`
			Environment map[string]string `json:"environment"`
			Ports       []string          `json:"ports"`
			Volumes     []string          `json:"volumes"`
			Healthcheck struct {
				Test []string `json:"test"`
			} `json:"healthcheck"`
			DependsOn map[string]struct {
				Condition string `json:"condition"`
			} `json:"depends_on"`
		} `json:"services"`
		Volumes map[string]any `json:"volumes"`
	}
	if err := json.Unmarshal(out, &compose); err != nil {
		t.Fatal(err)
	}
	skiff, ok := compose.Services["skiff"]
	if !ok || skiff.Build == nil {
		t.Fatalf("no skiff service built from the Dockerfile: %s", out)
	}
	kafdrop, ok := compose.Services["kafdrop"]
	if !ok || !strings.HasPrefix(kafdrop.Image, "obsidiandynamics/kafdrop") {
		t.Fatalf("no kafdrop service: %s", out)
	}
	if !slices.Contains(skiff.Ports, "9092:9092") || !slices.Contains(kafdrop.Ports, "9000:9000") {
		t.Errorf("ports: skiff %v kafdrop %v", skiff.Ports, kafdrop.Ports)
	}
	if len(skiff.Volumes) != 1 {
		t.Fatalf("skiff volumes %v", skiff.Volumes)
	}
	vol, mount, _ := strings.Cut(skiff.Volumes[0], ":")
	if _, named := compose.Volumes[vol]; !named || mount != skiff.Environment["SKIFF_DATA_DIR"] {
		t.Errorf("data volume %q (named: %v) mounted at %q, data dir %q", vol, named, mount, skiff.Environment["SKIFF_DATA_DIR"])
	}
	if len(skiff.Healthcheck.Test) == 0 || kafdrop.DependsOn["skiff"].Condition != "service_healthy" {
		t.Errorf("health check %v, kafdrop depends on %+v", skiff.Healthcheck.Test, kafdrop.DependsOn)
	}
	checkComposeMonitoring(t, skiff.Environment["SKIFF_HTTP_LISTEN"], func(name string) ([]string, string, bool) {
		s, ok := compose.Services[name]
		return s.Volumes, s.Image, ok
	})

	// Skiff accepts the listener settings, and Kafdrop's broker address is
	// what the INTERNAL listener advertises.
	settings := map[string]string{
		"listeners":                      skiff.Environment["SKIFF_LISTENERS"],
		"advertised.listeners":           skiff.Environment["SKIFF_ADVERTISED_LISTENERS"],
		"listener.security.protocol.map": skiff.Environment["SKIFF_LISTENER_SECURITY_PROTOCOL_MAP"],
	}
	cfg := server.Config{DataDir: t.TempDir(), Settings: settings}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("skiff rejects the compose listener settings: %v", err)
	}
	if !strings.Contains(settings["advertised.listeners"], "INTERNAL://"+kafdrop.Environment["KAFKA_BROKERCONNECT"]) {
		t.Errorf("KAFKA_BROKERCONNECT %q is not the INTERNAL advertised listener in %q",
			kafdrop.Environment["KAFKA_BROKERCONNECT"], settings["advertised.listeners"])
	}
	if !strings.Contains(settings["advertised.listeners"], "EXTERNAL://localhost:9092") {
		t.Errorf("host clients need EXTERNAL://localhost:9092 advertised: %q", settings["advertised.listeners"])
	}

	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "FROM gcr.io/distroless/static", "USER nonroot", "EXPOSE 9092", "HEALTHCHECK", "SKIFF_DATA_DIR=/var/lib/skiff"} {
		if !strings.Contains(string(dockerfile), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// checkComposeMonitoring checks the compose file's monitoring half: Skiff's
// HTTP listener is valid and reachable from other containers, Prometheus
// mounts deploy/prometheus.yml, which scrapes that port on the skiff
// service, and Grafana mounts the provisioning and the dashboard.
func checkComposeMonitoring(t *testing.T, httpListen string, service func(string) ([]string, string, bool)) {
	t.Helper()
	cfg := server.Config{DataDir: t.TempDir(), HTTPListen: httpListen}
	if err := cfg.Validate(); err != nil || httpListen == "" {
		t.Fatalf("SKIFF_HTTP_LISTEN %q: %v", httpListen, err)
	}
	host, port, _ := net.SplitHostPort(httpListen)
	if host != "0.0.0.0" && host != "" {
		t.Errorf("SKIFF_HTTP_LISTEN %q is not reachable from the Prometheus container", httpListen)
	}
	mounts := func(name string) map[string]string {
		vols, image, ok := service(name)
		if !ok {
			t.Fatalf("no %s service", name)
		}
		if !strings.Contains(image, name) {
			t.Errorf("%s service runs image %q", name, image)
		}
		m := map[string]string{}
		for _, v := range vols {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				continue
			}
			m[parts[1]] = parts[0]
			if strings.HasPrefix(parts[0], "./") {
				if _, err := os.Stat(filepath.Join("..", parts[0])); err != nil {
					t.Errorf("%s mounts %s: %v", name, parts[0], err)
				}
			}
		}
		return m
	}
	promCfg := mounts("prometheus")["/etc/prometheus/prometheus.yml"]
	if promCfg == "" {
		t.Fatal("prometheus does not mount a config at /etc/prometheus/prometheus.yml")
	}
	script := `import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)`
	out, err := exec.Command("/usr/bin/python3", "-c", script, filepath.Join("..", promCfg)).Output()
	if err != nil {
		t.Fatalf("parsing %s: %v", promCfg, err)
	}
	var prom struct {
		ScrapeConfigs []struct {
			MetricsPath   string `json:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := json.Unmarshal(out, &prom); err != nil {
		t.Fatal(err)
	}
	scraped := false
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, "skiff:"+port) && (sc.MetricsPath == "" || sc.MetricsPath == "/metrics") {
				scraped = true
			}
		}
	}
	if !scraped {
		t.Errorf("%s does not scrape skiff:%s/metrics: %s", promCfg, port, out)
	}
	graf := mounts("grafana")
	if graf["/etc/grafana/provisioning"] == "" {
		t.Error("grafana is not provisioned")
	}
	dashboard := false
	for target, src := range graf {
		if strings.HasPrefix(target, "/var/lib/grafana/dashboards") && strings.HasSuffix(src, ".json") {
			dashboard = true
		}
	}
	if !dashboard {
		t.Errorf("grafana mounts no dashboard: %v", graf)
	}
}

// TestKafdropACLPage: Kafdrop's ACL page (KafkaHighLevelAdminClient.listAcls)
// calls describeAcls(AclBindingFilter.ANY) through the Java 3.9 client. With
// the authorizer on, it lists every ACL created, with the fields the page
// shows. Kafdrop connects without credentials, as User:ANONYMOUS, which is
// a super user here (else the page needs DESCRIBE on the cluster).
func TestKafdropACLPage(t *testing.T) {
	b := startBroker(t, map[string]string{
		"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":           "User:ANONYMOUS",
	})
	ctx := testContext(t)
	cl := javaClient39(t, b.Addr(), nil)
	adm := kadm.NewClient(cl)
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpRead))
	mustCreateACLs(t, adm, kadm.NewACLs().Deny("User:bob").Groups("team-").ResourcePatternType(kadm.ACLPatternPrefixed).
		Operations(kadm.OpAll).DenyHosts("10.0.0.1"))
	mustCreateACLs(t, adm, kadm.NewACLs().Allow("User:ops").Clusters().Operations(kadm.OpDescribe))

	req := kmsg.NewPtrDescribeACLsRequest() // AclBindingFilter.ANY
	req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp := request[*kmsg.DescribeACLsResponse](t, ctx, cl, req)
	if resp.Version != 3 || resp.ErrorCode != 0 {
		t.Fatalf("DescribeAcls v%d: %v", resp.Version, kerr.ErrorForCode(resp.ErrorCode))
	}
	var got []string
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			got = append(got, fmt.Sprintf("%s:%s:%s %s@%s %s %s", r.ResourceType, r.ResourcePatternType, r.ResourceName,
				a.Principal, a.Host, a.Operation, a.PermissionType))
		}
	}
	slices.Sort(got)
	want := []string{
		"CLUSTER:LITERAL:kafka-cluster User:ops@* DESCRIBE ALLOW",
		"GROUP:PREFIXED:team- User:bob@10.0.0.1 ALL DENY",
		"TOPIC:LITERAL:orders User:alice@* READ ALLOW",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Kafdrop's ACL page would list\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
