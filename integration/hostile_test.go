package integration

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Hostile input over raw TCP: every case checks that the hostile connection
// gets Kafka's answer (an error code, or the connection closed without a
// reply) and that a well-behaved franz-go client on another connection is
// still served afterwards. The embedded server runs in this process, so a
// panic anywhere in the broker fails the test binary.

// hostileMaxRequest is socket.request.max.bytes for the hostile brokers:
// small, so that the boundary is cheap to probe.
const hostileMaxRequest = 1 << 20

const hostileClientID = "hostile"

// healthyClients are well-behaved clients, connected before the hostile
// exchanges and used after each one to show the broker still serves.
type healthyClients struct {
	addr     string
	adm      *kadm.Client
	producer *kgo.Client
	n        atomic.Int32
}

func newHealthyClients(t *testing.T, addr string) *healthyClients {
	h := &healthyClients{addr: addr, adm: newAdmin(t, addr), producer: newClient(t, addr, kgo.ProducerLinger(0))}
	h.check(t) // connect now, so the clients predate the hostile input
	return h
}

// check creates a topic, produces a record and reads it back with a fresh
// consumer.
func (h *healthyClients) check(t *testing.T) {
	t.Helper()
	topic := fmt.Sprintf("healthy-%d", h.n.Add(1))
	createTopic(t, h.adm, topic, 1, nil)
	value := []byte("still serving " + topic)
	produceSync(t, h.producer, &kgo.Record{Topic: topic, Value: value})
	got := consumeN(t, h.addr, topic, 1)
	if !bytes.Equal(got[0].Value, value) {
		t.Fatalf("healthy client read %q from %s, want %q", got[0].Value, topic, value)
	}
}

// dialRaw opens a plain TCP connection to the broker.
func dialRaw(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// sendRaw writes b. The broker may close the connection before everything
// is written, which is then the very answer the test waits for, so a reset
// or broken pipe is not an error here.
func sendRaw(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write: %v", err)
	}
}

// expectClosed asserts that the broker closes c without sending anything.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	got := 0
	for {
		n, err := c.Read(buf)
		got += n
		if err == nil {
			continue
		}
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			if got > 0 {
				t.Fatalf("broker sent %d bytes before closing; want the connection closed without an answer", got)
			}
			return
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("connection still open 10s after hostile input (%d bytes received); want it closed", got)
		default:
			t.Fatalf("reading from the hostile connection: %v", err)
		}
	}
}

// rawFrame builds a request frame from a raw header and body: size, api
// key, version, correlation id, client id (header v1), then body as is.
func rawFrame(key, version int16, correlationID int32, body []byte) []byte {
	b := make([]byte, 4, 14+len(hostileClientID)+len(body))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(hostileClientID)))
	b = append(b, hostileClientID...)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// encodeRequest builds the frame a client sends for req at its version:
// header v2 (with an empty tag section) for flexible versions, v1 otherwise.
func encodeRequest(req kmsg.Request, correlationID int32) []byte {
	var body []byte
	if req.IsFlexible() {
		body = append(body, 0)
	}
	body = req.AppendTo(body)
	return rawFrame(req.Key(), req.GetVersion(), correlationID, body)
}

// readResponse reads one response frame and returns its correlation id and
// the rest (response header tags, if any, and body).
func readResponse(t *testing.T, c net.Conn) (int32, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("reading response size: %v", err)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 64<<20 {
		t.Fatalf("response size %d out of range", n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c, frame); err != nil {
		t.Fatalf("reading %d-byte response: %v", n, err)
	}
	return int32(binary.BigEndian.Uint32(frame)), frame[4:]
}

// roundTrip sends req and decodes its response, which must carry the same
// correlation id.
func roundTrip(t *testing.T, c net.Conn, req kmsg.Request, correlationID int32) kmsg.Response {
	t.Helper()
	sendRaw(t, c, encodeRequest(req, correlationID))
	corr, rest := readResponse(t, c)
	if corr != correlationID {
		t.Fatalf("response correlation id %d, want %d", corr, correlationID)
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		// Response header v1: a tagged-field section follows the id.
		var err error
		if rest, err = skipTagSection(rest); err != nil {
			t.Fatalf("response header: %v", err)
		}
	}
	if err := resp.ReadFrom(rest); err != nil {
		t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

func skipTagSection(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[n:]
	for range count {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, errors.New("bad tag size")
		}
		b = b[n+int(size):]
	}
	return b, nil
}

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// recordBatch encodes an uncompressed magic-2 record batch holding values,
// with a correct length and CRC32C.
func recordBatch(values ...string) []byte {
	now := time.Now().UnixMilli()
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		// Length counts what follows it; measure with a one-byte zero.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(values)),
		Records:              records,
	}
	b.Length = int32(49 + len(records)) // header after the length field
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoliTable))
	return raw
}

