package integration

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// Slow and idle clients (issue 9, findings 2 and 10): connections that stall
// are closed after connections.max.idle.ms, the bytes held by partly read
// frames are bounded by queued.max.request.bytes, and an accept loop that
// runs out of file descriptors carries on once they are free again.

// TestIdleConnectionsClosed: with connections.max.idle.ms small, 1,000
// connections that send 3 bytes of a frame and stall are all closed by the
// broker (Kafka's idle expiry), as is one that sent a whole request and
// then went quiet; a long-poll fetch that waits longer than the idle time
// is answered, not cut; and a normal client still works.
func TestIdleConnectionsClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	b := startBroker(t, map[string]string{"connections.max.idle.ms": strconv.Itoa(int(idle / time.Millisecond))})
	h := newHealthyClients(t, b.Addr())

	conns := make([]net.Conn, 1000)
	connected := time.Now()
	for i := range conns {
		conns[i] = dialRaw(t, b.Addr())
		sendRaw(t, conns[i], []byte{0, 0, 1}) // 3 of the 4 size bytes
	}
	quiet := dialRaw(t, b.Addr())
	roundTrip(t, quiet, kmsg.NewPtrApiVersionsRequest(), 1)

	// A fetch parked for four idle periods on an empty partition keeps its
	// connection busy: the broker must answer it, not close it.
	createTopic(t, h.adm, "idle-longpoll", 1, nil)
	poller := dialRaw(t, b.Addr())
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 12
	fetch.MaxWaitMillis = int32(4 * idle / time.Millisecond)
	fetch.MinBytes, fetch.MaxBytes, fetch.SessionEpoch = 1, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "idle-longpoll"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	start := time.Now()
	resp := roundTrip(t, poller, fetch, 2).(*kmsg.FetchResponse)
	if waited := time.Since(start); waited < idle {
		t.Fatalf("the long poll was answered after %v, before the idle time %v: it did not park, the test proves nothing", waited, idle)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("long poll: %v", err)
	}

	for _, c := range conns {
		expectClosed(t, c)
	}
	expectClosed(t, quiet)
	t.Logf("1,000 stalled connections all closed within %v of the first connecting (connections.max.idle.ms %v)", time.Since(connected), idle)
	h.check(t)
}

// TestSlowClientConfigsDescribed: connections.max.idle.ms and
// queued.max.request.bytes are broker configs like the others: accepted in
// the settings and listed by DescribeConfigs, with their source.
func TestSlowClientConfigsDescribed(t *testing.T) {
	b := startBroker(t, map[string]string{"connections.max.idle.ms": "120000"})
	adm := newAdmin(t, b.Addr())
	rcs, err := adm.DescribeBrokerConfigs(testContext(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("0", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe broker 0: %v %v", err, rc.Err)
	}
	want := map[string]struct {
		value  string
		source kmsg.ConfigSource
	}{
		"connections.max.idle.ms":  {"120000", kmsg.ConfigSourceStaticBrokerConfig},
		"queued.max.request.bytes": {"268435456", kmsg.ConfigSourceDefaultConfig},
	}
	for _, c := range rc.Configs {
		w, ok := want[c.Key]
		if !ok {
			continue
		}
		delete(want, c.Key)
		if c.Value == nil || *c.Value != w.value || c.Source != w.source {
			t.Errorf("%s = %v (source %v), want %s (source %v)", c.Key, c.MaybeValue(), c.Source, w.value, w.source)
		}
	}
	for name := range want {
		t.Errorf("%s missing from the broker's configs", name)
	}
}

// TestSlowClientsMemoryBounded: 200 connections that claim 100 MiB frames
// and send 2 MiB of each make a real skiff process hold at most about
// queued.max.request.bytes of them; the rest wait unread (muted) rather
// than being closed. After they go away, produce and consume work.
func TestSlowClientsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the skiff binary")
	}
	const (
		conns    = 200
		claim    = 100 << 20 // socket.request.max.bytes' default
		sent     = 2 << 20
		queueMax = claim // the smallest pool Kafka allows
	)
	bin := buildSkiff(t)
	p := startSkiff(t, bin, t.TempDir(), "queued.max.request.bytes="+strconv.Itoa(queueMax))
	pid := p.cmd.Process.Pid
	h := newHealthyClients(t, p.addr)
	baseline := procStatusKB(t, pid, "VmRSS") << 10
	read0 := procIOBytes(t, pid, "rchar")

	var wg sync.WaitGroup
	attackers := make([]net.Conn, conns)
	frame := make([]byte, 4+sent)
	binary.BigEndian.PutUint32(frame, claim)
	for i := range attackers {
		c := dialRaw(t, p.addr)
		attackers[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A muted broker leaves the rest in the socket buffers; a
			// write that cannot finish is expected, not an error.
			c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			c.Write(frame)
		}()
	}
	wg.Wait()
	// The broker has read what it will once it has read a good part of
	// the pool's worth (a muted connection holds a reserved piece it has
	// not filled, so less than all of it) and its reads have stopped.
	eventually(t, 60*time.Second, "the broker to read half the pool's worth", func() bool {
		return procIOBytes(t, pid, "rchar")-read0 >= queueMax/2
	})
	last, still := int64(-1), 0
	eventually(t, 60*time.Second, "the broker's reads to stop", func() bool {
		now := procIOBytes(t, pid, "rchar")
		if now == last {
			still++
		} else {
			last, still = now, 0
		}
		return still >= 50 // 0.5 s without a byte read
	})
	hwm := procStatusKB(t, pid, "VmHWM") << 10
	// Bound: the pool, plus the one frame allowed past it (2 MiB received
	// and a piece of at most 1 MiB ahead), plus per connection the 64 KiB
	// read and write buffers, a piece's rounding and goroutine stacks
	// (256 KiB, generously); the Go heap may grow to twice what is live
	// (GOGC=100) before it collects; plus the RSS measured before the
	// attack.
	perConn := int64(256 << 10)
	bound := baseline + 2*(queueMax+sent+1<<20+conns*perConn)
	t.Logf("VmHWM %d MiB with %d connections each holding 2 MiB of a 100 MiB frame; baseline RSS %d MiB, bound %d MiB, read %d MiB",
		hwm>>20, conns, baseline>>20, bound>>20, (last-read0)>>20)
	if hwm > bound {
		t.Fatalf("VmHWM %d MiB exceeds %d MiB: partly read frames are not bounded by queued.max.request.bytes", hwm>>20, bound>>20)
	}
	for _, c := range attackers {
		c.Close()
	}
	h.check(t)
}

