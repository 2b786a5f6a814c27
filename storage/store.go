package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

const (
	// cleanShutdownFile exists in the store directory only between a clean
	// Store.Close and the next OpenStore.
	cleanShutdownFile = ".skiff_cleanshutdown"
	lockFile          = ".lock"
	// deletingSuffix marks a log directory renamed by Log.Delete.
	deletingSuffix = ".deleting"
)

// Store owns a data directory holding many logs, one directory per
// partition, named "<topic>-<partition>".
type Store struct {
	dir    string
	logger zerolog.Logger
	clean  bool
	lock   *os.File

	mu struct {
		sync.Mutex
		logs   map[string]*Log // nil value: being opened
		closed bool
	}
}

// OpenStore opens (creating) the data directory dir. It finds out whether the
// previous process stopped cleanly and removes the clean-shutdown marker
// durably, so that a crash from now on is seen as unclean by the next start.
func OpenStore(dir string, logger zerolog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, logger: logger, lock: lock}
	s.mu.logs = map[string]*Log{}
	fail := func(err error) (*Store, error) {
		_ = lock.Close()
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail(fmt.Errorf("storage: %w", err))
	}
	hasLogs := false
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() && strings.HasPrefix(name, ".") && strings.HasSuffix(name, deletingSuffix):
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fail(fmt.Errorf("storage: %w", err))
			}
		case e.IsDir() && validLogName(name) == nil:
			hasLogs = true
		}
	}
	marker := filepath.Join(dir, cleanShutdownFile)
	_, err = os.Stat(marker)
	switch {
	case err == nil:
		s.clean = true
		if err := os.Remove(marker); err != nil {
			return fail(fmt.Errorf("storage: %w", err))
		}
		if err := syncDirectory(dir); err != nil {
			return fail(err)
		}
	case errors.Is(err, fs.ErrNotExist):
		s.clean = !hasLogs // nothing to recover in a new directory
	default:
		return fail(fmt.Errorf("storage: %w", err))
	}
	if !s.clean {
		logger.Warn().Str("dir", dir).Msg("storage: previous stop was not clean; logs are recovered as they open")
	}
	return s, nil
}

// CleanStart reports whether the previous stop was clean (or the directory
// was new).
func (s *Store) CleanStart() bool { return s.clean }

// Dir is the store's data directory.
func (s *Store) Dir() string { return s.dir }

// validLogName accepts directory names that cannot escape the store or
// collide with its own files.
func validLogName(name string) error {
	if name == "" || len(name) > 255 || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("storage: invalid log name %q", name)
	}
	return nil
}

// OpenLog creates or opens (recovering it if the previous stop was unclean)
// the log "<name>" under the store directory. A name can be open only once.
func (s *Store) OpenLog(name string, cfg Config) (*Log, error) {
	if err := validLogName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := s.mu.logs[name]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("storage: log %q is already open", name)
	}
	s.mu.logs[name] = nil // reserve the name; opening may take a while
	s.mu.Unlock()

	l, err := openLog(filepath.Join(s.dir, name), name, cfg, s.clean, s.logger.With().Str("log", name).Logger())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || s.mu.closed {
		delete(s.mu.logs, name)
		if err == nil {
			_ = l.Close()
			err = ErrClosed
		}
		return nil, err
	}
	l.store = s
	s.mu.logs[name] = l
	return l, nil
}

// forget removes a closed or deleted log from the store.
func (s *Store) forget(l *Log) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.logs[l.name] == l {
		delete(s.mu.logs, l.name)
	}
}

// LogNames returns the names of the log directories in the store, open or
// not, for start-up.
func (s *Store) LogNames() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && validLogName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// Close closes all open logs (each flushes and fsyncs), then writes the
// clean-shutdown marker, unless something failed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.mu.closed = true
	logs := make([]*Log, 0, len(s.mu.logs))
	for _, l := range s.mu.logs {
		if l != nil {
			logs = append(logs, l)
		}
	}
	s.mu.Unlock()

	var errs []error
	for _, l := range logs {
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, fmt.Errorf("storage: close %s: %w", l.name, err))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, syncDirectory(s.dir))
	}
	if err := errors.Join(errs...); err != nil {
		_ = s.lock.Close()
		return err
	}
	err := WriteFileAtomic(filepath.Join(s.dir, cleanShutdownFile), nil)
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileAtomic writes data to path so that after a crash path holds
// either its old content or data: write a temp file, fsync, rename, fsync
// the directory.
func WriteFileAtomic(path string, data []byte) error {
	return writeFileAtomic(path, data, true)
}

func writeFileAtomic(path string, data []byte, syncDir bool) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".*"+tmpExt)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storage: write %s: %w", path, err)
	}
	if syncDir {
		return syncDirectory(dir)
	}
	return nil
}
