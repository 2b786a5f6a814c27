//go:build !unix

package server

// diskSpace is unknown on this platform.
func diskSpace(string) (total, usable int64) { return -1, -1 }
