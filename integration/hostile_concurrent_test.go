package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Issue 16, acceptance 5: hostile clients, all at once, against a real
// skiff process. A flood of connections past a listener's max.connections,
// 1,000 slow-loris frames sent a byte at a time, 1,000 clients that send
// fetches with large responses and never read them, SASL garbage, and TLS
// handshakes that stop halfway. Throughout and afterwards a normal client
// produces and consumes, the broker's descriptors stay within its own
// files plus the hostile connections its limits admit at once
// (hostileAdmitted) and fall back afterwards, and its peak RSS stays
// within hostileRSSLimit. These are the bounds the README states.

const (
	hostileIdle        = 2 * time.Second // connections.max.idle.ms
	hostileMaxConns    = 3000            // max.connections
	hostileFloodLimit  = 200             // listener.name.flood.max.connections
	hostileFloodConns  = 400
	hostileLorisConns  = 1000
	hostileNoReadConns = 1000
	hostileSASLConns   = 200
	hostileTLSConns    = 200
	// hostileAdmitted is the most hostile connections the broker can hold
	// at once: the FLOOD listener's limit (the rest of the flood waits in
	// the kernel's backlog) and every connection of the other kinds.
	hostileAdmitted = hostileFloodLimit + hostileLorisConns + hostileNoReadConns + hostileSASLConns + hostileTLSConns
	// hostileFDSlack is what the broker may open besides the descriptors
	// it held before and the hostile connections: the healthy clients'
	// connections and any segment or index file they make it open.
	hostileFDSlack = 50
	// hostileRSSLimit bounds the broker's peak RSS through the whole test.
	hostileRSSLimit = 256 << 20
)

// skiffListeners reads each listener's bound address from the "skiff
// started" line.
func skiffListeners(t *testing.T, p *skiffProcess) map[string]string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range p.logs {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["message"] != "skiff started" {
			continue
		}
		out := map[string]string{}
		s, _ := m["listeners"].(string)
		for _, item := range strings.Split(s, ",") {
			if name, addr, ok := strings.Cut(item, "="); ok {
				out[name] = addr
			}
		}
		return out
	}
	t.Fatal("no \"skiff started\" line")
	return nil
}

// openFDs counts the descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("reading the broker's descriptors: %v", err)
	}
	return len(ents)
}

// closedByBroker reads c until the broker closes it, ignoring what it
// sends first (an error response, say), within 30 s.
func closedByBroker(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			return nil
		default:
			return err
		}
	}
}

