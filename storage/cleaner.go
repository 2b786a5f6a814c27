package storage

import (
	"errors"
	"sync"
	"time"
)

// CleanerOptions are the broker-wide log cleaner settings (Kafka's names in
// comments). Zero fields take Kafka's defaults.
type CleanerOptions struct {
	// Disabled is log.cleaner.enable=false: no log is compacted.
	Disabled bool
	// Threads is log.cleaner.threads (default 1): logs cleaned at once.
	Threads int
	// DedupeBufferSize is log.cleaner.dedupe.buffer.size (default 128 MiB),
	// shared by the threads: it bounds the keys one pass dedupes.
	DedupeBufferSize int64
	// IOMaxBytesPerSecond is log.cleaner.io.max.bytes.per.second (default
	// unlimited): bytes read and written by all threads together.
	IOMaxBytesPerSecond float64
	// Backoff is log.cleaner.backoff.ms (default 15 s): how long a thread
	// sleeps when no log is due.
	Backoff time.Duration
}

func (o CleanerOptions) withDefaults() CleanerOptions {
	if o.Threads <= 0 {
		o.Threads = 1
	}
	if o.DedupeBufferSize <= 0 {
		o.DedupeBufferSize = 128 << 20
	}
	if o.Backoff <= 0 {
		o.Backoff = 15 * time.Second
	}
	return o
}

// throttler is Kafka's cleaner Throttler: it holds the cleaner threads to
// an I/O rate by sleeping, and wakes early when the store closes.
type throttler struct {
	rate  float64 // bytes per second; <= 0: unlimited
	quit  <-chan struct{}
	mu    sync.Mutex
	start time.Time
	bytes float64
}

func newThrottler(rate float64, quit <-chan struct{}) *throttler {
	return &throttler{rate: rate, quit: quit, start: time.Now()}
}

var errCleanerStopped = errors.New("storage: compact: cleaner stopped")

// wait accounts n bytes and sleeps for as long as they put the threads
// ahead of the rate. It fails once the store closes.
func (t *throttler) wait(n int) error {
	if t.rate <= 0 {
		select {
		case <-t.quit:
			return errCleanerStopped
		default:
			return nil
		}
	}
	t.mu.Lock()
	t.bytes += float64(n)
	ahead := time.Duration(t.bytes/t.rate*float64(time.Second)) - time.Since(t.start)
	if elapsed := time.Since(t.start); elapsed > time.Second {
		// A fresh window each second, so that an idle spell is not credit.
		t.start, t.bytes = time.Now(), 0
	}
	t.mu.Unlock()
	if ahead < time.Millisecond {
		return nil
	}
	timer := time.NewTimer(ahead)
	defer timer.Stop()
	select {
	case <-t.quit:
		return errCleanerStopped
	case <-timer.C:
		return nil
	}
}

// runCleaner is one cleaner thread: it cleans the filthiest due log, or
// sleeps log.cleaner.backoff.ms, until the store closes. Threads choose
// logs under the store's lock only long enough to list them; a log being
// cleaned is not due for another thread (compactState.running).
func (s *Store) runCleaner(th *throttler) {
	defer s.bg.Done()
	opts := s.opts.Cleaner
	mapBytes := opts.DedupeBufferSize / int64(opts.Threads)
	for {
		l := s.filthiestLog()
		if l == nil {
			timer := time.NewTimer(opts.Backoff)
			select {
			case <-s.quit:
				timer.Stop()
				return
			case <-timer.C:
			}
			continue
		}
		start := time.Now()
		st, err := l.compact(s.opts.Now().UnixMilli(), mapBytes, th)
		switch {
		case errors.Is(err, errCleanerStopped) || errors.Is(err, ErrClosed):
		case err != nil:
			// Kafka marks the partition uncleanable; Skiff logs and tries
			// again after the backoff.
			l.logger.Error().Err(err).Str("dir", l.dir).Msg("storage: compaction failed")
			select {
			case <-s.quit:
				return
			case <-time.After(opts.Backoff):
			}
		case st.Cleaned:
			l.logger.Info().Str("dir", l.dir).Float64("dirty_ratio", st.DirtyRatio).
				Int64("first_dirty", st.FirstDirty).Int64("map_end", st.MapEnd).Int("keys", st.Keys).
				Int("segments_in", st.SegmentsIn).Int("segments_out", st.SegmentsOut).
				Int64("bytes_read", st.BytesRead).Int64("bytes_written", st.BytesWritten).
				Int64("records_read", st.RecordsRead).Int64("records_kept", st.RecordsKept).
				Dur("took", time.Since(start)).Msg("storage: compacted log")
		}
		select {
		case <-s.quit:
			return
		default:
		}
	}
}

// filthiestLog returns the due log with the highest dirty ratio, overdue
// ones first, or nil.
func (s *Store) filthiestLog() *Log {
	now := s.opts.Now()
	var best *Log
	bestRatio, bestMust := -1.0, false
	for _, l := range s.openLogs() {
		l.mu.Lock()
		c, ok := l.cleanableLocked(now.UnixMilli())
		due := ok && c.due(l.mu.cfg.MinCleanableDirtyRatio)
		l.mu.Unlock()
		if !due {
			continue
		}
		r := c.ratio()
		if (c.must && !bestMust) || (c.must == bestMust && r > bestRatio) {
			best, bestRatio, bestMust = l, r, c.must
		}
	}
	return best
}
