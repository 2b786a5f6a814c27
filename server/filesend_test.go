package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/skiffmq/skiff/storage"
)

// fileRangeSource is a file of n patterned bytes, closed at test end.
func fileRangeSource(t *testing.T, n int) (storage.File, []byte) {
	t.Helper()
	content := make([]byte, n)
	for i := range content {
		content[i] = byte(i*31 + i>>8)
	}
	path := filepath.Join(t.TempDir(), "segment.log")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := storage.OSFS.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, content
}

// TestWriteFileRangeCopyPath checks the path for connections that cannot
// sendfile (TLS): ranges larger and smaller than the write buffer, copied
// through it, arrive in order with the bytes around them.
func TestWriteFileRangeCopyPath(t *testing.T) {
	f, content := fileRangeSource(t, 300<<10)
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 64<<10)
	var want []byte
	for _, r := range [][2]int64{{5, 10}, {100, 200 << 10}, {0, 64 << 10}, {299 << 10, 1 << 10}} {
		bw.WriteString("frame")
		want = append(want, "frame"...)
		if err := writeFileRange(bw, nil, storage.FileRange{File: f, Offset: r[0], Len: r[1]}); err != nil {
			t.Fatal(err)
		}
		want = append(want, content[r[0]:r[0]+r[1]]...)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("copied %d bytes that differ from the %d expected", out.Len(), len(want))
	}
}

// TestWriteFileRangeSendfilePartialWrites sends ranges over loopback TCP
// with a send buffer far smaller than them, so that sendfile sends part of
// a range and then hits EAGAIN, and checks the bytes that arrive: the
// framing before each range, then the range from its explicit offset.
func TestWriteFileRangeSendfilePartialWrites(t *testing.T) {
	f, content := fileRangeSource(t, 1<<20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tc := nc.(*net.TCPConn)
	if err := tc.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	fs := newFileSender(tc, func() {})
	if fs == nil {
		t.Skip("no sendfile on this platform")
	}
	ranges := [][2]int64{{7, 700 << 10}, {1, 10}, {1<<20 - 100<<10, 100 << 10}, {0, 1 << 20}}
	var want []byte
	for _, r := range ranges {
		want = append(want, "head"...)
		want = append(want, content[r[0]:r[0]+r[1]]...)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(want))))
		got <- b
	}()
	bw := bufio.NewWriterSize(tc, 64<<10)
	for _, r := range ranges {
		bw.WriteString("head")
		if err := writeFileRange(bw, fs, storage.FileRange{File: f, Offset: r[0], Len: r[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(b), len(want))
	}
	// sendfile with an offset leaves the file position alone.
	if pos, err := f.(io.Seeker).Seek(0, io.SeekCurrent); err != nil || pos != 0 {
		t.Fatalf("file position %d after sending (%v), want 0", pos, err)
	}
}
