package storage

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"sync"

	"github.com/rs/zerolog"
)

const (
	offsetEntrySize = 8  // 4-byte relative offset + 4-byte file position
	timeEntrySize   = 12 // 8-byte timestamp + 4-byte relative offset
)

// offsetEntry maps the last offset of a batch, relative to the segment's base
// offset, to the file position where that batch starts (Kafka's .index).
type offsetEntry struct {
	rel uint32
	pos uint32
}

// timeEntry records that the segment's largest timestamp so far, ts, was
// first reached by the batch whose last offset is base+rel (Kafka's
// .timeindex).
type timeEntry struct {
	ts  int64
	rel uint32
}

// lookupOffset returns the file position of the last indexed batch whose last
// offset is <= rel, or 0. The batch holding rel starts at or after it.
func lookupOffset(idx []offsetEntry, rel uint32) int64 {
	lo, hi := 0, len(idx) // find the first entry with idx[i].rel > rel
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if idx[m].rel <= rel {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0
	}
	return int64(idx[lo-1].pos)
}

// lookupTime returns the relative offset of the last entry whose timestamp is
// <= ts, or 0. No batch before that offset has a timestamp >= ts.
func lookupTime(idx []timeEntry, ts int64) uint32 {
	lo, hi := 0, len(idx)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if idx[m].ts <= ts {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0
	}
	return idx[lo-1].rel
}

func encodeOffsetIndex(idx []offsetEntry) []byte {
	b := make([]byte, 0, len(idx)*offsetEntrySize)
	for _, e := range idx {
		b = binary.BigEndian.AppendUint32(b, e.rel)
		b = binary.BigEndian.AppendUint32(b, e.pos)
	}
	return b
}

func encodeTimeIndex(idx []timeEntry) []byte {
	b := make([]byte, 0, len(idx)*timeEntrySize)
	for _, e := range idx {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
		b = binary.BigEndian.AppendUint32(b, e.rel)
	}
	return b
}

// decodeOffsetIndex decodes entries up to the first one that cannot be right:
// positions must grow and stay inside the log file, offsets must grow. What
// survives is always a usable (if sparser) index, so a torn, zero-filled or
// stale index file degrades lookups instead of breaking them.
func decodeOffsetIndex(b []byte, logSize int64) []offsetEntry {
	n := len(b) / offsetEntrySize
	idx := make([]offsetEntry, 0, n)
	for i := 0; i < n; i++ {
		e := offsetEntry{
			rel: binary.BigEndian.Uint32(b[i*offsetEntrySize:]),
			pos: binary.BigEndian.Uint32(b[i*offsetEntrySize+4:]),
		}
		if e.pos == 0 || int64(e.pos) >= logSize || e.rel > maxRelOffset {
			break
		}
		if k := len(idx); k > 0 && (e.rel <= idx[k-1].rel || e.pos <= idx[k-1].pos) {
			break
		}
		idx = append(idx, e)
	}
	return idx
}

// decodeTimeIndex decodes entries while timestamps strictly grow, offsets do
// not shrink and stay below maxRel.
func decodeTimeIndex(b []byte, maxRel int64) []timeEntry {
	n := len(b) / timeEntrySize
	idx := make([]timeEntry, 0, n)
	for i := 0; i < n; i++ {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			rel: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if e.ts < 0 || int64(e.rel) > maxRel {
			break
		}
		if k := len(idx); k > 0 && (e.ts <= idx[k-1].ts || e.rel < idx[k-1].rel) {
			break
		}
		idx = append(idx, e)
	}
	return idx
}

// readIndexFile returns the file's bytes, or nil and ok=false if it does not
// exist.
func readIndexFile(fsys FS, path string) (b []byte, ok bool, err error) {
	b, err = fsys.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// lazyIndex holds the entries of a segment that was complete when the log was
// opened cleanly. They are read from disk on first lookup: most old segments
// are never read again, so this keeps start-up fast and memory small.
type lazyIndex struct {
	once    sync.Once
	fs      FS
	path    string // segment path without extension
	base    int64
	logSize int64
	maxRel  int64
	off     []offsetEntry
	tim     []timeEntry
}

// entries loads the index files once. A missing or unreadable file leaves
// that index empty, which is slow (lookups scan from the segment start) but
// correct.
func (z *lazyIndex) entries(logger *zerolog.Logger) ([]offsetEntry, []timeEntry) {
	z.once.Do(func() {
		b, _, err := readIndexFile(z.fs, z.path+indexExt)
		if err != nil {
			logger.Warn().Err(err).Str("segment", z.path).Msg("storage: cannot read offset index; scanning instead")
		}
		z.off = decodeOffsetIndex(b, z.logSize)
		b, _, err = readIndexFile(z.fs, z.path+timeIndexExt)
		if err != nil {
			logger.Warn().Err(err).Str("segment", z.path).Msg("storage: cannot read time index; scanning instead")
		}
		z.tim = decodeTimeIndex(b, z.maxRel)
	})
	return z.off, z.tim
}
