package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/acl"
	"github.com/skiffmq/skiff/clusterstate"
	"github.com/skiffmq/skiff/coordinator"
	"github.com/skiffmq/skiff/coordinator/share"
	"github.com/skiffmq/skiff/coordinator/txn"
	"github.com/skiffmq/skiff/storage"
)

// Server is a Kafka-compatible broker. Create it with New, start it with
// Start, and stop it with Close; it can run inside a test on port 0:
//
//	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Close()
//	client, _ := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
type Server struct {
	cfg    Config
	log    zerolog.Logger
	store  *storage.Store
	meta   *cluster
	repl   *replicaManager // replication; nil on a single node (no Config.Cluster)
	groups *coordinator.Groups
	txn    *txn.Coordinator   // transactions and producer ids; see txn.go
	shares *share.Coordinator // share groups (KIP-932); see share.go
	quotas *quotaManager      // client quota enforcement; see quota.go
	authz  *acl.Authorizer    // nil: no authorizer.class.name; see authz.go

	lns []net.Listener // one per listener, in Config order
	// quitCtx ends when Close begins; requests in progress then finish
	// early (long polls answer with what they have).
	quitCtx context.Context
	quit    context.CancelFunc
	started time.Time

	fetchSessions *fetchSessions
	fetchPool     *fetchPool // fetch.memory.pool.bytes
	stats         serverStats
	metrics       *metrics       // nil with Config.DisableMetrics; see metrics.go
	http          *httpAdmin     // nil without Config.HTTPListen; see httpadmin.go
	reqMem        *requestMemory // queued.max.request.bytes; see requestmemory.go
	frames        *framePool     // request frame buffers; see framepool.go
	connQuotas    *connQuotas    // max.connections and friends; see connlimits.go
	connRates     *connRates     // connection creation rates; see connrate.go

	// faults is nil until fault injection is first used (Config.TestControl
	// or InjectFault): the request path checks it and nothing else.
	faults atomic.Pointer[faultSet]
	// testControl serves the fault-injection HTTP API on its own
	// listener when Config.TestControl is set; see faults_http.go.
	testControl *testControlListener

	// closing is set when Close begins, before connections are told to
	// stop: from then on a read deadline means "stop", not an idle check.
	closing atomic.Bool

	// authFailures counts failed authentications; authFailLogged is when
	// one was last logged (Unix nanoseconds), to rate-limit the log.
	authFailures   atomic.Int64
	authFailLogged atomic.Int64

	wg sync.WaitGroup // every goroutine the server owns

	mu struct {
		sync.Mutex
		conns  map[net.Conn]context.CancelFunc
		closed bool
	}
	closeOnce sync.Once
	closeErr  error

	// afterTxnVerify, if set (by tests of this package only, before
	// Start), runs between a transactional produce's verification with the
	// coordinator and its append: the window a late batch races through.
	afterTxnVerify func(topic string, partition int32)
}

// New validates cfg and opens the data directory, recovering the logs if
// the previous stop was not clean. It does not listen yet.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.defaultReplication > 1 && cfg.Cluster == nil {
		return nil, fmt.Errorf("server: default.replication.factor %d needs a cluster (--etcd-endpoints or --embedded-etcd); a single node holds one replica", cfg.defaultReplication)
	}
	s := &Server{
		cfg:           cfg,
		log:           cfg.Logger,
		fetchSessions: newFetchSessions(),
		reqMem:        newRequestMemory(cfg.queuedMaxRequestBytes),
		frames:        newFramePool(),
		fetchPool:     newFetchPool(cfg.fetchMemoryPoolBytes),
		connQuotas:    newConnQuotas(cfg.connLimits),
	}
	s.mu.conns = make(map[net.Conn]context.CancelFunc)
	// s.meta is set below, before Start accepts anything.
	s.connRates = newConnRates(cfg.connLimits.rate, cfg.connLimits.listenerRates, func() []clusterstate.Quota { return s.meta.clientQuotas() })
	s.quitCtx, s.quit = context.WithCancel(context.Background())
	s.metrics = newMetrics(s)
	// The HTTP listener comes up before recovery, so that /healthz answers
	// and /readyz says "recovering" while a large data dir is opened.
	if err := s.startHTTP(); err != nil {
		return nil, err
	}
	s.lifecycle(StageRecovering)
	recoveryStart := time.Now()
	opts := cfg.storeOptions()
	opts.Observer = s.metrics.storageObserver()
	store, err := storage.OpenStoreWith(cfg.DataDir, s.log, opts)
	if err != nil {
		s.stopHTTP()
		return nil, fmt.Errorf("server: opening data dir: %w", err)
	}
	s.store = store
	if err := s.cfg.scramStore().open(store.FS(), cfg.DataDir, cfg.ScramUsers); err != nil {
		store.Close()
		return nil, err
	}
	var onChange func()
	if cfg.Cluster != nil {
		s.repl = newReplicaManager(s)
		onChange = s.repl.changed
	}
	meta, err := openCluster(&s.cfg, store, s.log, onChange)
	if err != nil {
		store.Close()
		s.stopHTTP()
		return nil, err
	}
	s.meta = meta
	s.quotas = newQuotaManager(meta)
	s.authz = newAuthorizer(&s.cfg, meta)
	if s.groups, err = s.newGroups(); err != nil {
		store.Close()
		s.stopHTTP()
		return nil, fmt.Errorf("server: loading consumer groups: %w", err)
	}
	if s.txn, err = s.newTxnCoordinator(); err != nil {
		s.groups.Close()
		store.Close()
		s.stopHTTP()
		return nil, fmt.Errorf("server: loading transactions: %w", err)
	}
	if s.shares, err = s.newShares(); err != nil {
		s.txn.Close()
		s.groups.Close()
		store.Close()
		return nil, fmt.Errorf("server: loading share groups: %w", err)
	}
	s.recovered(time.Since(recoveryStart))
	return s, nil
}

