package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// captureBroker is the least of a Kafka broker that lets franz-go's
// producer run: ApiVersions, Metadata, InitProducerID and Produce, with
// every produced record set kept for the test to decode. It exists so that
// DecodeRecords is checked against batches a real client encoded and
// compressed, not only against encoders written next to it.
type captureBroker struct {
	ln   net.Listener
	port int32
	wg   sync.WaitGroup

	mu struct {
		sync.Mutex
		conns   []net.Conn
		batches [][]byte // Records of every produced partition, in order
		offset  int64
	}
}

func startCaptureBroker(t *testing.T) *captureBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &captureBroker{ln: ln, port: int32(ln.Addr().(*net.TCPAddr).Port)}
	b.wg.Go(b.accept)
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.mu.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *captureBroker) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.mu.conns = append(b.mu.conns, c)
		b.mu.Unlock()
		b.wg.Go(func() { b.serve(c) })
	}
}

func (b *captureBroker) batches() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.mu.batches...)
}

func (b *captureBroker) serve(c net.Conn) {
	defer c.Close()
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, frame); err != nil {
			return
		}
		out, err := b.handle(frame)
		if err != nil {
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// handle decodes one request frame and returns the framed response.
func (b *captureBroker) handle(frame []byte) ([]byte, error) {
	if len(frame) < 10 {
		return nil, fmt.Errorf("short frame")
	}
	key := int16(binary.BigEndian.Uint16(frame))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := binary.BigEndian.Uint32(frame[4:])
	idLen := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10+max(int(idLen), 0):]
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("unknown key %d", key)
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		// Header tagged fields: count then (tag, size, bytes); clients send
		// none, but skip them properly anyway.
		n, sz := binary.Uvarint(rest)
		rest = rest[sz:]
		for range n {
			_, sz = binary.Uvarint(rest)
			rest = rest[sz:]
			l, sz := binary.Uvarint(rest)
			rest = rest[sz+int(l):]
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil, err
	}

	var resp kmsg.Response
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		vr := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []struct{ key, min, max int16 }{{0, 3, 11}, {3, 1, 12}, {18, 0, 4}, {22, 0, 5}} {
			vr.ApiKeys = append(vr.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.key, MinVersion: k.min, MaxVersion: k.max})
		}
		resp = vr
	case *kmsg.MetadataRequest:
		mr := r.ResponseKind().(*kmsg.MetadataResponse)
		mr.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: "127.0.0.1", Port: b.port}}
		mr.ControllerID = 0
		for _, rt := range r.Topics {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.TopicID = [16]byte{1}
			p := kmsg.NewMetadataResponseTopicPartition()
			p.Replicas, p.ISR = []int32{0}, []int32{0}
			mt.Partitions = append(mt.Partitions, p)
			mr.Topics = append(mr.Topics, mt)
		}
		resp = mr
	case *kmsg.InitProducerIDRequest:
		ir := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		ir.ProducerID, ir.ProducerEpoch = 1, 0
		resp = ir
	case *kmsg.ProduceRequest:
		pr := r.ResponseKind().(*kmsg.ProduceResponse)
		b.mu.Lock()
		for _, rt := range r.Topics {
			t := kmsg.NewProduceResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				b.mu.batches = append(b.mu.batches, bytes.Clone(rp.Records))
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition = rp.Partition
				p.BaseOffset = b.mu.offset
				b.mu.offset += 1000 // any increasing offset will do
				t.Partitions = append(t.Partitions, p)
			}
			pr.Topics = append(pr.Topics, t)
		}
		b.mu.Unlock()
		resp = pr
	default:
		return nil, fmt.Errorf("unexpected request %d", key)
	}
	resp.SetVersion(version)
	out := binary.BigEndian.AppendUint32(make([]byte, 4), corr)
	if resp.IsFlexible() && key != 18 { // ApiVersions answers with header v0
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}

