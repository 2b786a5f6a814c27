package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

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

// StoreOptions are the broker-wide settings of a store (Kafka broker
// config names in comments). Zero fields take their defaults.
type StoreOptions struct {
	// RecoveryPointInterval is log.flush.offset.checkpoint.interval.ms
	// (default 60 s): how often recovery points are checkpointed besides
	// at segment rolls and Close. Negative: only then.
	RecoveryPointInterval time.Duration
	// ProducerIDExpiration is producer.id.expiration.ms (default 1 day):
	// a producer without an open transaction whose last batch timestamp is
	// older than this is forgotten.
	ProducerIDExpiration time.Duration
	// ProducerIDExpirationCheckInterval is
	// producer.id.expiration.check.interval.ms (default 10 min).
	ProducerIDExpirationCheckInterval time.Duration
	// Now is the clock producer expiry and the log cleaner read; tests
	// inject a fake one.
	Now func() time.Time
	// FS is the filesystem the store uses (default OSFS); tests pass a
	// MemFS to simulate crashes and disk faults.
	FS FS
	// Observer receives flush events for metrics; nil: none.
	Observer *Observer
	// Cleaner configures log compaction (see cleaner.go).
	Cleaner CleanerOptions
	// SegmentFiles is the budget of open sealed-segment files, across
	// every log of the store (see segfiles.go); 0: DefaultSegmentFiles.
	// Active segments and files being read are open besides, and files
	// in use over the budget are closed once their readers are done.
	SegmentFiles int
}

func (o StoreOptions) withDefaults() StoreOptions {
	if o.RecoveryPointInterval == 0 {
		o.RecoveryPointInterval = 60 * time.Second
	}
	if o.ProducerIDExpiration <= 0 {
		o.ProducerIDExpiration = 24 * time.Hour
	}
	if o.ProducerIDExpirationCheckInterval <= 0 {
		o.ProducerIDExpirationCheckInterval = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FS == nil {
		o.FS = OSFS
	}
	o.Cleaner = o.Cleaner.withDefaults()
	if o.SegmentFiles <= 0 {
		o.SegmentFiles = DefaultSegmentFiles()
	}
	return o
}

// Store owns a data directory holding many logs, one directory per
// partition, named "<topic>-<partition>".
//
// Lock order: ckptMu, then mu, then a Log's mu (a Log never calls into its
// store with its mu held, except for the non-blocking requestCheckpoint).
// No lock of the store is held during disk I/O except ckptMu, which only
// checkpoint writers take. The cleaner threads take mu only to list the
// open logs, then each log's mu on its own to choose and to swap; a log's
// cleaning does its I/O with no lock held.
type Store struct {
	dir    string
	logger zerolog.Logger
	clean  bool
	fs     FS
	lock   io.Closer
	opts   StoreOptions
	files  *fileBudget // open sealed-segment files, shared by every log

	ckptMu   sync.Mutex    // serializes writes of the recovery point checkpoint
	ckptKick chan struct{} // requestCheckpoint -> background loop
	quit     chan struct{} // closed by Close: the background loop stops
	bg       sync.WaitGroup

	mu struct {
		sync.Mutex
		logs   map[string]*Log // nil value: being opened
		closed bool
		// recovery holds the recovery points of logs that are not open:
		// read from the checkpoint at start, or left by a log as it closed.
		recovery map[string]int64
	}
}

// OpenStore opens (creating) the data directory dir with default options.
// See OpenStoreWith.
func OpenStore(dir string, logger zerolog.Logger) (*Store, error) {
	return OpenStoreWith(dir, logger, StoreOptions{})
}

// OpenStoreWith opens (creating) the data directory dir. It finds out
// whether the previous process stopped cleanly and removes the
// clean-shutdown marker durably, so that a crash from now on is seen as
// unclean by the next start. It starts the store's background loop
// (recovery point checkpoints, producer id expiry), which Close stops.
func OpenStoreWith(dir string, logger zerolog.Logger, opts StoreOptions) (*Store, error) {
	opts = opts.withDefaults()
	fsys := opts.FS
	if err := mkdirDurable(fsys, dir); err != nil {
		return nil, err
	}
	lock, err := fsys.Lock(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, logger: logger, fs: fsys, lock: lock, opts: opts, files: newFileBudget(opts.SegmentFiles),
		ckptKick: make(chan struct{}, 1), quit: make(chan struct{})}
	s.mu.logs = map[string]*Log{}
	fail := func(err error) (*Store, error) {
		_ = lock.Close()
		return nil, err
	}
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return fail(fmt.Errorf("storage: %w", err))
	}
	hasLogs := false
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() && strings.HasPrefix(name, ".") && strings.HasSuffix(name, deletingSuffix):
			if err := fsys.RemoveAll(filepath.Join(dir, name)); err != nil {
				return fail(fmt.Errorf("storage: %w", err))
			}
		case e.IsDir() && validLogName(name) == nil:
			hasLogs = true
		case !e.IsDir() && strings.HasPrefix(name, recoveryPointFile+".") && strings.HasSuffix(name, tmpExt):
			// A checkpoint write cut short by a crash.
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil {
				return fail(fmt.Errorf("storage: %w", err))
			}
		}
	}
	points, err := readRecoveryPoints(fsys, dir)
	if err != nil {
		// Kafka's choice too: without trustworthy recovery points every
		// log is recovered whole.
		logger.Warn().Err(err).Str("dir", dir).Msg("storage: ignoring recovery point checkpoint")
	}
	s.mu.recovery = points
	marker := filepath.Join(dir, cleanShutdownFile)
	_, err = fsys.Stat(marker)
	switch {
	case err == nil:
		s.clean = true
		if err := fsys.Remove(marker); err != nil {
			return fail(fmt.Errorf("storage: %w", err))
		}
		if err := syncDirectory(fsys, dir); err != nil {
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
	s.bg.Add(1)
	go s.background()
	if !s.opts.Cleaner.Disabled {
		th := newThrottler(s.opts.Cleaner.IOMaxBytesPerSecond, s.quit)
		for range s.opts.Cleaner.Threads {
			s.bg.Add(1)
			go s.runCleaner(th)
		}
	}
	return s, nil
}

// background checkpoints recovery points and expires idle producers on
// their intervals until Close.
func (s *Store) background() {
	defer s.bg.Done()
	var ckptC <-chan time.Time // nil: no periodic checkpoint
	if s.opts.RecoveryPointInterval > 0 {
		ckpt := time.NewTicker(s.opts.RecoveryPointInterval)
		defer ckpt.Stop()
		ckptC = ckpt.C
	}
	expire := time.NewTicker(s.opts.ProducerIDExpirationCheckInterval)
	defer expire.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-s.ckptKick:
		case <-ckptC:
		case <-expire.C:
			s.ExpireProducers()
			continue
		}
		if err := s.CheckpointRecoveryPoints(); err != nil {
			// Only costs a longer recovery after a crash.
			s.logger.Warn().Err(err).Str("dir", s.dir).Msg("storage: writing the recovery point checkpoint")
		}
	}
}

