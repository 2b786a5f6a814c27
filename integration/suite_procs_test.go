package integration

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The brokers `make bench` compares, each a process of its own so that
// its CPU time (user+sys) and memory (VmRSS, VmHWM) can be read from
// /proc: Apache Kafka's JVM, kfake in integration/kfakeproc, and the real
// skiff binary, durable and in page-cache mode.

// suiteBroker is one broker process under measurement.
type suiteBroker struct {
	name    string
	about   string
	addr    string
	pid     int
	http    string        // Skiff's metrics and pprof listener
	startup time.Duration // exec to the first Metadata answer
	idleRSS int64         // bytes, right after start-up settles
}

// pageCacheOverride turns Skiff's per-append group commit off, as Kafka's
// default (log.flush.interval.messages unset) leaves flushing to the OS.
var pageCacheOverride = "log.flush.interval.messages=" + strconv.FormatInt(1<<63-1, 10)

// startSuiteSkiff runs the skiff binary on a fresh data dir, listening on
// a port chosen up front so that start-up can be timed from the exec to
// the first Metadata answer.
func startSuiteSkiff(b *testing.B, bin, name, about string, overrides ...string) *suiteBroker {
	b.Helper()
	port := freePorts(b, 1)[0]
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	stop := make(chan struct{})
	defer close(stop)
	answered := make(chan time.Duration, 1)
	begin := time.Now()
	go func() {
		if firstMetadataAnswer(addr, stop) {
			answered <- time.Since(begin)
		}
	}()
	// info-level logs only: the hot paths log nothing per request.
	p := startSkiff(b, bin, b.TempDir(), append([]string{"--listen=" + addr, "--pprof"}, overrides...)...)
	sb := &suiteBroker{name: name, about: about, addr: p.addr, pid: p.cmd.Process.Pid, http: p.httpAddr}
	select {
	case sb.startup = <-answered:
	case <-time.After(30 * time.Second):
		b.Fatalf("%s logged its start but answered no Metadata within 30s", name)
	}
	if p.httpAddr != "" {
		// At once, not at the end as b.Logf would: profiles are taken
		// while the bench runs.
		fmt.Fprintf(os.Stderr, "bench: %s pprof on http://%s/debug/pprof/\n", name, p.httpAddr)
	}
	sb.idleRSS = settledRSS(b, sb.pid)
	return sb
}

// startSuiteKfake runs kfake in its own process (integration/kfakeproc).
func startSuiteKfake(b *testing.B, bin string) *suiteBroker {
	b.Helper()
	port := freePorts(b, 1)[0]
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	stop := make(chan struct{})
	defer close(stop)
	answered := make(chan time.Duration, 1)
	begin := time.Now()
	go func() {
		if firstMetadataAnswer(addr, stop) {
			answered <- time.Since(begin)
		}
	}()
	cmd := exec.Command(bin, "-listen", addr)
	stdin, err := cmd.StdinPipe() // closing it stops kfakeproc
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting kfakeproc: %v", err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		b.Fatalf("kfakeproc did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	sb := &suiteBroker{name: "kfake", about: "franz-go kfake, in memory, own process", addr: addr, pid: cmd.Process.Pid}
	select {
	case sb.startup = <-answered:
	case <-time.After(30 * time.Second):
		b.Fatal("kfake printed ready but answered no Metadata within 30s")
	}
	sb.idleRSS = settledRSS(b, sb.pid)
	return sb
}

// startSuiteKafka runs Apache Kafka 4.1 with its default settings and the
// JVM flags of its own start script.
func startSuiteKafka(b *testing.B) *suiteBroker {
	b.Helper()
	k := startKafka(b, kafkaOptions{jvmArgs: kafkaScriptJVM})
	sb := &suiteBroker{name: "kafka", about: "Apache Kafka 4.1.2, default settings, its start script's JVM flags",
		addr: k.addr, pid: k.pid, startup: k.firstAnswer}
	sb.idleRSS = settledRSS(b, sb.pid)
	return sb
}

// firstMetadataAnswer polls addr with a Metadata request over a fresh
// connection every 200µs until one is answered (true) or stop closes.
func firstMetadataAnswer(addr string, stop <-chan struct{}) bool {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	frame := encodeRequest(req, 1)
	for {
		select {
		case <-stop:
			return false
		default:
		}
		if metadataAnswered(addr, frame) {
			return true
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func metadataAnswered(addr string, frame []byte) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(frame); err != nil {
		return false
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return false
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return false
	}
	_, err = io.CopyN(io.Discard, c, int64(n))
	return err == nil
}

// settledRSS is a process's resident memory once start-up work is over:
// read after a second of idleness, the one pause the suite takes.
func settledRSS(b *testing.B, pid int) int64 {
	b.Helper()
	time.Sleep(time.Second)
	return procStatusKB(b, pid, "VmRSS") << 10
}

// procCPU is the user+sys CPU time the process has used so far.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		b.Fatalf("reading CPU time of pid %d: %v", pid, err)
	}
	// The command name (field 2) may hold spaces: count fields after ')'.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		b.Fatalf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: utime %q stime %q", pid, fields[11], fields[12])
	}
	// Clock ticks are USER_HZ, which Linux fixes at 100 for user space.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// resetPeakRSS starts VmHWM afresh from the current RSS (Linux 4.0+).
func resetPeakRSS(b *testing.B, pid int) {
	b.Helper()
	if err := os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0); err != nil {
		b.Fatalf("resetting VmHWM of pid %d: %v", pid, err)
	}
}
