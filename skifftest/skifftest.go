package skifftest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/server"
	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker is an embedded Skiff broker started by New or Start.
type Broker struct {
	opts  options
	clock *Clock
	addr  string // fixed at the first start: Reset restarts on it

	mu struct {
		sync.Mutex
		srv *server.Server
		dir string
	}
	// wipes removes the data directories Reset left behind, off the
	// caller's path; Close waits for them.
	wipes sync.WaitGroup
	// base holds the data directories the broker makes.
	base      string // removed by Close
	dirSeq    int
	closeOnce sync.Once
	closeErr  error
}

type topicSpec struct {
	name       string
	partitions int32
	configs    map[string]string
}

type options struct {
	topics      []topicSpec
	settings    map[string]string
	dataDir     string
	inMemory    bool
	profile     string
	logger      *zerolog.Logger
	testControl string
}

// Option configures New and Start.
type Option func(*options)

// Topic creates a topic at start (and again, empty, on Reset) with the
// given partitions (0: num.partitions) and topic configs by Kafka name.
func Topic(name string, partitions int32, configs map[string]string) Option {
	return func(o *options) {
		o.topics = append(o.topics, topicSpec{name: name, partitions: partitions, configs: maps.Clone(configs)})
	}
}

// Setting sets one broker config by its Kafka name (num.partitions,
// auto.create.topics.enable, ...). It wins over the profile.
func Setting(name, value string) Option {
	return func(o *options) { o.settings[name] = value }
}

// Settings sets broker configs by Kafka name; see Setting.
func Settings(settings map[string]string) Option {
	return func(o *options) {
		for k, v := range settings {
			o.settings[k] = v
		}
	}
}

// DataDir keeps the broker's data in dir, on disk, which survives the
// broker (for restart tests). Reset empties it. The default is InMemory.
func DataDir(dir string) Option {
	return func(o *options) { o.dataDir, o.inMemory = dir, false }
}

// InMemory asks for storage in memory, the default: the broker runs on
// storage's in-memory filesystem (storage.MemFS), a fresh one at each
// start and Reset.
func InMemory() Option {
	return func(o *options) { o.dataDir, o.inMemory = "", true }
}

// Profile picks the broker's defaults: server.ProfileTest (the default
// here) or server.ProfileProduction (Kafka's own defaults).
func Profile(name string) Option {
	return func(o *options) { o.profile = name }
}

// Logger sends the broker's logs to l. By default they are discarded,
// or written to stderr when SKIFF_TEST_LOG is set.
func Logger(l zerolog.Logger) Option {
	return func(o *options) { o.logger = &l }
}

// TestControl also serves the fault-injection HTTP API on addr
// ("127.0.0.1:0" picks a port; see Broker.TestControlURL), for clients
// in other languages.
func TestControl(addr string) Option {
	return func(o *options) { o.testControl = addr }
}

