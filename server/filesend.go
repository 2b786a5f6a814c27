package server

import (
	"bufio"
	"fmt"
	"net"
	"syscall"

	"github.com/skiffmq/skiff/storage"
)

// fileSender is what the connection writer asks of its connection: can it
// send bytes of a file without copying them through user space. Only a
// plain TCP connection on Linux can (sendfile(2)); under TLS the bytes must
// be encrypted in user space, so newFileSender returns nil for a TLS
// connection (or anything that is not a *net.TCPConn) and the writer
// copies instead.
type fileSender interface {
	// sendFile writes r to the connection in full, or fails.
	sendFile(r storage.FileRange) error
}

// newFileSender returns the connection's fileSender, or nil if it has none.
// progress is called before a send starts and whenever the kernel takes
// bytes of it: it re-arms the connection's write deadline, which a send
// parked on a full socket buffer honours (see writedeadline.go).
func newFileSender(nc net.Conn, progress func()) fileSender {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	return newTCPFileSender(tc, progress)
}

// sendfileMin is the smallest file range worth a sendfile: below it, a
// copy into the write buffer costs less than flushing the buffer and
// another system call, and lets small responses leave in one write.
const sendfileMin = 16 << 10

// writeFileRange writes r after what bw holds: with fs when there is one
// and r is large enough, else by reading r into bw's own buffer (the
// copying path; it allocates nothing and holds at most bw's size).
func writeFileRange(bw *bufio.Writer, fs fileSender, r storage.FileRange) error {
	if _, hasFD := r.File.(syscall.Conn); fs != nil && hasFD && r.Len >= sendfileMin {
		if err := bw.Flush(); err != nil {
			return err
		}
		return fs.sendFile(r)
	}
	for off, end := r.Offset, r.Offset+r.Len; off < end; {
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		b := bw.AvailableBuffer()
		b = b[:min(int64(cap(b)), end-off)]
		if _, err := r.File.ReadAt(b, off); err != nil {
			return fmt.Errorf("server: reading records from %s: %w", r.File.Name(), err)
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}
