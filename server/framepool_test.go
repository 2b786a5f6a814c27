package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFramePoolSizeClasses(t *testing.T) {
	p := newFramePool()
	for _, n := range []int{1, 1000, 1024, 1025, 64 << 10, 1<<20 + 1, 4 << 20} {
		b := p.Get(n)
		if len(b) != n || cap(b)&(cap(b)-1) != 0 || cap(b) < n || cap(b) >= 2*max(n, 1024) {
			t.Fatalf("Get(%d): len %d cap %d, want len %d in a power-of-two class", n, len(b), cap(b), n)
		}
		p.Put(b)
	}
	if b := p.Get(4<<20 + 1); cap(b) != 4<<20+1 {
		t.Fatalf("a frame above the largest class is allocated exactly, got cap %d", cap(b))
	}
	p.Put(make([]byte, 3000)) // not from Get: ignored, never handed out short
	if b := p.Get(3000); cap(b) != 4096 {
		t.Fatalf("Get(3000) after a foreign Put: cap %d, want 4096", cap(b))
	}
	// A class keeps what its budget allows and drops the rest.
	for range 2 * framePoolMaxBuffers {
		p.Put(make([]byte, 0, 1<<20))
	}
	if n := len(p.classes[20-framePoolMinShift]); n != 1 {
		t.Fatalf("the 1 MiB class holds %d buffers, want 1 (its 1 MiB budget)", n)
	}
}

// TestProduceFramesAreRecycled: every request frame was fresh memory, so a
// producer's bytes all became garbage once appended (81% of the broker's
// allocated bytes in a produce profile) and the GC ran in proportion to
// the produce rate. Produce frames now go back to a pool once handled.
// Each request here carries different bytes and all of them are read back
// intact, so a frame reused too early would show.
func TestProduceFramesAreRecycled(t *testing.T) {
	srv := startTestServer(t, t.TempDir())
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "recycled"); err != nil {
		t.Fatal(err)
	}

	const requests, warm, valueSize = 48, 8, 60 << 10
	frames := make([][]byte, requests)
	for i := range frames {
		batch, err := protocol.BuildBatch(nil, protocol.BatchHeader{BaseTimestamp: time.Now().UnixMilli(),
			ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, protocol.CodecNone,
			[]protocol.Record{{Value: bytes.Repeat([]byte{byte(i)}, valueSize)}})
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, 1, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "recycled"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		f := make([]byte, 4, 64+len(batch))
		f = binary.BigEndian.AppendUint16(f, uint16(req.Key()))
		f = binary.BigEndian.AppendUint16(f, uint16(req.Version))
		f = binary.BigEndian.AppendUint32(f, uint32(i))
		f = binary.BigEndian.AppendUint16(f, 0xffff) // null client id
		f = append(f, 0)                             // header tags
		f = req.AppendTo(f)
		binary.BigEndian.PutUint32(f, uint32(len(f)-4))
		frames[i] = f
	}
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Minute))
	var size [4]byte
	resp := make([]byte, 0, 512)
	send := func(f []byte) {
		if _, err := nc.Write(f); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(nc, size[:]); err != nil {
			t.Fatal(err)
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n > cap(resp) {
			t.Fatalf("a %d-byte produce response", n)
		}
		if _, err := io.ReadFull(nc, resp[:n]); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range frames[:warm] {
		send(f)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, f := range frames[warm:] {
		send(f)
	}
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / (requests - warm)
	t.Logf("%d bytes allocated per %d-byte produce request", perRequest, len(frames[warm]))
	if perRequest > valueSize/2 {
		t.Errorf("each %d-byte produce request allocated %d bytes: its frame was not recycled", len(frames[warm]), perRequest)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"recycled": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for seen := 0; seen < requests; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records back: %v", seen, requests, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := bytes.Repeat([]byte{byte(r.Offset)}, valueSize); !bytes.Equal(r.Value, want) {
				t.Fatalf("record %d does not hold the bytes of request %d", r.Offset, r.Offset)
			}
			seen++
		})
	}
}
