package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// leaderEpochFile is Kafka's name for the leader-epoch cache's checkpoint
// (KIP-101): a version line (0), a count line, then one "epoch startOffset"
// line per epoch, oldest first.
const leaderEpochFile = "leader-epoch-checkpoint"

// Undefined leader epoch and offset, as Kafka answers OffsetForLeaderEpoch
// for an epoch it cannot place.
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// epochEntry says that leader epoch epoch wrote its first batch at offset
// start.
type epochEntry struct {
	epoch int32
	start int64
}

// epochCache is the log's leader-epoch cache: ascending epochs with
// ascending start offsets. Guarded by Log.mu.
type epochCache struct {
	entries []epochEntry
	dirty   bool // changed since the last checkpoint was encoded
}

// assign records that a batch of epoch starts at offset: a new, higher
// epoch gets an entry; a lower one (a stale leader's batch, which Kafka
// only logs) changes nothing.
func (c *epochCache) assign(epoch int32, offset int64) {
	if epoch < 0 {
		return
	}
	if n := len(c.entries); n > 0 {
		last := c.entries[n-1]
		if epoch <= last.epoch {
			return
		}
		if offset < last.start {
			return // offsets never go back within one log
		}
	}
	c.entries = append(c.entries, epochEntry{epoch: epoch, start: offset})
	c.dirty = true
}

// truncateFrom drops the epochs that start at or after offset, as the log
// is cut there.
func (c *epochCache) truncateFrom(offset int64) {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].start >= offset {
		n--
	}
	if n != len(c.entries) {
		c.entries = c.entries[:n:n]
		c.dirty = true
	}
}

// latest is the newest epoch, or UndefinedEpoch.
func (c *epochCache) latest() int32 {
	if len(c.entries) == 0 {
		return UndefinedEpoch
	}
	return c.entries[len(c.entries)-1].epoch
}

// endOffsetFor follows Kafka's LeaderEpochFileCache.endOffsetFor: the
// newest epoch ends at the log end; an older one ends where the next
// higher epoch starts, and is reported as the largest known epoch not above
// it (the requested one if older than every entry); an epoch above every
// entry is undefined.
func (c *epochCache) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	if epoch == UndefinedEpoch || len(c.entries) == 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if epoch == c.latest() {
		return epoch, leo
	}
	hi := -1 // first entry with a higher epoch
	for i, e := range c.entries {
		if e.epoch > epoch {
			hi = i
			break
		}
	}
	if hi < 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if hi == 0 {
		return epoch, c.entries[0].start
	}
	return c.entries[hi-1].epoch, c.entries[hi].start
}

func (c *epochCache) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	return b.Bytes()
}

var errBadEpochCheckpoint = errors.New("storage: malformed leader-epoch-checkpoint")

func decodeEpochCheckpoint(data []byte) ([]epochEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	v, ok := line()
	if !ok || v != "0" {
		return nil, fmt.Errorf("%w: version %q", errBadEpochCheckpoint, v)
	}
	cs, ok := line()
	n, err := strconv.Atoi(cs)
	if !ok || err != nil || n < 0 {
		return nil, fmt.Errorf("%w: count %q", errBadEpochCheckpoint, cs)
	}
	out := make([]epochEntry, 0, n)
	for i := 0; i < n; i++ {
		l, ok := line()
		f := strings.Fields(l)
		if !ok || len(f) != 2 {
			return nil, fmt.Errorf("%w: entry %d", errBadEpochCheckpoint, i)
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 ||
			(len(out) > 0 && (int32(e) <= out[len(out)-1].epoch || o < out[len(out)-1].start)) {
			return nil, fmt.Errorf("%w: entry %q", errBadEpochCheckpoint, l)
		}
		out = append(out, epochEntry{epoch: int32(e), start: o})
	}
	return out, nil
}

// loadEpochsLocked rebuilds the cache at open: the checkpoint's entries
// below the log end, completed by the epochs of the batches from offset
// from on, which a flush round may not have checkpointed before a crash.
// A missing or damaged checkpoint costs a scan from the log start.
func (l *Log) loadEpochsLocked(from int64) error {
	c := &l.mu.epochs
	data, err := l.fs.ReadFile(filepath.Join(l.dir, leaderEpochFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		from = l.mu.logStart
	case err != nil:
		return fmt.Errorf("storage: %w", err)
	default:
		entries, derr := decodeEpochCheckpoint(data)
		if derr != nil {
			l.logger.Warn().Err(derr).Str("dir", l.dir).Msg("storage: rebuilding the leader epoch cache from the log")
			from = l.mu.logStart
		} else {
			c.entries = entries
		}
	}
	c.truncateFrom(l.mu.leo)
	if from >= l.mu.leo {
		return nil
	}
	return l.scanHeadersLocked(from, func(baseOffset int64, epoch int32) { c.assign(epoch, baseOffset) })
}

// scanHeadersLocked calls fn with the base offset and partition leader
// epoch of every batch from offset from to the log end.
func (l *Log) scanHeadersLocked(from int64, fn func(baseOffset int64, epoch int32)) error {
	for i, s := range l.mu.segs {
		if (i+1 < len(l.mu.segs) && l.mu.segs[i+1].base <= from) || s.size == 0 {
			continue
		}
		f, done, err := l.headerFileLocked(s)
		if err != nil {
			return err
		}
		sc := newHeaderScanner(f, s.size)
		for pos := int64(0); ; {
			h, ok, err := sc.header(pos)
			if err != nil {
				sc.free()
				done()
				return err
			}
			if !ok {
				break
			}
			if h.LastOffset() >= from {
				fn(h.BaseOffset, h.PartitionLeaderEpoch)
			}
			pos += int64(h.Size())
		}
		sc.free()
		done()
	}
	return nil
}

// pendingEpochsLocked returns the encoded cache if it changed since the
// last call, for the next flush round to write outside the lock.
func (l *Log) pendingEpochsLocked() []byte {
	if !l.mu.epochs.dirty {
		return nil
	}
	l.mu.epochs.dirty = false
	return l.mu.epochs.encode()
}

// writeEpochCheckpoint replaces the checkpoint (temp file, fsync, rename;
// the caller fsyncs the directory).
func (l *Log) writeEpochCheckpoint(data []byte) error {
	return writeFileAtomic(l.fs, filepath.Join(l.dir, leaderEpochFile), data, false)
}

// LatestEpoch is the leader epoch of the newest epoch in the log, or
// UndefinedEpoch for a log that holds no batch written by a leader.
func (l *Log) LatestEpoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.epochs.latest()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch (KIP-101) for this log:
// the largest epoch not above epoch that the log knows, and the offset
// where it ends (the first offset of the next higher epoch, or the log end
// for the newest). UndefinedEpoch and UndefinedEpochOffset if the log
// cannot place it.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.epochs.endOffsetFor(epoch, l.mu.leo)
}

// AssignEpoch records that leader epoch epoch begins at the log end, as a
// leader does when it is elected (Kafka's maybeAssignEpochStartOffset), so
// that OffsetForLeaderEpoch can place the epoch before it wrote anything.
// An epoch not above the newest changes nothing.
func (l *Log) AssignEpoch(epoch int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.epochs.assign(epoch, l.mu.leo)
}
