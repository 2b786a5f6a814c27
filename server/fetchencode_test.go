package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
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
		buf, pieces, copied := appendFetchFrame(make([]byte, 3), nil, 42, resp, nil)
		if !bytes.Equal(buf[:3], []byte{0, 0, 0}) {
			t.Fatalf("v%d: bytes before the frame were changed", v)
		}
		if copied != 0 {
			t.Fatalf("v%d: %d bytes copied", v, copied)
		}
		if got := joinPieces(t, pieces); !bytes.Equal(got, want) {
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

// joinPieces is the frame the pieces make, file ranges read.
func joinPieces(t *testing.T, pieces []framePiece) []byte {
	t.Helper()
	var out []byte
	for _, p := range pieces {
		if p.file.File == nil {
			out = append(out, p.b...)
			continue
		}
		b := make([]byte, p.file.Len)
		if _, err := p.file.File.ReadAt(b, p.file.Offset); err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// TestAppendFetchFrameWithFileRecords checks that records named by file
// ranges (several ranges for one partition, as a read across segments
// gives, small and large) become file pieces, and that the frame is byte
// for byte what kmsg encodes with those bytes in memory.
func TestAppendFetchFrameWithFileRecords(t *testing.T) {
	content := make([]byte, 200<<10)
	for i := range content {
		content[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "segment")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := storage.OSFS.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	read := func(ranges ...[2]int64) *storage.FileRead {
		fr := &storage.FileRead{}
		for _, r := range ranges {
			fr.Ranges = append(fr.Ranges, storage.FileRange{File: f, Offset: r[0], Len: r[1]})
			fr.Size += r[1]
		}
		return fr
	}
	reads := []*storage.FileRead{read([2]int64{0, 100}), read([2]int64{1000, 70 << 10}, [2]int64{5, 50 << 10}), read([2]int64{3, 1})}
	for _, v := range []int16{4, 11, 12, 16, 18} {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = v
		withBytes := kmsg.NewPtrFetchResponse()
		withBytes.Version = v
		var files []fetchFile
		for ti := range 2 {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = string(rune('a' + ti))
			for pi := range 3 {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = int32(pi)
				rp.RecordBatches = []byte{}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		// Partition 1 of topic a has none: bytes stay as they are.
		for k, at := range [][2]int{{0, 0}, {1, 0}, {1, 1}, {1, 2}} {
			files = append(files, fetchFile{topic: at[0], partition: at[1], read: reads[k%len(reads)]})
		}
		for ti := range resp.Topics {
			rt := resp.Topics[ti]
			rt.Partitions = append([]kmsg.FetchResponseTopicPartition(nil), rt.Partitions...)
			withBytes.Topics = append(withBytes.Topics, rt)
		}
		for _, ff := range files {
			var b []byte
			for _, r := range ff.read.Ranges {
				b = append(b, content[r.Offset:r.Offset+r.Len]...)
			}
			withBytes.Topics[ff.topic].Partitions[ff.partition].RecordBatches = b
		}
		want := protocol.AppendResponse(nil, 9, withBytes)
		_, pieces, copied := appendFetchFrame(nil, nil, 9, resp, files)
		if copied != 0 {
			t.Fatalf("v%d: %d bytes copied", v, copied)
		}
		if got := joinPieces(t, pieces); !bytes.Equal(got, want) {
			t.Fatalf("v%d: pieces join to %d bytes that differ from the %d-byte whole encoding", v, len(got), len(want))
		}
		nfile := 0
		for _, p := range pieces {
			if p.file.File != nil {
				nfile++
			}
		}
		if nfile != 5 {
			t.Fatalf("v%d: %d file pieces, want one per range (5)", v, nfile)
		}
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				if n := len(resp.Topics[ti].Partitions[pi].RecordBatches); n != 0 {
					t.Fatalf("v%d: records of %d/%d not restored: %d bytes", v, ti, pi, n)
				}
			}
		}
		// The fallback encodes whole, reading the files.
		buf, pieces, copied := encodeFetchWhole(nil, nil, 9, resp, files)
		var size int64
		for _, ff := range files {
			size += ff.read.Size
		}
		if !bytes.Equal(buf, want) || len(pieces) != 1 || copied != size {
			t.Fatalf("v%d: whole encoding differs or copied %d", v, copied)
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