func TestHostileClientsConcurrently(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc for the broker's RSS and descriptors")
	}
	started := time.Now()
	pki := newTestPKI(t)
	bin := buildSkiff(t)
	settings := []string{
		"--listeners=CLIENT://127.0.0.1:0,FLOOD://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
		"listener.security.protocol.map=CLIENT:PLAINTEXT,FLOOD:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL",
		"ssl.keystore.type=PEM", "ssl.keystore.location=" + pki.serverFile,
		"ssl.truststore.type=PEM", "ssl.truststore.location=" + pki.caFile,
		"listener.name.ssl.ssl.client.auth=required",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
		`listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";`,
		"connections.max.idle.ms=" + strconv.Itoa(int(hostileIdle/time.Millisecond)),
		"max.connections=" + strconv.Itoa(hostileMaxConns),
		"listener.name.flood.max.connections=" + strconv.Itoa(hostileFloodLimit),
		"group.initial.rebalance.delay.ms=0",
	}
	p := startSkiff(t, bin, t.TempDir(), settings...)
	pid := p.cmd.Process.Pid
	addrs := skiffListeners(t, p)
	client := addrs["CLIENT"]
	const topic = "hostile-big"
	h := newHealthyClients(t, client)
	createTopic(t, h.adm, topic, 1, nil)
	big := newClient(t, client, kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := bytes.Repeat([]byte("h"), 512<<10)
	for range 16 { // 8 MiB: a fetch of it is far above any socket buffer
		produceSync(t, big, &kgo.Record{Topic: topic, Value: value})
	}
	baseFDs := openFDs(t, pid)
	t.Logf("set up in %v: broker holds %d descriptors, VmHWM %d MB", time.Since(started).Round(time.Millisecond), baseFDs, vmHWM(t, p)>>20)

	// The sampler records the most descriptors the broker held.
	var maxFDs atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil && int64(len(ents)) > maxFDs.Load() {
				maxFDs.Store(int64(len(ents)))
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Errorf(format, args...):
		default:
		}
	}
	dial := func(addr string) (*net.TCPConn, error) {
		c, err := net.DialTimeout("tcp", addr, 30*time.Second)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.TCPConn), nil
	}

	// Flood: twice the FLOOD listener's limit, each sending ApiVersions
	// and never reading. Those past the limit wait in the backlog until
	// idle expiry frees slots.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range hostileFloodConns {
			c, err := dial(addrs["FLOOD"])
			if err != nil {
				fail("flood connection %d: %v", i, err)
				return
			}
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version = 0
			c.Write(encodeRequest(req, 1))
		}
	}()

	// Slow loris: 1,000 frames, one byte each per tenth of the idle time,
	// all driven from one goroutine. Each must be closed by the broker.
	wg.Add(1)
	go func() {
		defer wg.Done()
		frame := encodeRequest(kmsg.NewPtrMetadataRequest(), 1)
		frame = append(frame, make([]byte, 4000)...)
		frame[0], frame[1], frame[2], frame[3] = 0, 0, byte((len(frame)-4)>>8), byte(len(frame)-4)
		conns := make([]net.Conn, 0, hostileLorisConns)
		for i := range hostileLorisConns {
			c, err := dial(client)
			if err != nil {
				fail("slow-loris connection %d: %v", i, err)
				return
			}
			conns = append(conns, c)
		}
		tick := time.NewTicker(hostileIdle / 10)
		defer tick.Stop()
		deadline := time.Now().Add(30 * time.Second)
		for pos := 0; len(conns) > 0; pos++ {
			if pos >= len(frame) || time.Now().After(deadline) {
				fail("%d slow-loris connections still open after %d bytes each", len(conns), pos)
				return
			}
			open := conns[:0]
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(frame[pos : pos+1]); err == nil {
					open = append(open, c)
				}
			}
			conns = open
			<-tick.C
		}
	}()

	// Never read: 1,000 clients, each asking for the 8 MiB partition four
	// times and reading nothing. They stay open on this side; the broker
	// must let go of them (checked through its descriptor count below).
	wg.Add(1)
	go func() {
		defer wg.Done()
		req := encodeRequest(hugeFetch(topic, 0), 1)
		for i := range hostileNoReadConns {
			c, err := dial(client)
			if err != nil {
				fail("never-read connection %d: %v", i, err)
				return
			}
			c.SetReadBuffer(4 << 10)
			for range 4 {
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(req); err != nil {
					break // the broker may already have dropped it
				}
			}
		}
	}()

	// SASL garbage on the SASL_PLAINTEXT listener: a handshake then random
	// authentication bytes, a random frame, or a request before
	// authenticating. Each must end with the broker closing.
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(16, 5))
		var inner sync.WaitGroup
		for i := range hostileSASLConns {
			c, err := dial(addrs["SASL_PLAINTEXT"])
			if err != nil {
				fail("sasl connection %d: %v", i, err)
				return
			}
			garbage := make([]byte, 1+rng.IntN(512))
			for j := range garbage {
				garbage[j] = byte(rng.Uint32())
			}
			var out []byte
			switch i % 3 {
			case 0:
				hs := kmsg.NewPtrSASLHandshakeRequest()
				hs.Version, hs.Mechanism = 1, "PLAIN"
				auth := kmsg.NewPtrSASLAuthenticateRequest()
				auth.Version, auth.SASLAuthBytes = 2, garbage
				out = append(encodeRequest(hs, 1), encodeRequest(auth, 2)...)
			case 1:
				out = rawFrame(int16(kmsg.SASLAuthenticate), 2, 1, garbage)
			case 2:
				out = encodeRequest(kmsg.NewPtrMetadataRequest(), 1)
			}
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			c.Write(out)
			inner.Add(1)
			go func() {
				defer inner.Done()
				if err := closedByBroker(c); err != nil {
					fail("sasl garbage connection %d (case %d): %v", i, i%3, err)
				}
			}()
		}
		inner.Wait()
	}()

	// TLS handshakes that stop halfway: the start of a ClientHello record,
	// then nothing. The broker gives up after the handshake timeout (the
	// idle time, here).
	wg.Add(1)
	go func() {
		defer wg.Done()
		hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
		var inner sync.WaitGroup
		for i := range hostileTLSConns {
			c, err := dial(addrs["SSL"])
			if err != nil {
				fail("tls connection %d: %v", i, err)
				return
			}
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			c.Write(hello[:1+i%len(hello)])
			inner.Add(1)
			go func() {
				defer inner.Done()
				if err := closedByBroker(c); err != nil {
					fail("half tls handshake %d: %v", i, err)
				}
			}()
		}
		inner.Wait()
	}()

	// A normal client, during.
	h.check(t)
	duringFDs := openFDs(t, pid)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	// Every hostile connection idles out or is dropped; the never-read
	// and flood sockets are still open on this side, so the broker's
	// count falling back shows it let go of them.
	eventually(t, 60*time.Second, "the broker to let go of every hostile connection", func() bool {
		return openFDs(t, pid) <= baseFDs+10
	})
	close(stopSampling)
	<-sampled
	// A normal client, after; and a fresh connection on the flood
	// listener is served again.
	h.check(t)
	if c := dialRaw(t, addrs["FLOOD"]); !served(c, 30*time.Second) {
		t.Fatal("the FLOOD listener does not serve a new connection after the flood")
	}

	hwm := vmHWM(t, p)
	peak := maxFDs.Load()
	t.Logf("broker: descriptors %d before, %d during (sampled), peak %d, %d after; VmHWM %d MB; total %v",
		baseFDs, duringFDs, peak, openFDs(t, pid), hwm>>20, time.Since(started).Round(time.Millisecond))
	if limit := int64(baseFDs + hostileAdmitted + hostileFDSlack); peak > limit {
		t.Errorf("broker held %d descriptors at peak, want at most %d (%d before + %d hostile connections admitted + %d)",
			peak, limit, baseFDs, hostileAdmitted, hostileFDSlack)
	}
	if hwm > hostileRSSLimit {
		t.Errorf("broker peak RSS %d MB, want at most %d MB", hwm>>20, hostileRSSLimit>>20)
	}
}
