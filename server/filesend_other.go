//go:build !linux

package server

import "net"

// newTCPFileSender: sendfile at an explicit offset is used on Linux only;
// elsewhere the writer copies.
func newTCPFileSender(*net.TCPConn, func()) fileSender { return nil }
