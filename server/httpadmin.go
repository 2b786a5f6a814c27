package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpAdmin is the admin HTTP listener (skiff.http.listeners): /metrics,
// /healthz, /readyz and, with pprof on, /debug/pprof/. It starts before
// the logs are recovered and stops after they are closed, so that an
// orchestrator sees a live process that is not ready yet, then ready, then
// not ready while it drains.
type httpAdmin struct {
	ln    net.Listener
	srv   *http.Server
	done  chan struct{} // closed when Serve returns
	state atomic.Int32  // readiness; see the admin* constants
}

const (
	adminRecovering int32 = iota
	adminReady
	adminStopping
)

var readyText = [...]string{
	adminRecovering: "recovering logs\n",
	adminReady:      "ready\n",
	adminStopping:   "shutting down\n",
}

// startHTTP binds the HTTP listener, if one is configured, and serves it.
func (s *Server) startHTTP() error {
	if s.cfg.HTTPListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("server: http listener %s: %w", s.cfg.HTTPListen, err)
	}
	h := &httpAdmin{ln: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	if s.metrics != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	} else {
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics are disabled (skiff.metrics.enable=false)", http.StatusNotFound)
		})
	}
	// healthz answers as long as the process serves HTTP: a liveness probe.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := h.state.Load()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if st != adminReady {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprint(w, readyText[st])
	})
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Str("listen", ln.Addr().String()).Msg("http listener stopped")
		}
	}()
	s.http = h
	s.log.Info().Str("listen", ln.Addr().String()).Bool("pprof", s.cfg.Pprof).Msg("http listening")
	return nil
}

// stopHTTP closes the HTTP listener, letting scrapes in progress finish
// for a moment.
func (s *Server) stopHTTP() {
	h := s.http
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.srv.Close()
	}
	<-h.done
}

// HTTPAddr is the address the HTTP listener is bound to, "" without one.
func (s *Server) HTTPAddr() string {
	if s.http == nil {
		return ""
	}
	return s.http.ln.Addr().String()
}

func (h *httpAdmin) setReady() {
	if h != nil {
		h.state.CompareAndSwap(adminRecovering, adminReady)
	}
}

func (h *httpAdmin) setStopping() {
	if h != nil {
		h.state.Store(adminStopping)
	}
}

func (s *Server) lifecycle(st Stage) {
	if s.cfg.Lifecycle != nil {
		s.cfg.Lifecycle(st, s.HTTPAddr())
	}
}

// recovered records how long opening and recovering the data dir took.
func (s *Server) recovered(d time.Duration) {
	s.log.Info().Dur("took", d).Bool("clean_start", s.store.CleanStart()).Msg("logs recovered")
	if s.metrics != nil {
		s.metrics.recovery.Store(int64(d))
		s.metrics.recovered.Store(true)
	}
}