// Start listens and begins serving clients in the background.
func (s *Server) Start() error {
	lns, err := s.listen() // listeners.go
	if err != nil {
		return err
	}
	s.lns = lns
	s.metrics.setListeners(lns, s.cfg.listeners)
	// In a cluster the broker registers once its listeners are bound
	// (with port 0, their ports are known only now).
	if err := s.joinCluster(); err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	if s.cfg.TestControl != "" {
		s.faultSet() // record requests from the first one
		if s.testControl, err = s.startTestControl(s.cfg.TestControl); err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return err
		}
	}
	s.started = time.Now()
	// Every listener's bound address, NAME=host:port: with port 0 this is
	// how a supervisor (or a test) learns where each one is.
	bound := make([]string, len(lns))
	for i, ln := range lns {
		bound[i] = s.cfg.listeners[i].name + "=" + ln.Addr().String()
	}
	s.log.Info().Str("listen", lns[0].Addr().String()).Str("listeners", strings.Join(bound, ",")).
		Str("advertise", net.JoinHostPort(s.cfg.advertHost, strconv.Itoa(int(s.cfg.advertPort)))).
		Str("data_dir", s.cfg.DataDir).Str("http", s.HTTPAddr()).Bool("clean_start", s.store.CleanStart()).
		Str("profile", s.cfg.profileName()).Str("profile_settings", s.cfg.profileSummary()).Msg("skiff started")
	for i, ln := range lns {
		l := &s.cfg.listeners[i]
		s.goTracked(func() { s.acceptLoop(ln, l) })
	}
	s.goTracked(s.retentionLoop)
	if s.repl != nil {
		s.goTracked(s.repl.run)
	}
	s.txn.Start()
	s.http.setReady()
	return nil
}

// Addr is the address the server listens on, host:port; with port 0 it has
// the port the system picked. It is the advertised address unless
// Config.Advertise says otherwise.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.cfg.advertHost, strconv.Itoa(int(s.cfg.advertPort)))
}

// goTracked starts f in a goroutine the server waits for on Close.
func (s *Server) goTracked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) acceptLoop(ln net.Listener, l *listenerSpec) {
	var backoff acceptBackoff
	lm := s.metrics.listener(ln)
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.quitCtx.Done():
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				s.log.Error().Err(err).Str("listener", ln.Addr().String()).Msg("listener closed; no longer accepting on it")
				return
			}
			// Out of file descriptors (EMFILE, ENFILE), buffers or memory:
			// the connection waits in the kernel's backlog. Kafka's
			// acceptor logs and carries on; so does Skiff, after a pause
			// so that a persistent error does not spin.
			if !backoff.wait(s.quitCtx, err, s.log, ln.Addr().String()) {
				return
			}
			continue
		}
		backoff.recovered(s.log, ln.Addr().String())
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
			if n := s.cfg.socketSendBufferBytes; n > 0 {
				tc.SetWriteBuffer(n)
			}
		}
		s.mu.Lock()
		closed := s.mu.closed
		if !closed {
			s.wg.Add(1)
		}
		s.mu.Unlock()
		if closed {
			nc.Close()
			return
		}
		// Counted before it is served (and waiting here while the broker
		// or listener is full, as Kafka's acceptor does); the TLS
		// handshake is part of the connection.
		ip, admitted := s.admit(nc, l)
		if !admitted {
			s.wg.Done()
			continue
		}
		lm.connOpened()
		go func() {
			defer s.wg.Done()
			defer s.connQuotas.release(l.name, ip)
			defer lm.connClosed()
			s.serveConn(nc, l)
		}()
	}
}

func (s *Server) trackConn(nc net.Conn, cancel context.CancelFunc, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		s.mu.conns[nc] = cancel
		if s.mu.closed {
			// Accepted just as Close began: serve nothing more.
			nc.SetReadDeadline(time.Now())
		}
	} else {
		delete(s.mu.conns, nc)
	}
}