// produceV9 builds a Produce v9 request (flexible, by topic name) of one
// partition.
func produceV9(topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func endOffset(t *testing.T, adm *kadm.Client, topic string, partition int32) int64 {
	t.Helper()
	offs, err := adm.ListEndOffsets(testContext(t), topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s/%d: %v", topic, partition, o.Err)
	}
	return o.Offset
}

// TestHostileFraming sends malformed frames and requests the broker cannot
// serve; each must close the connection without an answer.
func TestHostileFraming(t *testing.T) {
	b := startBroker(t, map[string]string{"socket.request.max.bytes": fmt.Sprint(hostileMaxRequest)})
	h := newHealthyClients(t, b.Addr())

	size := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	metadata := kmsg.NewPtrMetadataRequest()
	metadata.Version = 12
	metadata.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("some-topic")}}
	metadataFrame := encodeRequest(metadata, 7)

	for _, tc := range []struct {
		name string
		send func(t *testing.T, c *net.TCPConn)
	}{
		{"prefix 0x7fffffff", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, append(size(0x7fffffff), make([]byte, 64)...))
		}},
		{"prefix one past socket.request.max.bytes", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, append(size(hostileMaxRequest+1), make([]byte, 64)...))
		}},
		{"negative prefix -1", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, append(size(0xffffffff), make([]byte, 64)...))
		}},
		{"negative prefix min int32", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, append(size(0x80000000), make([]byte, 64)...))
		}},
		{"zero prefix", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, size(0))
		}},
		{"six-byte frame", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, append(size(6), 0, 3, 0, 12, 0, 0))
		}},
		{"nine-byte frame, header cut in the client id", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, append(size(9), 0, 18, 0, 0, 0, 0, 0, 1, 0))
		}},
		{"truncated header then half close", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, append(size(20), 0, 18, 0, 3, 0))
			c.CloseWrite()
		}},
		{"truncated size prefix then half close", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, []byte{0, 0})
			c.CloseWrite()
		}},
		{"client id longer than the frame", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, append(size(12), 0, 18, 0, 0, 0, 0, 0, 1, 0, 100, 'a', 'b'))
		}},
		{"client id length -2", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, append(size(12), 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xfe, 0, 0))
		}},
		{"unknown api key 9999", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, rawFrame(9999, 0, 1, nil))
		}},
		{"negative api key", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, rawFrame(-1, 0, 1, nil))
		}},
		{"metadata v99", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, rawFrame(int16(kmsg.Metadata), 99, 1, []byte{0, 0}))
		}},
		{"metadata v-1", func(t *testing.T, c *net.TCPConn) {
			sendRaw(t, c, rawFrame(int16(kmsg.Metadata), -1, 1, nil))
		}},
		{"produce v2 (KIP-896)", func(t *testing.T, c *net.TCPConn) {
			req := produceV9("healthy-1", 0, nil)
			req.Version = 2
			sendRaw(t, c, encodeRequest(req, 1))
		}},
		{"produce v0 (KIP-896)", func(t *testing.T, c *net.TCPConn) {
			req := produceV9("healthy-1", 0, nil)
			req.Version = 0
			sendRaw(t, c, encodeRequest(req, 1))
		}},
		{"truncated metadata body", func(t *testing.T, c *net.TCPConn) {
			f := bytes.Clone(metadataFrame[:len(metadataFrame)-3])
			binary.BigEndian.PutUint32(f, uint32(len(f)-4))
			sendRaw(t, c, f)
		}},
		{"truncated produce body", func(t *testing.T, c *net.TCPConn) {
			f := encodeRequest(produceV9("healthy-1", 0, recordBatch("a", "b")), 1)
			f = f[:len(f)-40]
			binary.BigEndian.PutUint32(f, uint32(len(f)-4))
			sendRaw(t, c, f)
		}},
		{"header tag section overruns the frame", func(t *testing.T, c *net.TCPConn) {
			// Flexible Metadata: one header tag claiming 100 bytes.
			body := append([]byte{1, 0, 100}, metadata.AppendTo(nil)...)
			sendRaw(t, c, rawFrame(int16(kmsg.Metadata), 12, 1, body))
		}},
		{"metadata topic array count beyond the frame", func(t *testing.T, c *net.TCPConn) {
			// Metadata v1: topics array of 0x7fffffff entries, two bytes given.
			sendRaw(t, c, rawFrame(int16(kmsg.Metadata), 1, 1, []byte{0x7f, 0xff, 0xff, 0xff, 0, 1}))
		}},
		{"valid request then garbage frame", func(t *testing.T, c *net.TCPConn) {
			// The broker may or may not answer the valid request before it
			// reads the garbage; after the garbage it must close.
			sendRaw(t, c, append(bytes.Clone(metadataFrame), rawFrame(9999, 0, 8, nil)...))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("connection not closed after a valid request followed by garbage: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, b.Addr())
			tc.send(t, c)
			if tc.name != "valid request then garbage frame" {
				expectClosed(t, c)
			}
			h.check(t)
		})
	}
}

