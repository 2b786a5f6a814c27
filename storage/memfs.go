package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrCrashed is returned by every operation on a MemFS after its simulated
// crash, and by files opened before it.
var ErrCrashed = errors.New("storage: memfs: crashed")

// MemFS is an in-memory FS that remembers what is durable, so that tests can
// simulate a machine crash, and that injects disk faults.
//
// Durability follows what POSIX promises and no more: a file's bytes are
// durable once the file is synced; a creation, rename or removal is durable
// once its directory is synced. A crash keeps, in each directory, the synced
// entries plus a random prefix of the changes made since (a rename is one
// change), and in each file the synced bytes plus a random prefix of what
// was written since (a torn write), sometimes with the torn part zeroed, as
// a file system that extended the size before writing the blocks leaves it.
//
// Faults: FailWrite and FailSync make the Nth later write or sync fail,
// SetSpace bounds the bytes all files may hold (a write past it is short and
// fails with ENOSPC), and CrashAfter crashes at the Nth later mutating call.
type MemFS struct {
	mu struct {
		sync.Mutex
		root     *memNode
		locks    map[string]bool
		crashed  bool
		ops      int // mutating calls so far
		crashAt  int // crash at this op (0: not armed)
		crashRng *rand.Rand
		image    *MemFS // the disk as the crash left it
		failW    memFault
		failS    memFault
		space    int64 // byte budget over all files; < 0: unlimited
	}
}

type memFault struct {
	n   int // fail the nth call from now (1: the next); 0: off
	err error
}

// hit counts a call and reports the error to return, if this one fails.
func (f *memFault) hit() error {
	if f.n == 0 {
		return nil
	}
	f.n--
	if f.n == 0 {
		return f.err
	}
	return nil
}

// memNode is a file or a directory (dir != nil).
type memNode struct {
	dir     *memDir
	data    []byte // current contents
	durable []byte // contents as of the last sync
	modTime time.Time
}

type memDir struct {
	cur     map[string]*memNode
	durable map[string]*memNode // as of the last directory sync
	pending [][]memChange       // changes since, each applied atomically
}

// memChange sets name to node, or removes it when node is nil.
type memChange struct {
	name string
	node *memNode
}

func newMemDir() *memNode {
	return &memNode{dir: &memDir{cur: map[string]*memNode{}, durable: map[string]*memNode{}}, modTime: time.Now()}
}

// NewMemFS returns an empty in-memory filesystem with an unlimited budget.
func NewMemFS() *MemFS {
	m := &MemFS{}
	m.mu.root = newMemDir()
	m.mu.locks = map[string]bool{}
	m.mu.space = -1
	return m
}

// FailWrite makes the nth WriteAt from now (1: the next) fail with err,
// writing nothing.
func (m *MemFS) FailWrite(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.failW = memFault{n: n, err: err}
}

// FailSync makes the nth Sync, Datasync or SyncDir from now fail with err.
func (m *MemFS) FailSync(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.failS = memFault{n: n, err: err}
}

// SetSpace limits the bytes all files together may hold; n < 0 lifts the
// limit. Files already bigger stay, only growth fails.
func (m *MemFS) SetSpace(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.space = n
}

// Used returns the bytes all files hold.
func (m *MemFS) Used() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return usedBy(m.mu.root)
}

func usedBy(n *memNode) int64 {
	if n.dir == nil {
		return int64(len(n.data))
	}
	var sum int64
	for _, c := range n.dir.cur {
		sum += usedBy(c)
	}
	return sum
}

// Ops returns the number of mutating calls made so far (writes, syncs,
// truncations, creations, renames, removals).
func (m *MemFS) Ops() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.ops
}

// CrashAfter arms a crash at the nth mutating call from now (1: the next):
// that call and every later one fail with ErrCrashed, and Crashed returns
// the disk as the crash left it, drawn with rng.
func (m *MemFS) CrashAfter(n int, rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.crashAt, m.mu.crashRng = m.mu.ops+n, rng
}

// Crashed returns the filesystem as the armed crash left it, or nil if the
// crash has not happened.
func (m *MemFS) Crashed() *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.image
}

// Crash crashes now and returns the disk as the crash left it.
func (m *MemFS) Crash(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.mu.crashed {
		m.crashLocked(rng)
	}
	return m.mu.image
}

func (m *MemFS) crashLocked(rng *rand.Rand) {
	m.mu.crashed = true
	img := NewMemFS()
	img.mu.root = crashDir(m.mu.root, rng)
	m.mu.image = img
}

// crashDir returns the durable image of a directory: its synced entries and
// a random prefix of the changes since, with every file torn.
func crashDir(n *memNode, rng *rand.Rand) *memNode {
	d := n.dir
	entries := make(map[string]*memNode, len(d.durable))
	for k, v := range d.durable {
		entries[k] = v
	}
	keep := len(d.pending)
	if keep > 0 {
		keep = rng.IntN(keep + 1)
	}
	for _, op := range d.pending[:keep] {
		for _, c := range op {
			if c.node == nil {
				delete(entries, c.name)
			} else {
				entries[c.name] = c.node
			}
		}
	}
	out := newMemDir()
	for name, c := range entries {
		var nc *memNode
		if c.dir != nil {
			nc = crashDir(c, rng)
		} else {
			data := tornFile(c.data, c.durable, rng)
			nc = &memNode{data: data, durable: slices.Clone(data), modTime: c.modTime}
		}
		out.dir.cur[name] = nc
		out.dir.durable[name] = nc
	}
	return out
}