// openLogs returns the logs that are open now.
func (s *Store) openLogs() []*Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	logs := make([]*Log, 0, len(s.mu.logs))
	for _, l := range s.mu.logs {
		if l != nil {
			logs = append(logs, l)
		}
	}
	return logs
}

// ExpireProducers forgets, in every open log, the producers that have been
// idle longer than StoreOptions.ProducerIDExpiration (see
// Log.ExpireProducers). The background loop calls it every
// ProducerIDExpirationCheckInterval.
func (s *Store) ExpireProducers() {
	now := s.opts.Now().UnixMilli()
	for _, l := range s.openLogs() {
		l.ExpireProducers(now)
	}
}

// CleanStart reports whether the previous stop was clean (or the directory
// was new).
func (s *Store) CleanStart() bool { return s.clean }

// OpenSegmentFiles is the number of sealed-segment files open now, which
// StoreOptions.SegmentFiles bounds while they are idle.
func (s *Store) OpenSegmentFiles() int { return s.files.Open() }

// FS is the filesystem the store's data directory lives on.
func (s *Store) FS() FS { return s.fs }

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
	rp, ok := s.mu.recovery[name]
	s.mu.Unlock()
	checkpointed := rp
	if !ok {
		checkpointed = -1
	}
	if !ok || s.clean {
		rp = -1 // validate every segment's tail (clean: nothing to validate)
	}
	env := logEnv{
		fs:                 s.fs,
		clean:              s.clean,
		recoveryPoint:      rp,
		checkpointed:       checkpointed,
		now:                s.opts.Now,
		producerExpiration: s.opts.ProducerIDExpiration.Milliseconds(),
		onDurableRoll:      s.requestCheckpoint,
		observer:           s.opts.Observer,
		files:              s.files,
	}
	l, err := openLog(filepath.Join(s.dir, name), name, cfg, env, s.logger.With().Str("log", name).Logger())
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
	delete(s.mu.recovery, name) // the open log speaks for itself now
	return l, nil
}

// forget removes a closed or deleted log from the store. recoveryPoint is
// the closed log's final recovery point, kept for the next checkpoint, or
// -1 for a deleted log, whose entry goes.
func (s *Store) forget(l *Log, recoveryPoint int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.logs[l.name] == l {
		delete(s.mu.logs, l.name)
		if recoveryPoint >= 0 {
			s.mu.recovery[l.name] = recoveryPoint
		} else {
			delete(s.mu.recovery, l.name)
		}
	}
}

// LogNames returns the names of the log directories in the store, open or
// not, for start-up.
func (s *Store) LogNames() ([]string, error) {
	entries, err := s.fs.ReadDir(s.dir)
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
	close(s.quit)
	s.bg.Wait()

	var errs []error
	for _, l := range logs {
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, fmt.Errorf("storage: close %s: %w", l.name, err))
		}
	}
	if len(errs) == 0 {
		// The closed logs left their final recovery points in
		// s.mu.recovery; this also fsyncs the directory.
		errs = append(errs, s.CheckpointRecoveryPoints())
	}
	if err := errors.Join(errs...); err != nil {
		_ = s.lock.Close()
		return err
	}
	err := writeFileAtomic(s.fs, filepath.Join(s.dir, cleanShutdownFile), nil, true)
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}