// TestHostileFrameSizeBoundary: a frame of exactly socket.request.max.bytes
// is served, one byte more is refused.
func TestHostileFrameSizeBoundary(t *testing.T) {
	b := startBroker(t, map[string]string{"socket.request.max.bytes": fmt.Sprint(hostileMaxRequest)})
	h := newHealthyClients(t, b.Addr())

	// An ApiVersions v3 request whose client software name pads the frame
	// to the wanted size (the compact string's length varint grows with
	// the name, so settle the size by iterating).
	build := func(frameSize int) []byte {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareVersion = "1.0"
		for pad := frameSize; ; pad-- {
			req.ClientSoftwareName = string(bytes.Repeat([]byte("a"), pad))
			if f := encodeRequest(req, 5); len(f)-4 <= frameSize {
				if len(f)-4 != frameSize {
					panic("cannot pad to the size")
				}
				return f
			}
		}
	}
	t.Run("at max", func(t *testing.T) {
		c := dialRaw(t, b.Addr())
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		sendRaw(t, c, build(hostileMaxRequest))
		corr, rest := readResponse(t, c)
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		if err := resp.ReadFrom(rest); err != nil || corr != 5 || resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions of exactly socket.request.max.bytes: corr %d err %v code %d", corr, err, resp.ErrorCode)
		}
		h.check(t)
	})
	t.Run("one past max", func(t *testing.T) {
		c := dialRaw(t, b.Addr())
		sendRaw(t, c, build(hostileMaxRequest+1))
		expectClosed(t, c)
		h.check(t)
	})
}

// TestHostileHugePrefixDoesNotAllocate sends a 2 GiB length prefix to a
// broker with the default socket.request.max.bytes and checks that the
// broker closes the connection without allocating the declared size.
func TestHostileHugePrefixDoesNotAllocate(t *testing.T) {
	b := startBroker(t, nil)
	h := newHealthyClients(t, b.Addr())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 4 {
		c := dialRaw(t, b.Addr())
		sendRaw(t, c, []byte{0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0})
		expectClosed(t, c)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
		t.Fatalf("four 2 GiB length prefixes made the process allocate %d MiB", d>>20)
	}
	h.check(t)
}

// TestHostileGarbage sends deterministic random bytes, each stream then
// half-closed, from many connections at once; every one must be closed.
func TestHostileGarbage(t *testing.T) {
	b := startBroker(t, map[string]string{"socket.request.max.bytes": fmt.Sprint(hostileMaxRequest)})
	h := newHealthyClients(t, b.Addr())
	const conns = 32
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for seed := range uint64(conns) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			garbage := make([]byte, 16+rng.IntN(8192))
			for i := range garbage {
				garbage[i] = byte(rng.Uint32())
			}
			if seed%2 == 1 {
				// A plausible size, so the garbage reaches the header parser.
				binary.BigEndian.PutUint32(garbage, uint32(len(garbage)-4))
			}
			errs <- garbageExchange(b.Addr(), garbage)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	h.check(t)
}

