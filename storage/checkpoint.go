package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Recovery points: Kafka's recovery-point-offset-checkpoint. A log's
// recovery point is the offset below which everything is known to be on
// stable storage (its flushed offset). After an unclean stop only the
// segments from the one holding the recovery point onwards are validated;
// older segments were fsynced whole before the checkpoint named an offset
// past them, so a bad byte found there later is damage for the reader's CRC
// check, not a torn write, and must not cost the data after it.
//
// The file is one per store directory, in Kafka's text format:
//
//	0                       version
//	2                       number of entries
//	orders 0 4018           topic, partition, recovery point
//	orders 1 977
//
// It is written atomically (temp file, fsync, rename, directory fsync)
// every StoreOptions.RecoveryPointInterval, when a flush made a rolled
// segment durable, and at Store.Close. Logs whose names are not
// "<topic>-<partition>" are left out and recovered whole, as before.

const (
	recoveryPointFile    = "recovery-point-offset-checkpoint"
	recoveryPointVersion = 0
)

// splitLogName splits "<topic>-<partition>" at its last dash.
func splitLogName(name string) (topic string, partition int32, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 || strings.ContainsAny(name[:i], " \t\n") {
		return "", 0, false
	}
	return name[:i], int32(p), true
}

// encodeRecoveryPoints renders points (log name -> offset) in Kafka's
// checkpoint format, sorted so the file is stable.
func encodeRecoveryPoints(points map[string]int64) []byte {
	type line struct {
		topic     string
		partition int32
		offset    int64
	}
	var lines []line
	for name, off := range points {
		if topic, p, ok := splitLogName(name); ok && off >= 0 {
			lines = append(lines, line{topic, p, off})
		}
	}
	slices.SortFunc(lines, func(a, b line) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.partition - b.partition)
	})
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%d\n%d\n", recoveryPointVersion, len(lines))
	for _, l := range lines {
		fmt.Fprintf(&buf, "%s %d %d\n", l.topic, l.partition, l.offset)
	}
	return buf.Bytes()
}

// decodeRecoveryPoints parses a checkpoint file. Like Kafka's reader it
// refuses the whole file on any malformed line: a partial map would be
// taken for the truth about the logs it leaves out only if they were
// missing, so all or nothing is simplest to reason about.
func decodeRecoveryPoints(b []byte) (map[string]int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	bad := func(what string) error {
		return fmt.Errorf("storage: malformed %s: %s", recoveryPointFile, what)
	}
	v, ok := next()
	if !ok || strings.TrimSpace(v) != strconv.Itoa(recoveryPointVersion) {
		return nil, bad("version " + strconv.Quote(v))
	}
	c, ok := next()
	n, err := strconv.Atoi(strings.TrimSpace(c))
	if !ok || err != nil || n < 0 {
		return nil, bad("count " + strconv.Quote(c))
	}
	points := make(map[string]int64, n)
	for range n {
		line, ok := next()
		if !ok {
			return nil, bad("fewer entries than counted")
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, bad("entry " + strconv.Quote(line))
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		off, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || p < 0 || off < 0 {
			return nil, bad("entry " + strconv.Quote(line))
		}
		points[f[0]+"-"+f[1]] = off
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", recoveryPointFile, err)
	}
	return points, nil
}

// readRecoveryPoints loads the store's checkpoint; a missing file is an
// empty map (every log is recovered whole).
func readRecoveryPoints(fsys FS, dir string) (map[string]int64, error) {
	b, err := fsys.ReadFile(filepath.Join(dir, recoveryPointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return map[string]int64{}, fmt.Errorf("storage: %w", err)
	}
	points, err := decodeRecoveryPoints(b)
	if err != nil {
		return map[string]int64{}, err
	}
	return points, nil
}

// RecoveryPoint is the offset below which the log is known to be on stable
// storage (Kafka's recovery point).
func (l *Log) RecoveryPoint() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.flushed.offset
}

// CheckpointRecoveryPoints writes the recovery point of every log the
// store knows (open ones as they are now, others as last checkpointed) to
// recovery-point-offset-checkpoint. It holds no store-wide lock while it
// does disk I/O: ckptMu only orders checkpoint writers among themselves.
func (s *Store) CheckpointRecoveryPoints() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.mu.Lock()
	points := make(map[string]int64, len(s.mu.recovery)+len(s.mu.logs))
	for name, off := range s.mu.recovery {
		points[name] = off
	}
	open := make([]*Log, 0, len(s.mu.logs))
	for name, l := range s.mu.logs {
		if l == nil {
			// Being opened: its old recovery point, if any, still holds
			// for the data on disk until the log publishes its own.
			continue
		}
		open = append(open, l)
		delete(points, name)
	}
	s.mu.Unlock()
	for _, l := range open {
		points[l.name] = l.RecoveryPoint()
	}
	return writeFileAtomic(s.fs, filepath.Join(s.dir, recoveryPointFile), encodeRecoveryPoints(points), true)
}

// requestCheckpoint asks the store's background loop for a checkpoint
// soon, without waiting: called after a flush made a rolled segment
// durable, so that the next recovery need not validate it.
func (s *Store) requestCheckpoint() {
	select {
	case s.ckptKick <- struct{}{}:
	default: // one is pending already
	}
}
