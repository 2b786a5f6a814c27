//go:build !linux

package storage

import "os"

// fdatasync falls back to File.Sync where fdatasync is not available (on
// darwin File.Sync issues F_FULLFSYNC, which is what durability needs there).
func fdatasync(f *os.File) error { return f.Sync() }