// garbageExchange sends garbage, half-closes, and waits for the broker to
// close. Bytes the broker sends back are tolerated only if they are whole
// response frames (random bytes can, rarely, form a valid request).
func garbageExchange(addr string, garbage []byte) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(garbage); err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("garbage of %d bytes: write: %w", len(garbage), err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("garbage of %d bytes: connection not closed: %w", len(garbage), err)
	}
	for len(got) > 0 {
		if len(got) < 4 || int(binary.BigEndian.Uint32(got)) > len(got)-4 {
			return fmt.Errorf("garbage of %d bytes: broker answered %d bytes that are not response frames", len(garbage), len(got))
		}
		got = got[4+binary.BigEndian.Uint32(got):]
	}
	return nil
}

// TestHostileApiVersionsUnsupported: an ApiVersions at a version the broker
// does not know gets a v0 response with UNSUPPORTED_VERSION and, as from
// Kafka, ApiVersions' own range only (a full table there made franz-go use
// it, without the feature levels a v3+ answer carries), and the connection
// stays usable.
func TestHostileApiVersionsUnsupported(t *testing.T) {
	b := startBroker(t, nil)
	h := newHealthyClients(t, b.Addr())
	c := dialRaw(t, b.Addr())

	// What a future client sends: header v2 and a v3-shaped body.
	future := kmsg.NewPtrApiVersionsRequest()
	future.Version = 3
	future.ClientSoftwareName, future.ClientSoftwareVersion = "future", "99.0"
	body := append([]byte{0}, future.AppendTo(nil)...)
	sendRaw(t, c, rawFrame(int16(kmsg.ApiVersions), 99, 4242, body))

	corr, rest := readResponse(t, c)
	if corr != 4242 {
		t.Fatalf("correlation id %d, want 4242", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(rest); err != nil {
		t.Fatalf("decoding the answer as ApiVersions v0 (header v0): %v", err)
	}
	if len(resp.AppendTo(nil)) != len(rest) {
		t.Fatalf("answer has %d bytes, a v0 ApiVersions response of its content has %d", len(rest), len(resp.AppendTo(nil)))
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION (35)", resp.ErrorCode)
	}
	var own *kmsg.ApiVersionsResponseApiKey
	for i, k := range resp.ApiKeys {
		if k.ApiKey == int16(kmsg.ApiVersions) {
			own = &resp.ApiKeys[i]
		}
	}
	if len(resp.ApiKeys) != 1 || own == nil || own.MinVersion != 0 || own.MaxVersion < 3 {
		t.Fatalf("supported ranges %+v; want ApiVersions' alone, from v0 to at least v3", resp.ApiKeys)
	}

	// The client retries at a version both speak, on the same connection.
	retry := kmsg.NewPtrApiVersionsRequest()
	retry.Version = 3
	retry.ClientSoftwareName, retry.ClientSoftwareVersion = "future", "99.0"
	r := roundTrip(t, c, retry, 4243).(*kmsg.ApiVersionsResponse)
	if r.ErrorCode != 0 || len(r.ApiKeys) < 20 || r.FinalizedFeaturesEpoch < 0 {
		t.Fatalf("retry at v3: error %d, %d api keys, finalized features epoch %d", r.ErrorCode, len(r.ApiKeys), r.FinalizedFeaturesEpoch)
	}
	h.check(t)
}

// TestHostileProduceCorruptBatch sends Produce v9 requests whose record
// batches are damaged, on a connection that stays open; each partition gets
// the error Kafka gives and nothing is appended. Kafka's answers (see
// ProduceRequest.validateRecords and ByteBufferLogInputStream): a batch
// whose CRC does not match, or whose length is below the smallest record
// overhead, is CORRUPT_MESSAGE; records that hold no complete batch (the
// length overruns the payload), more than one batch, or a batch whose magic
// is not 2 are INVALID_RECORD — not retriable, so a client does not resend
// a request that can never succeed.
func TestHostileProduceCorruptBatch(t *testing.T) {
	b := startBroker(t, nil)
	h := newHealthyClients(t, b.Addr())
	c := dialRaw(t, b.Addr())

	valid := recordBatch("one", "two", "three")
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	for i, tc := range []struct {
		name    string
		records []byte
		want    *kerr.Error
	}{
		{"crc field flipped", mutate(func(b []byte) []byte { b[17] ^= 0x01; return b }), kerr.CorruptMessage},
		{"record value byte flipped", mutate(func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }), kerr.CorruptMessage},
		{"attributes changed under the crc", mutate(func(b []byte) []byte { b[22] = 0x01; return b }), kerr.CorruptMessage},
		{"length below the record overhead", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 10)
			return b
		}), kerr.CorruptMessage},
		{"length overruns the payload", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12+100))
			return b
		}), kerr.InvalidRecord},
		{"payload cut short of the length", mutate(func(b []byte) []byte { return b[:len(b)-10] }), kerr.InvalidRecord},
		{"two valid batches", append(bytes.Clone(valid), recordBatch("four")...), kerr.InvalidRecord},
		{"valid batch followed by a corrupt one", append(bytes.Clone(valid), mutate(func(b []byte) []byte { b[17] ^= 0xff; return b })...), kerr.InvalidRecord},
		{"magic 1 in a v9 produce", mutate(func(b []byte) []byte {
			b[16] = 1
			binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoliTable))
			return b
		}), kerr.InvalidRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A topic per case, so that one wrongly accepted batch does
			// not spill into the next case.
			topic := fmt.Sprintf("corrupt-%d", i)
			createTopic(t, h.adm, topic, 1, nil)
			resp := roundTrip(t, c, produceV9(topic, 0, tc.records), int32(100+i)).(*kmsg.ProduceResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("response %+v: want one topic with one partition", resp.Topics)
			}
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode != tc.want.Code {
				t.Errorf("partition error %v (%d), want %v (%d)", kerr.ErrorForCode(p.ErrorCode), p.ErrorCode, tc.want, tc.want.Code)
			}
			if got := endOffset(t, h.adm, topic, 0); got != 0 {
				t.Errorf("after a rejected batch the log end offset is %d, want 0", got)
			}
			// The same connection is still served, and a valid batch lands
			// at offset 0: nothing of the rejected one was appended.
			resp = roundTrip(t, c, produceV9(topic, 0, valid), int32(200+i)).(*kmsg.ProduceResponse)
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
				t.Fatalf("valid batch after the rejected one: error %d base offset %d, want 0 and 0", p.ErrorCode, p.BaseOffset)
			}
			if i > 0 {
				return
			}
			got := consumeN(t, b.Addr(), topic, 3)
			for j, want := range []string{"one", "two", "three"} {
				if string(got[j].Value) != want || got[j].Offset != int64(j) {
					t.Fatalf("record %d: %q at offset %d, want %q at %d", j, got[j].Value, got[j].Offset, want, j)
				}
			}
		})
	}
	h.check(t)
}

