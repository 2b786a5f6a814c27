package txn

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skiffmq/skiff/storage"
)

// State is a transaction's state, numbered as in Kafka's TransactionState
// (and its __transaction_state records).
type State int8

// Transaction states.
const (
	Empty          State = 0
	Ongoing        State = 1
	PrepareCommit  State = 2
	PrepareAbort   State = 3
	CompleteCommit State = 4
	CompleteAbort  State = 5
	Dead           State = 6
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// ParseState returns the state named as Kafka names it, for
// ListTransactions filters.
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}

// TopicPartition names a partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Log is one partition of __transaction_state.
type Log interface {
	AppendRecords(records []byte, sync bool) (baseOffset int64, err error)
	ReadRecords(offset int64, maxBytes int) (records []byte, highWatermark int64, err error)
}

// Config holds the coordinator's settings (Kafka broker config names in
// comments).
type Config struct {
	MaxTimeout    time.Duration // transaction.max.timeout.ms
	IDExpiration  time.Duration // transactional.id.expiration.ms
	AbortInterval time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms
}

// Deps are the coordinator's collaborators.
type Deps struct {
	Logger zerolog.Logger
	// Logs are the partitions of __transaction_state, or empty if the topic
	// does not exist yet; CreateLogs creates it on first write.
	Logs       []Log
	CreateLogs func() ([]Log, error)
	// WriteMarkers appends a COMMIT or ABORT marker for the producer to
	// each partition, durably, and makes transactional offset commits in
	// __consumer_offsets partitions visible or drops them.
	WriteMarkers func(producerID int64, epoch int16, commit bool, parts []TopicPartition) error
	// PartitionExists reports whether a partition may join a transaction.
	PartitionExists func(topic string, partition int32) bool
	// IDFile is where the producer id block is persisted, on FS (nil:
	// storage.OSFS).
	IDFile string
	FS     storage.FS
	Now    func() time.Time // nil means time.Now
}

// idBlockSize is how many producer ids one persisted block reserves.
const idBlockSize = 1000

// txnMeta is one transactional id's state. Guarded by Coordinator.mu for
// reads; changed only by the operation holding opMu.
type txnMeta struct {
	id         string
	pid        int64
	prevPID    int64
	epoch      int16
	lastEpoch  int16 // epoch before the last bump by the coordinator itself, or -1
	timeoutMs  int32
	state      State
	parts      []TopicPartition
	start      int64 // ms; -1 unless a transaction is open
	lastUpdate int64 // ms
}

func (m *txnMeta) clone() *txnMeta {
	c := *m
	c.parts = slices.Clone(m.parts)
	return &c
}

func (m *txnMeta) has(tp TopicPartition) bool { return slices.Contains(m.parts, tp) }

// Coordinator is the transaction coordinator of a single-node broker.
type Coordinator struct {
	cfg  Config
	deps Deps
	log  zerolog.Logger

	opMu sync.Mutex // serializes state-changing operations, I/O included
	// idMu serializes producer id block reservations, whose file write
	// happens with mu released. Lock order: opMu, idMu, mu.
	idMu sync.Mutex
	// writeIDFile persists the block end through the FS; tests replace it
	// to see what is held while it runs.
	writeIDFile func(path string, data []byte) error

	mu struct {
		sync.Mutex
		closed   bool
		txns     map[string]*txnMeta
		byPID    map[int64]*txnMeta
		logs     []Log
		nextPID  int64
		blockEnd int64
	}
	quit     chan struct{}
	wg       sync.WaitGroup
	outcomes outcomes // see stats.go
}

// New builds the coordinator: it loads the producer id block, replays
// __transaction_state and completes transactions a crash left prepared.
func New(cfg Config, deps Deps) (*Coordinator, error) {
	if cfg.MaxTimeout <= 0 || cfg.IDExpiration <= 0 || cfg.AbortInterval <= 0 {
		return nil, errors.New("txn: timeouts must be positive")
	}
	if deps.WriteMarkers == nil || deps.PartitionExists == nil || deps.IDFile == "" {
		return nil, errors.New("txn: WriteMarkers, PartitionExists and IDFile are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	c := &Coordinator{cfg: cfg, deps: deps, log: deps.Logger, quit: make(chan struct{})}
	c.writeIDFile = func(path string, data []byte) error { return storage.WriteFileAtomicFS(c.fs(), path, data) }
	c.mu.txns = make(map[string]*txnMeta)
	c.mu.byPID = make(map[int64]*txnMeta)
	c.mu.logs = deps.Logs
	if err := c.loadIDBlock(); err != nil {
		return nil, err
	}
	for i, l := range deps.Logs {
		if err := c.replay(i, l); err != nil {
			return nil, err
		}
	}
	for _, m := range c.mu.txns {
		c.mu.nextPID = max(c.mu.nextPID, m.pid+1, m.prevPID+1)
	}
	c.mu.blockEnd = min(c.mu.blockEnd, c.mu.nextPID) // force a new block past replayed ids
	c.completePrepared()
	return c, nil
}

// Start runs the loop that aborts timed-out transactions and expires idle
// transactional ids.
func (c *Coordinator) Start() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.cfg.AbortInterval)
		defer t.Stop()
		for {
			select {
			case <-c.quit:
				return
			case <-t.C:
				c.Tick()
			}
		}
	}()
}