// tornFile returns what a crash leaves of a file whose synced contents are
// durable and whose current contents are cur.
func tornFile(cur, durable []byte, rng *rand.Rand) []byte {
	if bytes.Equal(cur, durable) {
		return slices.Clone(cur)
	}
	p := 0
	for p < len(cur) && p < len(durable) && cur[p] == durable[p] {
		p++
	}
	switch {
	case rng.IntN(4) == 0:
		return slices.Clone(durable) // nothing since the sync reached the disk
	case len(cur) < len(durable) && rng.IntN(2) == 0:
		return slices.Clone(cur) // the truncation reached the disk
	}
	cut := p + rng.IntN(len(cur)-p+1)
	out := slices.Clone(cur[:cut])
	if rng.IntN(8) == 0 {
		clear(out[p:]) // size extended, blocks never written
	}
	if cut < len(durable) {
		out = append(out, durable[cut:]...)
	}
	return out
}

// op counts a mutating call and crashes if it is the armed one.
func (m *MemFS) opLocked() error {
	if m.mu.crashed {
		return ErrCrashed
	}
	m.mu.ops++
	if m.mu.crashAt > 0 && m.mu.ops >= m.mu.crashAt {
		m.crashLocked(m.mu.crashRng)
		return ErrCrashed
	}
	return nil
}

func splitPath(name string) []string {
	name = filepath.ToSlash(filepath.Clean(name))
	name = strings.Trim(name, "/")
	if name == "" || name == "." {
		return nil
	}
	return strings.Split(name, "/")
}

// lookupLocked returns the directory holding name's last component, that
// component, and the node if it exists.
func (m *MemFS) lookupLocked(op, name string) (*memNode, string, *memNode, error) {
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, "", m.mu.root, nil
	}
	dir := m.mu.root
	for _, p := range parts[:len(parts)-1] {
		next, ok := dir.dir.cur[p]
		if !ok || next.dir == nil {
			return nil, "", nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		dir = next
	}
	last := parts[len(parts)-1]
	return dir, last, dir.dir.cur[last], nil
}

// change applies changes to d atomically and remembers them until the next
// directory sync.
func (d *memDir) change(cs ...memChange) {
	for _, c := range cs {
		if c.node == nil {
			delete(d.cur, c.name)
		} else {
			d.cur[c.name] = c.node
		}
	}
	d.pending = append(d.pending, cs)
}

// OpenFile implements FS.
func (m *MemFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.crashed {
		return nil, ErrCrashed
	}
	dir, base, n, err := m.lookupLocked("open", name)
	if err != nil {
		return nil, err
	}
	switch {
	case n != nil && n.dir != nil:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	case n != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case n == nil && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case n == nil:
		if err := m.opLocked(); err != nil {
			return nil, err
		}
		n = &memNode{modTime: time.Now()}
		dir.dir.change(memChange{name: base, node: n})
	case flag&os.O_TRUNC != 0:
		if err := m.opLocked(); err != nil {
			return nil, err
		}
		n.data = n.data[:0:0]
	}
	return &memFile{m: m, n: n, name: name, readOnly: flag&(os.O_RDWR|os.O_WRONLY) == 0}, nil
}

// ReadFile implements FS.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, n, err := m.existingLocked("read", name)
	if err != nil {
		return nil, err
	}
	if n.dir != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
	}
	return slices.Clone(n.data), nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	base, n, err := m.existingLocked("stat", name)
	if err != nil {
		return nil, err
	}
	return memInfo{name: base, n: n, size: int64(len(n.data))}, nil
}

