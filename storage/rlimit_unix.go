//go:build unix

package storage

import "syscall"

// fileLimit is the process's soft limit on open descriptors.
func fileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return uint64(rl.Cur), true // int64 on some systems
}