// TestHostileMutatedRequests sends requests that decode but carry random
// field values (valid requests with bytes overwritten, kept only if kmsg
// still decodes them) for every advertised API and version; whatever the
// handlers make of them, the broker must keep serving. CreateTopics and
// CreatePartitions are left out: a random partition count is a legitimate
// (if enormous) request, not hostile framing.
func TestHostileMutatedRequests(t *testing.T) {
	b := startBroker(t, map[string]string{"socket.request.max.bytes": fmt.Sprint(hostileMaxRequest)})
	h := newHealthyClients(t, b.Addr())
	const topic = "mutation-target"
	createTopic(t, h.adm, topic, 2, nil)
	ids, err := h.adm.ListTopics(testContext(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	topicID := ids[topic].ID

	versions := kmsg.NewPtrApiVersionsRequest()
	versions.Version = 3
	versions.ClientSoftwareName, versions.ClientSoftwareVersion = "hostile", "1.0"
	vc := dialRaw(t, b.Addr())
	advertised := roundTrip(t, vc, versions, 1).(*kmsg.ApiVersionsResponse)

	rng := rand.New(rand.NewPCG(42, 7))
	type job struct {
		name  string
		frame []byte
	}
	var jobs []job
	for _, k := range advertised.ApiKeys {
		if k.ApiKey == int16(kmsg.CreateTopics) || k.ApiKey == int16(kmsg.CreatePartitions) {
			continue
		}
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			seed := mutationSeed(k.ApiKey, v, topic, topicID)
			if seed == nil || v > seed.MaxVersion() || (k.ApiKey == int16(kmsg.Produce) && v < 3) {
				continue
			}
			frame := encodeRequest(seed, 1)
			hdrLen := 4 + 10 + len(hostileClientID)
			for m := 0; m < 25; m++ {
				f := bytes.Clone(frame)
				for range 1 + rng.IntN(4) {
					if len(f) == hdrLen {
						break
					}
					i := hdrLen + rng.IntN(len(f)-hdrLen)
					f[i] = []byte{0, 1, 0x7f, 0x80, 0xff, byte(rng.Uint32())}[rng.IntN(6)]
				}
				check := kmsg.RequestForKey(k.ApiKey)
				check.SetVersion(v)
				body := f[hdrLen:]
				if seed.IsFlexible() {
					var err error
					if body, err = skipTagSection(body); err != nil {
						continue
					}
				}
				if check.ReadFrom(body) != nil {
					continue
				}
				jobs = append(jobs, job{fmt.Sprintf("%s v%d mutation %d", kmsg.NameForKey(k.ApiKey), v, m), f})
			}
		}
	}
	if len(jobs) < 100 {
		t.Fatalf("only %d mutated requests decode; the generator is broken", len(jobs))
	}

	// Each request on its own connection, half-closed after the request so
	// the broker ends the connection once it has dealt with it.
	work := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var stuck []string
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				c, err := net.DialTimeout("tcp", b.Addr(), 10*time.Second)
				if err != nil {
					mu.Lock()
					stuck = append(stuck, j.name+": dial: "+err.Error())
					mu.Unlock()
					continue
				}
				c.SetDeadline(time.Now().Add(15 * time.Second))
				c.Write(j.frame)
				c.(*net.TCPConn).CloseWrite()
				if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
					mu.Lock()
					stuck = append(stuck, j.name+": "+err.Error())
					mu.Unlock()
				}
				c.Close()
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	for _, s := range stuck {
		t.Errorf("connection not closed after request and half close: %s", s)
	}
	t.Logf("sent %d mutated requests", len(jobs))
	h.check(t)
}

