package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/skiffmq/skiff/storage"
)

// tcpFileSender sends file ranges with sendfile(2) at an explicit offset.
// Go's own sendfile (TCPConn.ReadFrom) sends from the file's current
// position, which concurrent fetches of one segment would race on; the
// offset argument leaves the file position alone.
type tcpFileSender struct {
	tc       *net.TCPConn
	progress func()
}

func newTCPFileSender(tc *net.TCPConn, progress func()) fileSender {
	return tcpFileSender{tc, progress}
}

// maxSendfileChunk bounds one sendfile call; Linux sends at most about
// 2 GiB per call anyway.
const maxSendfileChunk = 1 << 30

func (s tcpFileSender) sendFile(r storage.FileRange) error {
	out, err := s.tc.SyscallConn()
	if err != nil {
		return fmt.Errorf("server: sendfile: %w", err)
	}
	sc, ok := r.File.(syscall.Conn)
	if !ok {
		return fmt.Errorf("server: sendfile: %s has no descriptor", r.File.Name())
	}
	in, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("server: sendfile: %w", err)
	}
	off, left := r.Offset, r.Len
	var serr error
	// The socket is non-blocking: when its send buffer is full, sendfile
	// sends part of the range or fails with EAGAIN, and returning false
	// parks this goroutine in the netpoller until the socket is writable
	// (or the connection is closed, or the write deadline passes without
	// progress: each call to progress moves it on; all fail Write).
	s.progress()
	werr := out.Write(func(outFD uintptr) bool {
		for left > 0 {
			var n int
			var err error
			if cerr := in.Control(func(inFD uintptr) {
				n, err = syscall.Sendfile(int(outFD), int(inFD), &off, int(min(left, maxSendfileChunk)))
			}); cerr != nil {
				serr = cerr
				return true
			}
			if n > 0 {
				left -= int64(n) // the kernel advanced off
				s.progress()
			}
			switch {
			case errors.Is(err, syscall.EAGAIN):
				return false
			case errors.Is(err, syscall.EINTR):
			case err != nil:
				serr = err
				return true
			case n == 0:
				// The file ends before the range: never for a held segment.
				serr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if werr != nil {
		return fmt.Errorf("server: sendfile: %w", werr)
	}
	if serr != nil {
		return fmt.Errorf("server: sendfile %s at %d: %w", r.File.Name(), off, serr)
	}
	return nil
}