// TestDecodeRecordsFromKgoProducer produces records with franz-go's real
// producer for every codec and decodes what it sent.
func TestDecodeRecordsFromKgoProducer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a client and a listener")
	}
	for _, codec := range append([]Codec{CodecNone}, compressedCodecs...) {
		t.Run(codec.String(), func(t *testing.T) {
			broker := startCaptureBroker(t)
			cl, err := kgo.NewClient(
				kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", broker.port)),
				kgo.DefaultProduceTopic("skiff"),
				kgo.ProducerBatchCompression(kgoCodec(codec)),
			)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()

			base := time.UnixMilli(1700000000000)
			var sent []*kgo.Record
			for i := range 500 {
				r := &kgo.Record{
					Value:     bytes.Repeat([]byte(fmt.Sprintf("value %d;", i)), i%50),
					Timestamp: base.Add(time.Duration(i) * time.Millisecond),
				}
				if i%3 != 0 {
					r.Key = []byte(fmt.Sprintf("key-%d", i))
				}
				if i%4 == 0 {
					r.Headers = []kgo.RecordHeader{{Key: "trace", Value: []byte{byte(i)}}, {Key: "empty"}}
				}
				sent = append(sent, r)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := cl.ProduceSync(ctx, sent...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}

			var got []Record
			var gotTS []int64
			for _, set := range broker.batches() {
				for len(set) > 0 {
					h, err := ValidateBatch(set)
					if err != nil {
						t.Fatalf("ValidateBatch: %v", err)
					}
					if h.Codec() != codec || h.ProducerID != 1 || !h.HasProducerID() {
						t.Fatalf("header %+v", h)
					}
					recs, err := DecodeRecords(set[:h.Size()], nil)
					if err != nil {
						t.Fatalf("DecodeRecords: %v", err)
					}
					for i, r := range recs {
						if r.OffsetDelta != int32(i) {
							t.Fatalf("record %d has offset delta %d", i, r.OffsetDelta)
						}
						gotTS = append(gotTS, h.BaseTimestamp+r.TimestampDelta)
					}
					got = append(got, recs...)
					set = set[h.Size():]
				}
			}
			if len(got) != len(sent) {
				t.Fatalf("decoded %d records, produced %d", len(got), len(sent))
			}
			for i, s := range sent {
				g := got[i]
				if !bytes.Equal(g.Key, s.Key) || (g.Key == nil) != (s.Key == nil) ||
					!bytes.Equal(g.Value, s.Value) || gotTS[i] != s.Timestamp.UnixMilli() ||
					len(g.Headers) != len(s.Headers) {
					t.Fatalf("record %d: got %+v ts %d, sent %+v", i, g, gotTS[i], s)
				}
				for j, h := range s.Headers {
					if g.Headers[j].Key != h.Key || !bytes.Equal(g.Headers[j].Value, h.Value) {
						t.Fatalf("record %d header %d: got %+v, sent %+v", i, j, g.Headers[j], h)
					}
				}
			}
		})
	}
}

// TestDecodeRecordsFromKgoXerialSnappy: with streaming compression franz-go
// frames snappy as snappy-java does (the form Java producers and librdkafka
// send). Merging needs a backlog of batches, so send bursts until one
// arrives framed.
func TestDecodeRecordsFromKgoXerialSnappy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a client and a listener")
	}
	broker := startCaptureBroker(t)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", broker.port)),
		kgo.DefaultProduceTopic("skiff"),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()),
		kgo.StreamingCompression(),
		kgo.ProducerBatchMaxBytes(64<<10),
		kgo.MaxProduceRequestsInflightPerBroker(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var sent, framed int
	for round := 0; round < 5 && framed == 0; round++ {
		var recs []*kgo.Record
		for i := range 20000 {
			recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "v%d-%s", sent+i, bytes.Repeat([]byte("x"), i%100))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		sent += len(recs)
		var decoded int
		for _, set := range broker.batches() {
			for len(set) > 0 {
				h, err := ValidateBatch(set)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.HasPrefix(set[BatchHeaderSize:], xerialMagic) {
					framed++
				}
				recs, err := DecodeRecords(set[:h.Size()], nil)
				if err != nil {
					t.Fatalf("DecodeRecords: %v", err)
				}
				for i, r := range recs {
					want := fmt.Appendf(nil, "v%d-", decoded+i)
					if !bytes.HasPrefix(r.Value, want) {
						t.Fatalf("record %d: value %.20q, want prefix %q", decoded+i, r.Value, want)
					}
				}
				decoded += len(recs)
				set = set[h.Size():]
			}
		}
		if decoded != sent {
			t.Fatalf("decoded %d records, sent %d", decoded, sent)
		}
	}
	if framed == 0 {
		t.Fatal("franz-go never sent a xerial-framed batch")
	}
	t.Logf("%d records, %d framed batches", sent, framed)
}
