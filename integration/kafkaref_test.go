package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Apache Kafka itself, run on this machine as the reference Skiff is
// compared with: kafka_2.13 from integration/jvm/kafka, formatted and
// started from its own main classes (kafka.tools.StorageTool,
// kafka.Kafka) in KRaft combined mode, one node, on loopback ports.

// kafkaOptions shape one Kafka run.
type kafkaOptions struct {
	// settings override or extend the minimal server.properties.
	settings map[string]string
	// jvmArgs replace kafkaFastStartJVM.
	jvmArgs []string
	// version is the kafka_2.13 release to run (jvm/kafka/pom.xml's
	// kafka.version property); "" runs the pom's, the release the
	// differential test compares with.
	version string
	// plainJAAS, if set, adds a SASL_PLAINTEXT listener with PLAIN and
	// this JAAS config (its users); kafkaBroker.saslAddr is its address.
	plainJAAS string
}

// kafkaFastStartJVM favours start-up time on a small machine over peak
// speed: the differential test sends a few hundred requests, so C2 and a
// large heap would only cost start-up time.
var kafkaFastStartJVM = []string{"-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"}

// kafkaScriptJVM is what bin/kafka-server-start.sh and
// kafka-run-class.sh give the broker by default: the JVM Kafka's users
// actually run, for measurements.
var kafkaScriptJVM = []string{"-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
	"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"}

// kafkaBroker is one running Apache Kafka.
type kafkaBroker struct {
	addr      string
	saslAddr  string        // with kafkaOptions.plainJAAS
	startTime time.Duration // from format to answering Metadata with a controller
	pid       int           // the JVM's, for its CPU time and memory in /proc
	// firstAnswer runs from starting kafka.Kafka (after the format) to
	// its first Metadata answer, as make bench times every broker.
	firstAnswer time.Duration
}

// startKafka formats and starts a one-node Apache Kafka (the pom's 4.1,
// or opts.version) in a temp dir and waits until it answers ApiVersions
// and its Metadata names a controller. It is stopped (SIGTERM, then SIGKILL) when the test ends.
// Start-up takes tens of seconds on two cores, so callers share one.
func startKafka(t testing.TB, opts kafkaOptions) *kafkaBroker {
	t.Helper()
	var mvnProps []string
	if opts.version != "" {
		mvnProps = append(mvnProps, "-Dkafka.version="+opts.version)
	}
	cp := mavenClasspath(t, "jvm/kafka", mvnProps...)
	java := javaBin(t)
	begin := time.Now()
	dir := t.TempDir()
	ports := freePorts(t, 3)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	controller := fmt.Sprintf("127.0.0.1:%d", ports[1])
	props := map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          "1",
		"controller.quorum.bootstrap.servers":              controller,
		"listeners":                                        "PLAINTEXT://" + addr + ",CONTROLLER://" + controller,
		"advertised.listeners":                             "PLAINTEXT://" + addr,
		"controller.listener.names":                        "CONTROLLER",
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs":                                         filepath.Join(dir, "data"),
		"offsets.topic.replication.factor":                 "1",
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
	}
	saslAddr := ""
	if opts.plainJAAS != "" {
		saslAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
		props["listeners"] += ",SASL_PLAINTEXT://" + saslAddr
		props["advertised.listeners"] += ",SASL_PLAINTEXT://" + saslAddr
		props["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
		props["sasl.enabled.mechanisms"] = "PLAIN"
		props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = opts.plainJAAS
	}
	maps.Copy(props, opts.settings)
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&sb, "%s=%s\n", k, props[k])
	}
	propsFile := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(propsFile, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// A KRaft cluster id is 16 random bytes in unpadded URL-safe base64;
	// one starting with '-' would be read as an option, so, as Kafka's
	// Uuid.randomUuid does, draw again.
	var clusterID string
	for clusterID == "" || clusterID[0] == '-' {
		var id [16]byte
		rand.Read(id[:])
		clusterID = base64.RawURLEncoding.EncodeToString(id[:])
	}
	format := exec.Command(java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", cp,
		"kafka.tools.StorageTool", "format", "-t", clusterID, "-c", propsFile, "--standalone")
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("kafka StorageTool format: %v\n%s", err, out)
	}

	jvm := opts.jvmArgs
	if jvm == nil {
		jvm = kafkaFastStartJVM
	}
	args := append(slices.Clone(jvm), "-cp", cp, "kafka.Kafka", propsFile)
	cmd := exec.Command(java, args...)
	// Kafka's own logging is off (no SLF4J binding on the classpath);
	// what the JVM prints is kept for a failing test.
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kafka.Kafka: %v", err)
	}
	launched := time.Now()
	answered := make(chan time.Duration, 1)
	exited := make(chan struct{})
	go func() {
		if firstMetadataAnswer(addr, exited) {
			answered <- time.Since(launched)
		}
	}()
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stopping := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			// Its data is a temp dir: a clean shutdown is a courtesy.
			cmd.Process.Kill()
			<-exited
		}
		t.Logf("Apache Kafka stopped in %v", time.Since(stopping).Round(time.Millisecond))
		if t.Failed() {
			t.Logf("kafka.Kafka output:\n%s", out.String())
		}
	})

	ready := func() bool {
		select {
		case <-exited:
			t.Fatalf("kafka.Kafka exited during start-up:\n%s", out.String())
		default:
		}
		return kafkaReady(addr)
	}
	eventually(t, 3*time.Minute, "Apache Kafka to answer Metadata with a controller", ready)
	k := &kafkaBroker{addr: addr, saslAddr: saslAddr, startTime: time.Since(begin), pid: cmd.Process.Pid}
	// Ready implies a Metadata answer, so the poller is done or about to be.
	select {
	case k.firstAnswer = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatalf("Apache Kafka answered Metadata but the start-up poller saw no answer")
	}
	t.Logf("Apache Kafka on %s ready in %v (format included)", addr, k.startTime.Round(time.Millisecond))
	return k
}

// kafkaReady reports whether the broker at addr answers ApiVersions and
// names a controller that is a registered broker.
func kafkaReady(addr string) bool {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0),
		kgo.DialTimeout(time.Second), kgo.RetryTimeout(time.Second))
	if err != nil {
		return false
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl); err != nil {
		return false
	}
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil || md.ControllerID < 0 {
		return false
	}
	for _, b := range md.Brokers {
		if b.NodeID == md.ControllerID {
			return true
		}
	}
	return false
}

// freePorts finds n free loopback ports. Kafka binds them itself a moment
// later, so another process could take one in between; the listeners of
// every other test bind port 0, which makes that unlikely.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
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
