package share

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a record's delivery state, with Kafka's numbering (the numbers
// are persisted in StateBatch.DeliveryState).
type State int8

const (
	StateAvailable    State = 0
	StateAcquired     State = 1
	StateAcknowledged State = 2
	StateArchived     State = 4
)

func (s State) String() string {
	switch s {
	case StateAvailable:
		return "AVAILABLE"
	case StateAcquired:
		return "ACQUIRED"
	case StateAcknowledged:
		return "ACKNOWLEDGED"
	case StateArchived:
		return "ARCHIVED"
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// terminal states end a record's delivery: SPSO may move past them.
func (s State) terminal() bool { return s == StateAcknowledged || s == StateArchived }

// AckType is an acknowledgement type of ShareFetch and ShareAcknowledge
// (AcknowledgeTypes), with Kafka's numbering.
type AckType int8

const (
	AckGap     AckType = 0 // the offset is not a record (compacted, control batch)
	AckAccept  AckType = 1
	AckRelease AckType = 2
	AckReject  AckType = 3
	AckRenew   AckType = 4 // KIP-1222 (ShareFetch/ShareAcknowledge v2): extend the lock
)

// Config holds the broker and group settings a share-partition obeys.
type Config struct {
	// LockDuration is group.share.record.lock.duration.ms (or the group's
	// share.record.lock.duration.ms): how long an acquired record stays
	// locked to its member before it becomes available again.
	LockDuration time.Duration
	// DeliveryLimit is group.share.delivery.count.limit: a record whose
	// lock ends after this many deliveries is archived, not redelivered.
	DeliveryLimit int16
	// MaxRecordLocks is group.share.partition.max.record.locks: at most
	// this many offsets lie between SPSO and SPEO, so a partition whose
	// oldest record is stuck stops handing out new records.
	MaxRecordLocks int
}

// DefaultConfig is Kafka 4.2's defaults.
func DefaultConfig() Config {
	return Config{LockDuration: 30 * time.Second, DeliveryLimit: 5, MaxRecordLocks: 2000}
}

// Validate checks the bounds Kafka enforces on these settings.
func (c Config) Validate() error {
	if c.LockDuration <= 0 {
		return fmt.Errorf("share: record lock duration must be positive, got %v", c.LockDuration)
	}
	if c.DeliveryLimit < 2 {
		return fmt.Errorf("share: delivery count limit must be at least 2, got %d", c.DeliveryLimit)
	}
	if c.MaxRecordLocks < 1 {
		return fmt.Errorf("share: max record locks must be positive, got %d", c.MaxRecordLocks)
	}
	return nil
}

// Acquired is a run of offsets handed to a member with one delivery count:
// ShareFetchResponse's AcquiredRecords entry.
type Acquired struct {
	First, Last   int64
	DeliveryCount int16
}

// Batch is one acknowledgement batch. Types has either one type for every
// offset of [First, Last] or one type per offset, as on the wire.
type Batch struct {
	First, Last int64
	Types       []AckType
}

type record struct {
	state  State
	count  int16
	owner  string    // member holding the lock while Acquired
	expiry time.Time // lock end while Acquired
}

// Partition is the state of one share-partition: SPSO, and every offset
// from SPSO up to SPEO (exclusive) with its state. It is not safe for
// concurrent use; its owner serializes calls.
type Partition struct {
	cfg   Config
	start int64    // SPSO
	recs  []record // recs[i] is offset start+i; SPEO is start+len(recs)
	dirty bool     // changed since the last TakeUpdate
}

// NewPartition starts a share-partition at startOffset (from
// share.auto.offset.reset or an AlterShareGroupOffsets) with nothing in
// flight.
func NewPartition(cfg Config, startOffset int64) *Partition {
	return &Partition{cfg: cfg, start: startOffset, dirty: true}
}

// SetConfig changes the settings for future acquisitions; locks already
// held keep their expiry.
func (p *Partition) SetConfig(cfg Config) { p.cfg = cfg }

// StartOffset is SPSO: every offset below it is delivered or archived.
func (p *Partition) StartOffset() int64 { return p.start }

// EndOffset is SPEO, exclusive: the next offset never acquired yet.
func (p *Partition) EndOffset() int64 { return p.start + int64(len(p.recs)) }

// StateOf reports an in-flight offset's state and delivery count; ok is
// false outside [SPSO, SPEO).
func (p *Partition) StateOf(offset int64) (s State, count int16, ok bool) {
	if offset < p.start || offset >= p.EndOffset() {
		return 0, 0, false
	}
	r := p.recs[offset-p.start]
	return r.state, r.count, true
}

// DeliveryCompleteCount is the number of offsets at or above SPSO whose
// delivery has ended (KIP-1226's DeliveryCompleteCount).
func (p *Partition) DeliveryCompleteCount() int32 {
	var n int32
	for _, r := range p.recs {
		if r.state.terminal() {
			n++
		}
	}
	return n
}

// Reset moves SPSO to offset and forgets everything in flight, as
// AlterShareGroupOffsets does on an empty group.
func (p *Partition) Reset(offset int64) {
	p.start = offset
	p.recs = nil
	p.dirty = true
}

// TruncateTo moves SPSO up to the log start offset after retention or
// DeleteRecords: records below it no longer exist.
func (p *Partition) TruncateTo(logStart int64) {
	if logStart <= p.start {
		return
	}
	if logStart >= p.EndOffset() {
		p.recs = nil
	} else {
		p.recs = p.recs[logStart-p.start:]
	}
	p.start = logStart
	p.dirty = true
}

// Acquire locks up to maxRecords records below logEnd for member until
// now+LockDuration and returns them. Records released earlier are
// redelivered first (lowest offset first); then new offsets from SPEO, as
// long as SPEO-SPSO stays within MaxRecordLocks. logEnd is the high
// watermark (the last stable offset under read_committed), or less when a
// ShareFetch's MaxBytes covers only the log up to it.
func (p *Partition) Acquire(now time.Time, member string, maxRecords int, logEnd int64) []Acquired {
	var out []Acquired
	expiry := now.Add(p.cfg.LockDuration)
	n := 0
	take := func(off int64, r *record) {
		r.state, r.owner, r.expiry = StateAcquired, member, expiry
		r.count++
		n++
		if k := len(out) - 1; k >= 0 && out[k].Last == off-1 && out[k].DeliveryCount == r.count {
			out[k].Last = off
		} else {
			out = append(out, Acquired{First: off, Last: off, DeliveryCount: r.count})
		}
	}
	for i := range p.recs {
		if n >= maxRecords || p.start+int64(i) >= logEnd {
			break
		}
		if p.recs[i].state == StateAvailable {
			take(p.start+int64(i), &p.recs[i])
		}
	}
	for n < maxRecords && len(p.recs) < p.cfg.MaxRecordLocks {
		off := p.EndOffset()
		if off >= logEnd {
			break
		}
		p.recs = append(p.recs, record{})
		take(off, &p.recs[len(p.recs)-1])
	}
	if n > 0 {
		p.dirty = true
	}
	return out
}

// NextFetchOffset is where a ShareFetch reads the log from: the first
// AVAILABLE offset in flight, else SPEO (Kafka's nextFetchOffset).
func (p *Partition) NextFetchOffset() int64 {
	for i, r := range p.recs {
		if r.state == StateAvailable {
			return p.start + int64(i)
		}
	}
	return p.EndOffset()
}

// Acknowledge applies acknowledgement batches from member. A batch is
// applied whole or not at all: every offset in it must be ACQUIRED by
// member, or the batch fails with INVALID_RECORD_STATE (Kafka's answer to
// acknowledging a record whose lock expired or that another member holds).
// The first failing batch's error is returned; the other batches still
// apply.
func (p *Partition) Acknowledge(now time.Time, member string, batches []Batch) error {
	var firstErr error
	for _, b := range batches {
		if err := p.ackBatch(now, member, b); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	p.advance()
	return firstErr
}

func (p *Partition) ackBatch(now time.Time, member string, b Batch) error {
	span := b.Last - b.First + 1
	if b.First > b.Last || len(b.Types) == 0 || (len(b.Types) != 1 && int64(len(b.Types)) != span) {
		return kerr.InvalidRequest
	}
	if b.First < p.start || b.Last >= p.EndOffset() {
		return kerr.InvalidRecordState
	}
	for off := b.First; off <= b.Last; off++ {
		r := &p.recs[off-p.start]
		if r.state != StateAcquired || r.owner != member {
			return kerr.InvalidRecordState
		}
		if t := ackTypeAt(b, off); t < AckGap || t > AckRenew {
			return kerr.InvalidRequest
		}
	}
	expiry := now.Add(p.cfg.LockDuration)
	for off := b.First; off <= b.Last; off++ {
		r := &p.recs[off-p.start]
		switch ackTypeAt(b, off) {
		case AckAccept:
			p.finish(r, StateAcknowledged)
		case AckRelease:
			p.release(r)
		case AckReject, AckGap:
			p.finish(r, StateArchived)
		case AckRenew:
			r.expiry = expiry
		}
	}
	p.dirty = true
	return nil
}

func ackTypeAt(b Batch, off int64) AckType {
	if len(b.Types) == 1 {
		return b.Types[0]
	}
	return b.Types[off-b.First]
}

func (p *Partition) finish(r *record, s State) {
	r.state, r.owner, r.expiry = s, "", time.Time{}
}

// release ends a delivery attempt without success: the record is offered
// again unless it used up its deliveries.
func (p *Partition) release(r *record) {
	if r.count >= p.cfg.DeliveryLimit {
		p.finish(r, StateArchived)
		return
	}
	p.finish(r, StateAvailable)
}

// Tick expires the acquisition locks that ended at or before now.
func (p *Partition) Tick(now time.Time) {
	changed := false
	for i := range p.recs {
		r := &p.recs[i]
		if r.state == StateAcquired && !r.expiry.After(now) {
			p.release(r)
			changed = true
		}
	}
	if changed {
		p.dirty = true
		p.advance()
	}
}

// ReleaseMember releases every lock member holds, as Kafka does when a
// member leaves the group or closes its share session.
func (p *Partition) ReleaseMember(member string) {
	changed := false
	for i := range p.recs {
		r := &p.recs[i]
		if r.state == StateAcquired && r.owner == member {
			p.release(r)
			changed = true
		}
	}
	if changed {
		p.dirty = true
		p.advance()
	}
}

// NextDeadline is the earliest lock expiry, when Tick has work to do.
func (p *Partition) NextDeadline() (time.Time, bool) {
	var next time.Time
	ok := false
	for _, r := range p.recs {
		if r.state == StateAcquired && (!ok || r.expiry.Before(next)) {
			next, ok = r.expiry, true
		}
	}
	return next, ok
}

// advance moves SPSO past the leading records whose delivery ended.
func (p *Partition) advance() {
	i := 0
	for i < len(p.recs) && p.recs[i].state.terminal() {
		i++
	}
	if i == 0 {
		return
	}
	p.start += int64(i)
	p.recs = p.recs[i:]
	if len(p.recs) == 0 {
		p.recs = nil // drop the backing array of a drained window
	}
	p.dirty = true
}

// StateBatch is a run of offsets with one persisted state and delivery
// count (Kafka's StateBatch in ShareSnapshotValue and ShareUpdateValue).
type StateBatch struct {
	First, Last   int64
	State         State
	DeliveryCount int16
}

// Persisted is the durable state of a share-partition.
type Persisted struct {
	StartOffset int64
	Batches     []StateBatch
	// DeliveryCompleteCount is KIP-1226's count of finished offsets at or
	// above StartOffset; -1 when unknown.
	DeliveryCompleteCount int32
}

// State returns the durable form of the partition now. ACQUIRED records
// are persisted as AVAILABLE: a lock does not survive a restart.
func (p *Partition) State() Persisted {
	out := Persisted{StartOffset: p.start, DeliveryCompleteCount: p.DeliveryCompleteCount()}
	for i, r := range p.recs {
		off := p.start + int64(i)
		s := r.state
		if s == StateAcquired {
			s = StateAvailable
		}
		if k := len(out.Batches) - 1; k >= 0 && out.Batches[k].Last == off-1 &&
			out.Batches[k].State == s && out.Batches[k].DeliveryCount == r.count {
			out.Batches[k].Last = off
			continue
		}
		out.Batches = append(out.Batches, StateBatch{First: off, Last: off, State: s, DeliveryCount: r.count})
	}
	return out
}

// TakeUpdate returns the state to persist if anything changed since the
// last call, and clears the change mark.
func (p *Partition) TakeUpdate() (Persisted, bool) {
	if !p.dirty {
		return Persisted{}, false
	}
	p.dirty = false
	return p.State(), true
}

// maxRestoreWindow bounds SPEO-SPSO of a restored partition, so that a
// damaged record cannot make Restore allocate without bound. It is far
// above any group.share.partition.max.record.locks Kafka accepts.
const maxRestoreWindow = 1 << 20

// Restore rebuilds a partition from its durable state, as replaying
// __share_group_state yields it. Offsets between batches that the state
// does not name were never acquired and are AVAILABLE with no deliveries.
func Restore(cfg Config, st Persisted) (*Partition, error) {
	p := &Partition{cfg: cfg, start: st.StartOffset}
	for _, b := range st.Batches {
		if b.Last < p.start {
			continue
		}
		if b.First > b.Last || b.Last-p.start >= maxRestoreWindow {
			return nil, fmt.Errorf("%w: state batch %d-%d above start offset %d", ErrCorrupt, b.First, b.Last, p.start)
		}
		switch b.State {
		case StateAvailable, StateAcquired, StateAcknowledged, StateArchived:
		default:
			return nil, fmt.Errorf("%w: delivery state %d", ErrCorrupt, b.State)
		}
		first := max(b.First, p.start)
		if need := b.Last - p.start + 1; int64(len(p.recs)) < need {
			p.recs = append(p.recs, make([]record, need-int64(len(p.recs)))...)
		}
		s := b.State
		if s == StateAcquired {
			s = StateAvailable
		}
		for off := first; off <= b.Last; off++ {
			p.recs[off-p.start] = record{state: s, count: b.DeliveryCount}
		}
	}
	// A persisted record that used up its deliveries but was still
	// available (written by a broker with a higher limit) is archived now.
	for i := range p.recs {
		if p.recs[i].state == StateAvailable && p.recs[i].count >= cfg.DeliveryLimit {
			p.recs[i].state = StateArchived
		}
	}
	p.advance()
	p.dirty = false
	return p, nil
}
