package coordinator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Kafka error codes used throughout the package.
var (
	errCoordinatorNotAvailable = kerr.CoordinatorNotAvailable.Code
	errNotCoordinator          = kerr.NotCoordinator.Code
	errInvalidGroupID          = kerr.InvalidGroupID.Code
	errUnknownMemberID         = kerr.UnknownMemberID.Code
	errFencedInstanceID        = kerr.FencedInstanceID.Code
	errIllegalGeneration       = kerr.IllegalGeneration.Code
	errRebalanceInProgress     = kerr.RebalanceInProgress.Code
	errInconsistentProtocol    = kerr.InconsistentGroupProtocol.Code
	errGroupIDNotFound         = kerr.GroupIDNotFound.Code
	errNonEmptyGroup           = kerr.NonEmptyGroup.Code
	errUnknownServerError      = kerr.UnknownServerError.Code
	errUnsupportedVersion      = kerr.UnsupportedVersion.Code
	errStaleMemberEpoch        = kerr.StaleMemberEpoch.Code
)

// Groups is the group coordinator of a single-node broker: it coordinates
// every group (classic and KIP-848) and stores committed offsets in
// __consumer_offsets.
//
// Concurrency: one mutex, mu, guards all group and offset state, so every
// state transition is a plain sequential step (as in Kafka's single-threaded
// coordinator shards). Requests that must wait (JoinGroup, SyncGroup, every
// write) park on a channel after releasing mu. Appends to the log happen
// outside mu, one log partition at a time (see logWriter), and their
// results are applied under mu in log order.
type Groups struct {
	cfg        Config
	clock      Clock
	logger     zerolog.Logger
	topics     TopicLookup
	createLogs func() ([]Log, error)
	// createStreamsTopics creates streams groups' internal topics, called
	// with mu released.
	createStreamsTopics func([]StreamsInternalTopic)
	closing             chan struct{} // closed by Close; parked requests return
	replayed            int64         // records replayed from __consumer_offsets by New; set before g is shared

	// createMu serializes ensureLogs' creation of __consumer_offsets,
	// which opens its logs and saves the cluster metadata with mu
	// released. logsReady is set once mu.writers is filled. Lock order:
	// createMu, then mu.
	createMu  sync.Mutex
	logsReady atomic.Bool

	mu struct {
		sync.Mutex
		closed  bool
		groups  map[string]*group
		offsets map[string]map[string]map[int32]*offsetEntry // group -> topic -> partition
		txn     txnOffsets
		writers []*logWriter // one per __consumer_offsets partition; empty until the topic exists
		dirty   []*logWriter // writers with queued writes, flushed by unlock
		expiry  timerSlot
		// streamsConfigs are the streams.* group configs per group id.
		streamsConfigs map[string]map[string]string
	}
}

// New builds the coordinator and replays __consumer_offsets from deps.Logs.
func New(cfg Config, deps Deps) (*Groups, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Topics == nil {
		return nil, errors.New("coordinator: Deps.Topics is required")
	}
	g := &Groups{
		cfg:                 cfg,
		clock:               deps.Clock,
		logger:              deps.Logger,
		topics:              deps.Topics,
		createLogs:          deps.CreateLogs,
		createStreamsTopics: deps.CreateStreamsTopics,
		closing:             make(chan struct{}),
	}
	if g.clock == nil {
		g.clock = SystemClock()
	}
	g.mu.groups = make(map[string]*group)
	g.mu.streamsConfigs = make(map[string]map[string]string)
	for id, cfg := range deps.StreamsGroupConfigs {
		for _, k := range streamsConfigNames {
			if v, ok := cfg[k]; ok {
				if g.mu.streamsConfigs[id] == nil {
					g.mu.streamsConfigs[id] = map[string]string{}
				}
				g.mu.streamsConfigs[id][k] = v
			}
		}
	}
	g.mu.offsets = make(map[string]map[string]map[int32]*offsetEntry)
	g.mu.txn.init()

	g.lock()
	defer g.unlock()
	for i, l := range deps.Logs {
		if err := g.replayLocked(i, l); err != nil {
			return nil, err
		}
		g.mu.writers = append(g.mu.writers, newLogWriter(g, l))
	}
	g.logsReady.Store(len(g.mu.writers) > 0)
	g.onLoadedLocked()
	g.scheduleExpiryLocked()
	g.logger.Info().Int64("records", g.replayed).Int("partitions", len(deps.Logs)).Msg("coordinator: replayed __consumer_offsets")
	return g, nil
}