// TestAcceptSurvivesTooManyOpenFiles: when a real skiff process runs out of
// file descriptors, accept fails with EMFILE. Kafka's acceptor logs and
// carries on; Skiff used to end its accept loop, leaving clients hanging in
// the backlog for good. Once the connections holding the descriptors close,
// a new client must be served, the error must have been logged once, not
// per retry, and produce/consume must work.
func TestAcceptSurvivesTooManyOpenFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the skiff binary")
	}
	bin := buildSkiff(t)
	p := startSkiff(t, bin, t.TempDir())
	pid := p.cmd.Process.Pid
	h := newHealthyClients(t, p.addr)

	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	low := unix.Rlimit{Cur: uint64(len(fds) + 16), Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &low, nil); err != nil {
		t.Skipf("cannot lower skiff's RLIMIT_NOFILE: %v", err)
	}

	// Open connections until accept fails: the kernel completes the
	// handshakes either way, so the broker's log tells when it did.
	var held []net.Conn
	eventually(t, 30*time.Second, "accept to fail with too many open files", func() bool {
		held = append(held, dialRaw(t, p.addr))
		return p.logged("error", "accept failed")
	})
	// Clients now queue in the backlog; give the loop some failed retries
	// to (not) log, then free the descriptors.
	for range 8 {
		held = append(held, dialRaw(t, p.addr))
	}
	released := time.Now()
	for _, c := range held {
		c.Close()
	}
	// A new client, queued behind the closed ones: it is answered once
	// the accept loop retries after descriptors are free.
	c := dialRaw(t, p.addr)
	roundTrip(t, c, kmsg.NewPtrApiVersionsRequest(), 1)
	t.Logf("a new client was served %v after %d connections holding descriptors closed", time.Since(released), len(held))

	if n := p.countLogged("error", "accept failed"); n != 1 {
		t.Fatalf("the accept error was logged %d times; want once per episode", n)
	}
	// The round trip makes a topic (segment files) and new connections:
	// give the process its descriptors back first.
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
		t.Fatal(err)
	}
	h.check(t)
}

// countLogged is how many log lines at level contain substr.
func (p *skiffProcess) countLogged(level, substr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, line := range p.logs {
		if strings.Contains(line, `"level":"`+level+`"`) && strings.Contains(strings.ToLower(line), strings.ToLower(substr)) {
			n++
		}
	}
	return n
}

// procStatusKB reads a "Name: N kB" line of /proc/<pid>/status.
func procStatusKB(t testing.TB, pid int, name string) int64 {
	t.Helper()
	return procField(t, fmt.Sprintf("/proc/%d/status", pid), name)
}

// procIOBytes reads a counter of /proc/<pid>/io.
func procIOBytes(t *testing.T, pid int, name string) int64 {
	t.Helper()
	return procField(t, fmt.Sprintf("/proc/%d/io", pid), name)
}

func procField(t testing.TB, path, name string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != name {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		return n
	}
	t.Fatalf("%s has no %s", path, name)
	return 0
}

// TestRequestMemoryLargeFramesDoNotDeadlock: with the smallest pool Kafka
// allows (queued.max.request.bytes = socket.request.max.bytes), produce
// requests that arrive in halves fill the pool with partly read frames.
// When their second halves come, every one must complete: a frame muted in
// the middle must not wait for memory that only other muted frames hold.
func TestRequestMemoryLargeFramesDoNotDeadlock(t *testing.T) {
	const limit = 1 << 20
	b := startBroker(t, map[string]string{
		"socket.request.max.bytes": strconv.Itoa(limit),
		"queued.max.request.bytes": strconv.Itoa(limit),
	})
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "big-frames", 1, nil)
	const producers = 8
	frame := encodeRequest(produceV9("big-frames", 0, recordBatch(strings.Repeat("v", 600<<10))), 7)
	half := len(frame) / 2
	conns := make([]net.Conn, producers)
	for i := range conns {
		conns[i] = dialRaw(t, b.Addr())
		sendRaw(t, conns[i], frame[:half])
	}
	eventually(t, 30*time.Second, "partly read frames to use up the pool", func() bool {
		return b.Stats().QueuedRequestBytes >= limit
	})
	for _, c := range conns {
		sendRaw(t, c, frame[half:])
	}
	for i, c := range conns {
		corr, rest := readResponse(t, c)
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 9
		if rest, err := skipTagSection(rest); err != nil || corr != 7 || resp.ReadFrom(rest) != nil {
			t.Fatalf("producer %d: bad response (correlation id %d, %v)", i, corr, err)
		}
		if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
			t.Fatalf("producer %d: %v", i, err)
		}
	}
	if n := endOffset(t, adm, "big-frames", 0); n != producers {
		t.Fatalf("end offset %d, want %d", n, producers)
	}
}
