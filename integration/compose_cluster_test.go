package integration

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDockerComposeClusterFile checks docker-compose.cluster.yml without a
// Docker engine: its structure (three brokers with distinct node ids and
// etcd members, each member's peer URL on its service's fixed address and
// in every member's initial cluster, Kafdrop waiting for all three and
// pointed at their INTERNAL listeners), then runs the three services'
// own command lines and listener settings as skiff processes, with the
// compose network's addresses mapped to 127.0.0.11-13, and checks that
// they form one cluster.
func TestDockerComposeClusterFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three skiff processes")
	}
	script := `import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)`
	out, err := exec.Command("/usr/bin/python3", "-c", script, "../docker-compose.cluster.yml").Output()
	if err != nil {
		t.Fatalf("parsing docker-compose.cluster.yml (needs /usr/bin/python3 with python3-yaml): %v", err)
	}
	type service struct {
		Image       string            `json:"image"`
		Build       any               `json:"build"`
		Command     []string          `json:"command"`
		Environment map[string]string `json:"environment"`
		Networks    map[string]*struct {
			IPv4 string `json:"ipv4_address"`
		} `json:"networks"`
		Healthcheck struct {
			Test []string `json:"test"`
		} `json:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `json:"condition"`
		} `json:"depends_on"`
	}
	var compose struct {
		Services map[string]service `json:"services"`
	}
	if err := json.Unmarshal(out, &compose); err != nil {
		t.Fatal(err)
	}
	names := []string{"skiff1", "skiff2", "skiff3"}
	flag := func(s service, name string) string {
		for _, a := range s.Command {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v
			}
		}
		return ""
	}
	// toLoopback maps the compose network's addresses and host names to
	// this machine's loopback: skiffN and 172.28.0.1N become 127.0.0.1N.
	var mapping []string
	for i, name := range names {
		s, ok := compose.Services[name]
		if !ok || s.Build == nil || len(s.Healthcheck.Test) == 0 {
			t.Fatalf("service %s: missing, not built from the Dockerfile, or without a health check", name)
		}
		ip := s.Networks["cluster"]
		if ip == nil || ip.IPv4 == "" {
			t.Fatalf("service %s has no fixed address on the cluster network", name)
		}
		if flag(s, "node-id") != string(rune('1'+i)) || !slices.Contains(s.Command, "--embedded-etcd") {
			t.Errorf("%s: node id %q, embedded etcd %v", name, flag(s, "node-id"), slices.Contains(s.Command, "--embedded-etcd"))
		}
		peer := flag(s, "etcd-peer-url")
		if !strings.Contains(peer, "//"+ip.IPv4+":") {
			t.Errorf("%s: etcd peer URL %q is not on its address %s", name, peer, ip.IPv4)
		}
		for _, other := range names {
			if !strings.Contains(flag(compose.Services[other], "etcd-initial-cluster"), flag(s, "etcd-name")+"="+peer) {
				t.Errorf("%s's initial cluster lacks %s=%s", other, flag(s, "etcd-name"), peer)
			}
		}
		if compose.Services["kafdrop"].DependsOn[name].Condition != "service_healthy" {
			t.Errorf("kafdrop does not wait for %s to be healthy", name)
		}
		if !strings.Contains(compose.Services["kafdrop"].Environment["KAFKA_BROKERCONNECT"], name+":19092") ||
			!strings.Contains(s.Environment["SKIFF_ADVERTISED_LISTENERS"], "INTERNAL://"+name+":19092") {
			t.Errorf("kafdrop's %q and %s's INTERNAL listener %q differ", compose.Services["kafdrop"].Environment["KAFKA_BROKERCONNECT"],
				name, s.Environment["SKIFF_ADVERTISED_LISTENERS"])
		}
		lo := "127.0.0.1" + string(rune('1'+i))
		mapping = append(mapping, ip.IPv4, lo, name+":", lo+":")
	}
	toLoopback := strings.NewReplacer(mapping...)

	bin := buildClusterSkiff(t)
	var procs []*skiffProcess
	for i, name := range names {
		s := compose.Services[name]
		lo := "127.0.0.1" + string(rune('1'+i))
		args := []string{"--etcd-lease-ttl=" + clusterLeaseTTL.String(),
			"--listeners=" + strings.ReplaceAll(s.Environment["SKIFF_LISTENERS"], "0.0.0.0", lo),
			"--advertised-listeners=" + strings.ReplaceAll(toLoopback.Replace(s.Environment["SKIFF_ADVERTISED_LISTENERS"]), "localhost", lo),
			"--listener-security-protocol-map=" + s.Environment["SKIFF_LISTENER_SECURITY_PROTOCOL_MAP"]}
		for _, a := range s.Command {
			args = append(args, toLoopback.Replace(a))
		}
		procs = append(procs, launchSkiff(t, bin, t.TempDir(), args...))
	}
	for i, p := range procs {
		p.waitStarted(t)
		c := dialRaw(t, "127.0.0.1"+string(rune('1'+i))+":19092")
		eventually(t, 30*time.Second, "three brokers and a controller in "+names[i]+"'s metadata", func() bool {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 12
			resp := roundTrip(t, c, req, 1).(*kmsg.MetadataResponse)
			var racks []string
			for _, b := range resp.Brokers {
				if b.Rack != nil {
					racks = append(racks, *b.Rack)
				}
			}
			slices.Sort(racks)
			return len(resp.Brokers) == 3 && resp.ControllerID > 0 && slices.Equal(racks, []string{"rack-a", "rack-b", "rack-c"})
		})
		c.Close()
	}
}