// mutationSeed returns a valid request of key at version v with enough
// fields filled that mutations reach the handler's interesting paths.
func mutationSeed(key, v int16, topic string, topicID [16]byte) kmsg.Request {
	switch kmsg.Key(key) {
	case kmsg.Produce:
		req := produceV9(topic, 1, recordBatch("m1", "m2"))
		req.Version = v
		req.Topics[0].TopicID = topicID
		req.TimeoutMillis = 1000
		return req
	case kmsg.Fetch:
		req := kmsg.NewPtrFetchRequest()
		req.Version = v
		req.MaxWaitMillis = 100
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, topicID
		for p := range int32(2) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes, rp.FetchOffset = p, 1<<20, 0
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return req
	case kmsg.ListOffsets:
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = v
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for _, ts := range []int64{-1, -2, -3} {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return req
	case kmsg.Metadata:
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic, mt.TopicID = kmsg.StringPtr(topic), topicID
		req.Topics = append(req.Topics, mt)
		return req
	case kmsg.DeleteTopics:
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = v
		req.TimeoutMillis = 1000
		req.TopicNames = []string{"no-such-topic"}
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = kmsg.StringPtr("no-such-topic")
		req.Topics = append(req.Topics, dt)
		return req
	case kmsg.FindCoordinator:
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = v
		req.CoordinatorKey = "group"
		req.CoordinatorKeys = []string{"group", "other"}
		return req
	case kmsg.ApiVersions:
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "hostile", "1.0"
		return req
	}
	req := kmsg.RequestForKey(key)
	if req != nil {
		req.SetVersion(v)
	}
	return req
}