// ReplayedRecords is how many __consumer_offsets records New replayed: after
// compaction, about one per live group member, offset and group.
func (g *Groups) ReplayedRecords() int64 { return g.replayed }

// Close stops all timers, answers parked requests with NOT_COORDINATOR and
// waits for in-flight appends. Later requests get COORDINATOR_NOT_AVAILABLE.
func (g *Groups) Close() {
	g.lock()
	if g.mu.closed {
		g.unlock()
		return
	}
	g.mu.closed = true
	close(g.closing)
	g.mu.expiry.cancel()
	for _, grp := range g.mu.groups {
		grp.stopTimers()
	}
	writers := g.mu.writers
	g.unlock()
	for _, w := range writers {
		w.drain()
	}
}

func (grp *group) stopTimers() {
	grp.joinTimer.cancel()
	grp.syncTimer.cancel()
	for _, t := range grp.pendingJoin {
		t.cancel()
	}
	for _, m := range grp.members {
		m.hb.cancel()
	}
	if grp.sg != nil {
		grp.sg.stopTimers()
	}
	if grp.cg != nil {
		grp.cg.stopTimers()
	}
}

func (g *Groups) lock() { g.mu.Lock() }

// unlock releases mu and then flushes the writes queued while it was held,
// so that no append ever runs under mu.
func (g *Groups) unlock() {
	dirty := g.mu.dirty
	g.mu.dirty = nil
	g.mu.Unlock()
	for _, w := range dirty {
		w.flush()
	}
}

func (g *Groups) now() time.Time { return g.clock.Now() }

// timerSlot is one restartable timer. seq, guarded by Groups.mu, makes a
// callback that raced with cancel or reschedule a no-op.
type timerSlot struct {
	stop func() bool
	seq  uint64
}

func (t *timerSlot) cancel() {
	if t.stop != nil {
		t.stop()
		t.stop = nil
	}
	t.seq++
}

// setTimerLocked (re)arms t to run fn under mu after d, unless the
// coordinator closed in between.
func (g *Groups) setTimerLocked(t *timerSlot, d time.Duration, fn func()) {
	t.cancel()
	seq := t.seq
	t.stop = g.clock.AfterFunc(d, func() {
		g.lock()
		defer g.unlock()
		if g.mu.closed || t.seq != seq {
			return
		}
		t.stop = nil
		fn()
	})
}

// setGroupTimerLocked is setTimerLocked for timers that act on grp: they do
// nothing once grp was deleted or replaced.
func (g *Groups) setGroupTimerLocked(grp *group, t *timerSlot, d time.Duration, fn func()) {
	g.setTimerLocked(t, d, func() {
		if g.mu.groups[grp.id] == grp {
			fn()
		}
	})
}

// await waits for a parked request's answer, for its context, or for Close.
func await[T any](ctx context.Context, closing <-chan struct{}, ch <-chan T) (T, int16) {
	select {
	case v := <-ch:
		return v, 0
	case <-ctx.Done():
	case <-closing:
	}
	select { // an answer that raced with cancellation still wins
	case v := <-ch:
		return v, 0
	default:
	}
	var zero T
	if ctx.Err() != nil {
		return zero, errCoordinatorNotAvailable
	}
	return zero, errNotCoordinator
}

// newMemberID is Kafka's member id: the client id (or the static instance
// id) followed by a random UUID.
func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func msDuration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func strPtr(s string) *string { return &s }

// strPtrOrNil maps Kafka's Optional.empty (our "") to a null string.
func strPtrOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// sortedGroupIDsLocked gives deterministic iteration for listings and
// periodic jobs.
func (g *Groups) sortedGroupIDsLocked() []string {
	ids := make([]string, 0, len(g.mu.groups))
	for id := range g.mu.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