// Close stops the background loop and waits for the operation in progress.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	c.mu.closed = true
	c.mu.Unlock()
	close(c.quit)
	c.wg.Wait()
	c.opMu.Lock()
	c.opMu.Unlock() //nolint:staticcheck // waits for the operation in progress
}

func (c *Coordinator) now() int64 { return c.deps.Now().UnixMilli() }

func (c *Coordinator) fs() storage.FS {
	if c.deps.FS == nil {
		return storage.OSFS
	}
	return c.deps.FS
}

type idBlock struct {
	BlockEnd int64 `json:"block_end"`
}

func (c *Coordinator) loadIDBlock() error {
	data, err := c.fs().ReadFile(c.deps.IDFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("txn: %w", err)
	}
	var b idBlock
	if err := json.Unmarshal(data, &b); err != nil {
		// Starting over from 0 would hand out producer ids that logs
		// still hold state for, so the start is refused.
		return fmt.Errorf("txn: producer id file %s is corrupt (%w); restore it from a backup, or write "+
			`{"block_end": N}`+" into it with N above every producer id in use", c.deps.IDFile, err)
	}
	c.mu.nextPID, c.mu.blockEnd = b.BlockEnd, b.BlockEnd
	return nil
}

// allocatePID returns a producer id never handed out before, even across
// restarts: the end of the current block is durable before any id of it
// is used. The block's file write (two fsyncs) happens under idMu only, so
// that produce verification, DescribeTransactions and ListTransactions,
// which take mu, do not wait for the disk.
func (c *Coordinator) allocatePID() (int64, error) {
	if pid, ok := c.takePID(); ok {
		return pid, nil
	}
	c.idMu.Lock()
	defer c.idMu.Unlock()
	c.mu.Lock()
	if c.mu.nextPID < c.mu.blockEnd { // another caller reserved a block meanwhile
		pid := c.mu.nextPID
		c.mu.nextPID++
		c.mu.Unlock()
		return pid, nil
	}
	// Only idMu holders move blockEnd or reserve past it, so end stays
	// ahead of every id handed out until it is published below.
	end := c.mu.nextPID + idBlockSize
	c.mu.Unlock()
	data, _ := json.Marshal(idBlock{BlockEnd: end})
	if err := c.writeIDFile(c.deps.IDFile, data); err != nil {
		return -1, fmt.Errorf("txn: persisting producer id block: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.blockEnd = end
	pid := c.mu.nextPID
	c.mu.nextPID++
	return pid, nil
}

// takePID hands out the next id of the current block, if it has one left.
func (c *Coordinator) takePID() (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.nextPID >= c.mu.blockEnd {
		return 0, false
	}
	pid := c.mu.nextPID
	c.mu.nextPID++
	return pid, true
}

// AllocateProducerID returns a fresh producer id for an idempotent
// producer (InitProducerId without a transactional id).
func (c *Coordinator) AllocateProducerID() (int64, int16) {
	pid, err := c.allocatePID()
	if err != nil {
		c.log.Error().Err(err).Msg("txn: cannot allocate a producer id")
		return -1, kerr.CoordinatorNotAvailable.Code
	}
	return pid, 0
}

// javaHash is Java's String.hashCode over UTF-16 code units, which Kafka
// uses to place a transactional id in __transaction_state.
func javaHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// partitionFor is Kafka's Utils.abs(hash) % n (abs maps MinInt32 to 0).
func partitionFor(id string, n int) int {
	h := javaHash(id)
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return int(h) % n
}

// logFor returns the __transaction_state partition of id, creating the
// topic on first use. Called with opMu held, which serializes creation;
// the creation (log opens, a cluster metadata fsync) runs with mu
// released, so produce verification and Describe/List do not wait for it.
func (c *Coordinator) logFor(id string) (Log, error) {
	c.mu.Lock()
	logs := c.mu.logs
	c.mu.Unlock()
	if len(logs) == 0 {
		if c.deps.CreateLogs == nil {
			return nil, errors.New("txn: __transaction_state is not available")
		}
		created, err := c.deps.CreateLogs()
		if err != nil {
			return nil, fmt.Errorf("txn: creating __transaction_state: %w", err)
		}
		if len(created) == 0 {
			return nil, errors.New("txn: __transaction_state has no partitions")
		}
		c.mu.Lock()
		c.mu.logs = created
		c.mu.Unlock()
		logs = created
	}
	return logs[partitionFor(id, len(logs))], nil
}

// persist writes m's record durably and then installs it. Called with opMu
// held, without mu.
func (c *Coordinator) persist(m *txnMeta) error {
	l, err := c.logFor(m.id)
	if err != nil {
		return err
	}
	m.lastUpdate = c.now()
	rec, err := encodeRecord(m, m.lastUpdate)
	if err != nil {
		return err
	}
	if _, err := l.AppendRecords(rec, true); err != nil {
		return fmt.Errorf("txn: writing __transaction_state: %w", err)
	}
	c.install(m)
	return nil
}

func (c *Coordinator) install(m *txnMeta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.mu.txns[m.id]; old != nil && c.mu.byPID[old.pid] == old {
		delete(c.mu.byPID, old.pid)
	}
	if m.state == Dead {
		delete(c.mu.txns, m.id)
		return
	}
	c.mu.txns[m.id] = m
	c.mu.byPID[m.pid] = m
}

// get returns a copy of id's state, or nil.
func (c *Coordinator) get(id string) *txnMeta {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.mu.txns[id]; m != nil {
		return m.clone()
	}
	return nil
}