// retentionLoop applies retention.ms / retention.bytes every
// log.retention.check.interval.ms, as Kafka's log manager does.
func (s *Server) retentionLoop() {
	t := time.NewTicker(time.Duration(s.cfg.retentionCheckMs) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.quitCtx.Done():
			return
		case <-t.C:
			s.meta.enforceRetention(s.cfg.clock().Now())
		}
	}
}

// gracePeriod bounds how long Close waits for in-flight requests.
const gracePeriod = 5 * time.Second

// Close stops accepting connections, lets in-flight requests finish (up to
// a grace period), then flushes and closes every log. Safe to call twice.
func (s *Server) Close() error { return s.closeWith(nil) }

// CloseAsync begins Close and returns once the server has stopped
// accepting connections and reading requests, so that its ports are free
// to listen on again; the rest (answering requests already read, flushing
// the logs) goes on in the background, and the channel receives Close's
// result when it is done. A test kit restarting a broker on fresh storage
// at the same address does not wait for the old one's flush.
func (s *Server) CloseAsync() <-chan error {
	stopped := make(chan struct{})
	res := make(chan error, 1)
	go func() { res <- s.closeWith(func() { close(stopped) }) }()
	<-stopped
	return res
}

// closeWith closes the server and calls stopped (if not nil) once the
// listeners are closed and connections have stopped reading.
func (s *Server) closeWith(stopped func()) error {
	called := false
	s.closeOnce.Do(func() {
		s.http.setStopping()
		s.lifecycle(StageStopping)
		s.closing.Store(true)
		s.mu.Lock()
		s.mu.closed = true
		conns := make([]net.Conn, 0, len(s.mu.conns))
		for nc := range s.mu.conns {
			conns = append(conns, nc)
		}
		s.mu.Unlock()
		s.quit()
		for _, ln := range s.lns {
			ln.Close()
		}
		s.connRates.closeHeld()
		if s.testControl != nil {
			s.testControl.close()
		}
		// Stop reading new requests; requests already read are answered.
		for _, nc := range conns {
			nc.SetReadDeadline(time.Now())
		}
		if stopped != nil {
			called = true
			stopped()
		}
		done := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(gracePeriod):
			s.log.Warn().Msg("in-flight requests did not finish in time; closing connections")
			s.mu.Lock()
			for _, cancel := range s.mu.conns {
				cancel()
			}
			s.mu.Unlock()
			<-done
		}
		s.shares.Close()
		s.txn.Close()
		s.groups.Close()
		s.meta.Close() // stops applying other brokers' changes
		if s.cfg.Cluster != nil {
			// Leaving revokes the lease: the controller moves this
			// broker's leaderships at once instead of after the TTL.
			if err := s.cfg.Cluster.Close(); err != nil {
				s.log.Warn().Err(err).Msg("leaving the cluster")
			}
		}
		s.closeErr = s.store.Close()
		s.stopHTTP()
		s.log.Info().Msg("skiff stopped")
	})
	if stopped != nil && !called {
		stopped() // closed before, or by another caller meanwhile
	}
	return s.closeErr
}

// Stats are counters about a running server.
type Stats struct {
	Connections   int   // open client connections
	ParkedFetches int64 // fetches waiting for data (long polls)
	// QueuedRequestBytes is the request memory held by frames being read
	// or waiting to be handled (counted against queued.max.request.bytes;
	// 0 when that is unbounded).
	QueuedRequestBytes int64
	// OffsetsReplayed is how many __consumer_offsets records the group
	// coordinator replayed at start-up (compaction bounds it).
	OffsetsReplayed int64
	// FetchBytesHeld is what fetch responses being built or sent hold of
	// fetch.memory.pool.bytes (more than the pool when first batches were
	// read on credit).
	FetchBytesHeld int64
	// AuthFailures counts failed SASL authentications since start.
	AuthFailures int64
	// FetchReadsHeld is how many partition reads of fetch responses being
	// built or sent hold segment files open (storage.FileRead).
	FetchReadsHeld int64
}

type serverStats struct {
	parkedFetches  atomic.Int64
	fetchReadsHeld atomic.Int64
}

// Stats returns the server's current counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	conns := len(s.mu.conns)
	s.mu.Unlock()
	return Stats{Connections: conns, ParkedFetches: s.stats.parkedFetches.Load(),
		QueuedRequestBytes: s.reqMem.inUse(),
		FetchBytesHeld:     s.cfg.fetchMemoryPoolBytes - s.fetchPool.available(),
		AuthFailures:       s.authFailures.Load(),
		OffsetsReplayed:    s.groups.ReplayedRecords(),
		FetchReadsHeld:     s.stats.fetchReadsHeld.Load()}
}
