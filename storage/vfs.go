package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the filesystem seam: everything the package does to files goes
// through it, so that tests can swap the operating system for MemFS, which
// loses unsynced data on a simulated crash and injects I/O errors and a full
// disk. It is deliberately small (pebble's vfs and kfake's memFS are the
// models): what a log needs, nothing more.
type FS interface {
	// OpenFile opens name with os.O_* flags; only O_RDONLY, O_RDWR,
	// O_CREATE, O_EXCL and O_TRUNC are used.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// ReadFile returns a whole file's bytes.
	ReadFile(name string) ([]byte, error)
	Stat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	MkdirAll(name string, perm fs.FileMode) error
	Rename(oldname, newname string) error
	Remove(name string) error
	RemoveAll(name string) error
	// SyncDir makes creations, renames and removals of entries in the
	// directory durable.
	SyncDir(name string) error
	// Lock takes an exclusive lock on the file name (created if needed)
	// until the returned closer is closed; a second Lock fails.
	Lock(name string) (io.Closer, error)
}

// File is an open file of an FS.
type File interface {
	io.ReaderAt
	io.WriterAt
	Name() string
	Stat() (fs.FileInfo, error)
	// Sync makes the file's data and metadata durable (fsync).
	Sync() error
	// Datasync makes the file's data and size durable (fdatasync).
	Datasync() error
	Truncate(size int64) error
	Close() error
}

// OSFS is the operating system's filesystem.
var OSFS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) ReadFile(name string) ([]byte, error)         { return os.ReadFile(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (osFS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                  { return os.RemoveAll(name) }
func (osFS) Lock(name string) (io.Closer, error)          { return lockDir(name) }

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct{ *os.File }

func (f osFile) Datasync() error { return fdatasync(f.File) }

// syncDirectory fsyncs a directory, making file creations, renames and
// removals in it durable.
func syncDirectory(fsys FS, dir string) error {
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("storage: fsync %s: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic writes data to path on the operating system's filesystem
// so that after a crash path holds either its old content or data: write a
// temp file, fsync, rename, fsync the directory.
func WriteFileAtomic(path string, data []byte) error {
	return writeFileAtomic(OSFS, path, data, true)
}

// WriteFileAtomicFS is WriteFileAtomic on fsys.
func WriteFileAtomicFS(fsys FS, path string, data []byte) error {
	return writeFileAtomic(fsys, path, data, true)
}

func writeFileAtomic(fsys FS, path string, data []byte, syncDir bool) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, base+"."+hex.EncodeToString(rnd[:])+tmpExt)
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("storage: write %s: %w", path, err)
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("storage: write %s: %w", path, err)
	}
	if syncDir {
		return syncDirectory(fsys, dir)
	}
	return nil
}

// isNotExist is errors.Is(err, fs.ErrNotExist), shorter.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// mkdirDurable creates dir and any missing parents, and fsyncs the parent
// of each directory it created, so that a crash cannot take the new
// directory (and every file later synced in it) away.
func mkdirDurable(fsys FS, dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fsys.Stat(d); err == nil {
			break
		} else if !isNotExist(err) {
			return fmt.Errorf("storage: %w", err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := syncDirectory(fsys, filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
