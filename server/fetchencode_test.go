package server

import (
	"bytes"
	"testing"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAppendFetchFrameMatchesWholeEncoding checks that a fetch response
// written in pieces, its large records from their own buffers, is byte for
// byte the frame kmsg encodes whole, at every version and with records
// large and small.
func TestAppendFetchFrameMatchesWholeEncoding(t *testing.T) {
	large := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	for _, v := range []int16{4, 7, 11, 12, 13, 16, 18} {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = v
		resp.SessionID = 7
		for ti, sizes := range [][]int{{splitRecordsMin, 10, 0}, {3 * splitRecordsMin, 1 << 20}} {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = string(rune('a' + ti))
			rt.TopicID = [16]byte{byte(ti + 1)}
			for pi, n := range sizes {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = int32(pi)
				rp.HighWatermark = int64(n)
				rp.RecordBatches = large(byte(pi+ti), n)
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID = 9
				rp.AbortedTransactions = append(rp.AbortedTransactions, at)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		want := protocol.AppendResponse(nil, 42, resp)
		buf, pieces := appendFetchFrame(make([]byte, 3), nil, 42, resp)
		if !bytes.Equal(buf[:3], []byte{0, 0, 0}) {
			t.Fatalf("v%d: bytes before the frame were changed", v)
		}
		if got := bytes.Join(pieces, nil); !bytes.Equal(got, want) {
			t.Fatalf("v%d: pieces join to %d bytes that differ from the %d-byte whole encoding", v, len(got), len(want))
		}
		if len(pieces) < 6 {
			t.Fatalf("v%d: %d pieces; the three large records were not written from their buffers", v, len(pieces))
		}
		if got := protocol.AppendResponse(nil, 42, resp); !bytes.Equal(got, want) {
			t.Fatalf("v%d: the response was not restored after encoding", v)
		}
	}
}

func TestFetchPoolGrantsWhatIsFreeAndLendsFirstBatches(t *testing.T) {
	p := newFetchPool(100)
	if got := p.take(60); got != 60 {
		t.Fatalf("take(60) of 100 = %d", got)
	}
	if got := p.take(60); got != 40 {
		t.Fatalf("take(60) of 40 = %d, want what is left", got)
	}
	if got := p.take(10); got != 0 {
		t.Fatalf("take(10) of 0 = %d", got)
	}
	p.give(-30) // a first batch read on credit
	if got := p.take(10); got != 0 || p.available() != -30 {
		t.Fatalf("overdrawn pool granted %d, has %d", got, p.available())
	}
	p.give(30 + 60 + 40)
	if p.available() != 100 {
		t.Fatalf("pool has %d after everything was given back, want 100", p.available())
	}
}

func TestDedupeFetchPartitionsKeepsFirstPlaceLastFields(t *testing.T) {
	k := func(topic string, p int32) sessionKey { return sessionKey{topic: topic, partition: p} }
	in := []fetchPartitionReq{
		{key: k("a", 0), fetchOffset: 1},
		{key: k("b", 0), fetchOffset: 2},
		{key: k("a", 0), fetchOffset: 3},
		{key: k("a", 1), fetchOffset: 4},
		{key: k("a", 0), fetchOffset: 5, maxBytes: 9},
	}
	got := dedupeFetchPartitions(in)
	want := []fetchPartitionReq{
		{key: k("a", 0), fetchOffset: 5, maxBytes: 9},
		{key: k("b", 0), fetchOffset: 2},
		{key: k("a", 1), fetchOffset: 4},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d partitions, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("partition %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