// New starts a broker for t on 127.0.0.1 with a free port and stops it
// when t ends. It fails t if the broker cannot start.
func New(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b, err := Start(opts...)
	if err != nil {
		t.Fatalf("skifftest: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Start starts a broker outside a test (examples, TestMain); Close stops
// it and removes its data unless DataDir was given.
func Start(opts ...Option) (*Broker, error) {
	o := options{settings: map[string]string{}, profile: server.ProfileTest, inMemory: true}
	for _, opt := range opts {
		opt(&o)
	}
	// In memory, the data directories are names on the broker's MemFS:
	// nothing is made on disk.
	base := "/skifftest"
	if !o.inMemory {
		var err error
		if base, err = os.MkdirTemp("", "skifftest-"); err != nil {
			return nil, fmt.Errorf("skifftest: %w", err)
		}
	}
	b, err := start(base, o)
	if err != nil {
		if !o.inMemory {
			os.RemoveAll(base)
		}
		return nil, err
	}
	return b, nil
}

func start(base string, o options) (*Broker, error) {
	if o.logger == nil {
		var out io.Writer = io.Discard
		if os.Getenv("SKIFF_TEST_LOG") != "" {
			out = zerolog.ConsoleWriter{Out: os.Stderr}
		}
		l := zerolog.New(out).With().Timestamp().Logger()
		o.logger = &l
	}
	b := &Broker{opts: o, clock: newClock(), base: base, addr: "127.0.0.1:0"}
	dir := o.dataDir
	if dir == "" {
		dir = b.newDir()
	}
	if err := b.startServer(dir); err != nil {
		b.cleanupBase()
		return nil, err
	}
	return b, nil
}

// newDir names a fresh data directory under base (the store creates it).
func (b *Broker) newDir() string {
	b.dirSeq++
	return filepath.Join(b.base, fmt.Sprintf("data-%d", b.dirSeq))
}

func (b *Broker) startServer(dir string) error {
	var fsys storage.FS // the OS, for DataDir
	if b.opts.inMemory {
		// A fresh in-memory filesystem for each start (and so each
		// Reset): nothing touches the disk, and fsync costs nothing.
		fsys = storage.NewMemFS()
	}
	srv, err := server.New(server.Config{
		Listen:      b.addr,
		DataDir:     dir,
		FS:          fsys,
		Settings:    maps.Clone(b.opts.settings),
		Profile:     b.opts.profile,
		Clock:       b.clock,
		Logger:      *b.opts.logger,
		TestControl: b.testControlAddr(),
	})
	if err != nil {
		return fmt.Errorf("skifftest: %w", err)
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		return fmt.Errorf("skifftest: %w", err)
	}
	b.addr = srv.Addr()
	if err := createTopics(srv, b.opts.topics); err != nil {
		srv.Close()
		return err
	}
	b.mu.Lock()
	b.mu.srv, b.mu.dir = srv, dir
	b.mu.Unlock()
	return nil
}

// testControlAddr keeps the control API on the same port across Reset.
func (b *Broker) testControlAddr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.srv != nil && b.mu.srv.TestControlAddr() != "" {
		return b.mu.srv.TestControlAddr()
	}
	return b.opts.testControl
}

func createTopics(srv *server.Server, topics []topicSpec) error {
	if len(topics) == 0 {
		return nil
	}
	for _, tp := range topics {
		if err := srv.CreateTopic(tp.name, tp.partitions, tp.configs); err != nil {
			return fmt.Errorf("skifftest: creating topic %s: %w", tp.name, err)
		}
	}
	return nil
}

// Addr is the broker's host:port, for clients' seed brokers. It stays the
// same across Reset.
func (b *Broker) Addr() string { return b.addr }

// Server is the running server (a new one after each Reset).
func (b *Broker) Server() *server.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.srv
}

// DataDir is where the broker keeps its data now.
func (b *Broker) DataDir() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.dir
}

// Clock is the broker's clock; see Advance.
func (b *Broker) Clock() *Clock { return b.clock }

// Advance moves the broker's clock forward by d and runs what came due:
// coordinator timers (session timeouts, rebalances), transactions past
// their timeout (aborted, markers written), producer-id expiry and
// retention. What the coordinators then do happens in the background;
// poll for its effect.
func (b *Broker) Advance(d time.Duration) {
	b.clock.Advance(d)
	b.Server().RunTimers()
}

// Reset gives a clean slate: every topic, group, transaction and producer
// id is gone, the topics given to New exist again (empty), faults are
// cleared, and the broker listens on the same address. It restarts the
// broker on fresh storage, so clients see their connections close and
// reconnect, as after a Kafka broker restart.
func (b *Broker) Reset() error {
	b.mu.Lock()
	srv, dir := b.mu.srv, b.mu.dir
	b.mu.Unlock()
	next := b.opts.dataDir
	if next != "" {
		// The same directory: the old broker must be gone first.
		if err := srv.Close(); err != nil {
			return fmt.Errorf("skifftest: reset: %w", err)
		}
		if err := emptyDir(next); err != nil {
			return fmt.Errorf("skifftest: reset: %w", err)
		}
		return b.startServer(next)
	}
	// A fresh directory: the new broker starts as soon as the old one has
	// let go of the address; the old one flushes and its directory is
	// removed in the background (Close waits for that).
	closed := srv.CloseAsync()
	b.wipes.Add(1)
	go func() {
		defer b.wipes.Done()
		<-closed
		os.RemoveAll(dir)
	}()
	return b.startServer(b.newDir())
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the broker. New's broker is closed when its test ends.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.closeErr = b.Server().Close()
		b.wipes.Wait()
		b.cleanupBase()
	})
	return b.closeErr
}

func (b *Broker) cleanupBase() {
	if !b.opts.inMemory {
		os.RemoveAll(b.base)
	}
}

// Client returns a franz-go client seeded with the broker, closed when t
// ends.
func (b *Broker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr())}, opts...)...)
	if err != nil {
		t.Fatalf("skifftest: kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client for the broker, closed when t ends.
func (b *Broker) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(b.Client(t))
}

// TestControlURL is the base URL of the fault-injection HTTP API
// ("http://127.0.0.1:port"), or "" without the TestControl option.
func (b *Broker) TestControlURL() string {
	if a := b.Server().TestControlAddr(); a != "" {
		return "http://" + a
	}
	return ""
}
