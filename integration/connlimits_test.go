package integration

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Connection limits (issue 16): max.connections, its per-listener form,
// max.connections.per.ip with overrides, the write deadline for clients
// that never read, and the frame clock that bounds slow-loris clients.

// dialFrom opens a TCP connection to addr from the loopback address
// local (Linux routes all of 127/8 to lo), so a test can be two clients.
func dialFrom(t *testing.T, local, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// served reports whether c answers an ApiVersions within wait. A false
// answer needs the wait to pass: it is the one place these tests wait a
// fixed time, to show that nothing happens.
func served(c net.Conn, wait time.Duration) bool {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(encodeRequest(req, 1)); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(wait))
	var size [4]byte
	_, err := io.ReadFull(c, size[:])
	return err == nil
}

// TestMaxConnectionsPerIPClosesExcess: past max.connections.per.ip the
// broker closes a new connection at once (Kafka's acceptor on
// TooManyConnectionsException); an override raises one address's limit;
// and a closed connection frees its slot.
func TestMaxConnectionsPerIPClosesExcess(t *testing.T) {
	b := startBroker(t, map[string]string{
		"max.connections.per.ip":           "2",
		"max.connections.per.ip.overrides": "127.0.0.2:4",
	})
	addr := b.Addr()
	var first []net.Conn
	for range 2 {
		c := dialFrom(t, "127.0.0.1", addr)
		if !served(c, 30*time.Second) {
			t.Fatal("a connection within max.connections.per.ip was not served")
		}
		first = append(first, c)
	}
	expectClosed(t, dialFrom(t, "127.0.0.1", addr))

	for i := range 4 {
		if c := dialFrom(t, "127.0.0.2", addr); !served(c, 30*time.Second) {
			t.Fatalf("connection %d from 127.0.0.2 (override 4) was not served", i+1)
		}
	}
	expectClosed(t, dialFrom(t, "127.0.0.2", addr))

	first[0].Close()
	eventually(t, 30*time.Second, "a freed per-ip slot to be usable", func() bool {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		return served(c, 10*time.Second)
	})
}

// TestMaxConnectionsWaitsForSlot: at max.connections (and at a listener's
// listener.name.<l>.max.connections) the broker stops accepting, as Kafka's
// acceptor blocks: the next connection is not served, nor closed, until
// one of the others closes.
func TestMaxConnectionsWaitsForSlot(t *testing.T) {
	for _, setting := range []string{"max.connections", "listener.name.plaintext.max.connections"} {
		t.Run(setting, func(t *testing.T) {
			const limit = 3
			b := startBroker(t, map[string]string{setting: strconv.Itoa(limit)})
			var open []net.Conn
			for range limit {
				c := dialRaw(t, b.Addr())
				if !served(c, 30*time.Second) {
					t.Fatal("a connection within the limit was not served")
				}
				open = append(open, c)
			}
			waiting := dialRaw(t, b.Addr()) // completes in the kernel's backlog
			if served(waiting, 300*time.Millisecond) {
				t.Fatalf("connection %d was served with %s=%d", limit+1, setting, limit)
			}
			open[0].Close()
			// The request written above is answered once a slot frees.
			waiting.SetReadDeadline(time.Now().Add(30 * time.Second))
			var size [4]byte
			if _, err := io.ReadFull(waiting, size[:]); err != nil {
				t.Fatalf("the waiting connection was not served after a slot freed: %v", err)
			}
		})
	}
}

// TestNeverReadingClientDropped: a client that sends fetches with large
// responses and never reads them is closed once the broker's writes have
// made no progress for connections.max.idle.ms, on the zero-copy
// (sendfile) path. Before the write deadline it held its connection, its
// goroutines and its pending responses for ever.
func TestNeverReadingClientDropped(t *testing.T) {
	b := startBroker(t, map[string]string{"connections.max.idle.ms": "500"})
	const topic = "never-read"
	cl := newClient(t, b.Addr(), kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	createTopic(t, kadm.NewClient(cl), topic, 1, nil)
	value := bytes.Repeat([]byte("x"), 512<<10)
	for range 16 { // 8 MiB: each fetch's response is far above the socket buffers
		produceSync(t, cl, &kgo.Record{Topic: topic, Value: value})
	}
	// Only the hostile connection is open from here on, so the broker's
	// connection count is whether it still holds it.
	cl.Close()
	eventually(t, 30*time.Second, "the producer's connections to close", func() bool { return b.Stats().Connections == 0 })
	const baseline = 0

	c := dialRaw(t, b.Addr())
	c.SetReadBuffer(4 << 10)
	for i := range 8 {
		sendRaw(t, c, encodeRequest(hugeFetch(topic, 0), int32(i)))
	}
	eventually(t, 30*time.Second, "the broker to take the never-reading connection", func() bool {
		return b.Stats().Connections > baseline
	})
	eventually(t, 30*time.Second, "the broker to drop the client that never reads", func() bool {
		return b.Stats().Connections <= baseline
	})
	produceSync(t, newClient(t, b.Addr()), &kgo.Record{Topic: topic, Value: []byte("after")})
}

// TestSlowLorisFrameBoundedByIdle: a client that sends a frame one byte at
// a time, each byte well within connections.max.idle.ms of the last, is
// closed once the frame has taken longer than that. Before, every byte
// moved the idle deadline on, and the frame could take as long as the
// client liked.
func TestSlowLorisFrameBoundedByIdle(t *testing.T) {
	const idle = 500 * time.Millisecond
	b := startBroker(t, map[string]string{"connections.max.idle.ms": strconv.Itoa(int(idle / time.Millisecond))})
	c := dialRaw(t, b.Addr())
	frame := encodeRequest(kmsg.NewPtrMetadataRequest(), 1)
	frame = append(frame, make([]byte, 1000)...) // padding: 1,000 more bytes
	frame[0], frame[1], frame[2], frame[3] = 0, 0, byte((len(frame)-4)>>8), byte(len(frame)-4)

	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(idle / 5)
		defer tick.Stop()
		for _, bt := range frame {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{bt}); err != nil {
				return
			}
		}
	}()
	// A whole frame at this pace takes over 20 s; the broker must close
	// the connection long before.
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("slow-loris connection: read %v after %v, want it closed by the broker", err, time.Since(start))
	}
	t.Logf("slow-loris frame closed after %v (connections.max.idle.ms %v)", time.Since(start).Round(time.Millisecond), idle)
}