// existingLocked finds the node at name for op, failing after a crash and
// with fs.ErrNotExist where there is none. Callers hold m.mu.
func (m *MemFS) existingLocked(op, name string) (base string, n *memNode, err error) {
	if m.mu.crashed {
		return "", nil, ErrCrashed
	}
	_, base, n, err = m.lookupLocked(op, name)
	if err == nil && n == nil {
		err = &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return base, n, err
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(name string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.crashed {
		return nil, ErrCrashed
	}
	_, _, n, err := m.lookupLocked("readdir", name)
	if err == nil && (n == nil || n.dir == nil) {
		err = &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(n.dir.cur))
	for k, c := range n.dir.cur {
		out = append(out, fs.FileInfoToDirEntry(memInfo{name: k, n: c, size: int64(len(c.data))}))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(name string, perm fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.crashed {
		return ErrCrashed
	}
	dir := m.mu.root
	for _, p := range splitPath(name) {
		next, ok := dir.dir.cur[p]
		if !ok {
			if err := m.opLocked(); err != nil {
				return err
			}
			next = newMemDir()
			dir.dir.change(memChange{name: p, node: next})
		} else if next.dir == nil {
			return &fs.PathError{Op: "mkdir", Path: name, Err: syscall.ENOTDIR}
		}
		dir = next
	}
	return nil
}

// Rename implements FS. Both names must be in the same directory, which is
// all this package needs, so that the rename is one atomic change.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.crashed {
		return ErrCrashed
	}
	od, ob, n, err := m.lookupLocked("rename", oldname)
	if err == nil && n == nil {
		err = &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	if err != nil {
		return err
	}
	nd, nb, _, err := m.lookupLocked("rename", newname)
	if err != nil {
		return err
	}
	if od != nd {
		return &fs.PathError{Op: "rename", Path: newname, Err: fmt.Errorf("memfs: rename across directories")}
	}
	if err := m.opLocked(); err != nil {
		return err
	}
	od.dir.change(memChange{name: ob}, memChange{name: nb, node: n})
	return nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.crashed {
		return ErrCrashed
	}
	d, b, n, err := m.lookupLocked("remove", name)
	if err == nil && n == nil {
		err = &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return err
	}
	if n.dir != nil && len(n.dir.cur) > 0 {
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	if err := m.opLocked(); err != nil {
		return err
	}
	d.dir.change(memChange{name: b})
	return nil
}

// RemoveAll implements FS. The directory goes as one change of its parent.
func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.crashed {
		return ErrCrashed
	}
	d, b, n, err := m.lookupLocked("remove", name)
	if err != nil || n == nil {
		return nil
	}
	if err := m.opLocked(); err != nil {
		return err
	}
	d.dir.change(memChange{name: b})
	return nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.opLocked(); err != nil {
		return err
	}
	if err := m.mu.failS.hit(); err != nil {
		return &fs.PathError{Op: "fsync", Path: name, Err: err}
	}
	_, _, n, err := m.lookupLocked("fsync", name)
	if err == nil && (n == nil || n.dir == nil) {
		err = &fs.PathError{Op: "fsync", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return err
	}
	n.dir.durable = make(map[string]*memNode, len(n.dir.cur))
	for k, v := range n.dir.cur {
		n.dir.durable[k] = v
	}
	n.dir.pending = nil
	return nil
}

// Lock implements FS.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	f, err := m.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	_ = f.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	key := filepath.Clean(name)
	if m.mu.locks[key] {
		return nil, fmt.Errorf("storage: data directory in use (lock %s): %w", name, syscall.EWOULDBLOCK)
	}
	m.mu.locks[key] = true
	return memLock{m: m, key: key}, nil
}

type memLock struct {
	m   *MemFS
	key string
}

func (l memLock) Close() error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	delete(l.m.mu.locks, l.key)
	return nil
}

type memInfo struct {
	name string
	n    *memNode
	size int64
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.n.dir != nil {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time { return i.n.modTime }
func (i memInfo) IsDir() bool        { return i.n.dir != nil }
func (i memInfo) Sys() any           { return nil }

// memFile is an open MemFS file. It keeps working on its node after the
// file is removed or renamed, as a descriptor does.
type memFile struct {
	m        *MemFS
	n        *memNode
	name     string
	readOnly bool
	closed   bool // guarded by m.mu
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) check() error {
	switch {
	case f.m.mu.crashed:
		return ErrCrashed
	case f.closed:
		return fs.ErrClosed
	}
	return nil
}

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(b, f.n.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	if f.readOnly {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: syscall.EBADF}
	}
	if err := f.m.opLocked(); err != nil {
		return 0, err
	}
	if err := f.m.mu.failW.hit(); err != nil {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: err}
	}
	want := b
	var werr error
	if space := f.m.mu.space; space >= 0 {
		grow := off + int64(len(b)) - int64(len(f.n.data))
		if free := space - usedBy(f.m.mu.root); grow > free {
			// A full disk takes what fits, as a short write.
			fits := max(int64(len(b))-(grow-max(free, 0)), 0)
			want = b[:fits]
			werr = &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
		}
	}
	if end := off + int64(len(want)); end > int64(len(f.n.data)) && len(want) > 0 {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[off:], want)
	f.n.modTime = time.Now()
	return len(want), werr
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(); err != nil {
		return nil, err
	}
	return memInfo{name: filepath.Base(f.name), n: f.n, size: int64(len(f.n.data))}, nil
}

func (f *memFile) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if err := f.m.opLocked(); err != nil {
		return err
	}
	if err := f.m.mu.failS.hit(); err != nil {
		return &fs.PathError{Op: "fsync", Path: f.name, Err: err}
	}
	f.n.durable = slices.Clone(f.n.data)
	return nil
}

func (f *memFile) Datasync() error { return f.Sync() }

func (f *memFile) Truncate(size int64) error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if err := f.m.opLocked(); err != nil {
		return err
	}
	if size <= int64(len(f.n.data)) {
		f.n.data = f.n.data[:size:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	return nil
}

func (f *memFile) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	f.closed = true
	return nil
}
