package storage

import (
	"fmt"

	"github.com/skiffmq/skiff/protocol"
)

// FileRange is a run of whole batches in a segment file: Len bytes of File
// from Offset. The file stays open until the FileRead holding the range is
// released. On the OS filesystem File also has SyscallConn (it is an
// *os.File underneath), which is what sendfile needs.
type FileRange struct {
	File   File
	Offset int64
	Len    int64
}

// FileRead is what ReadFile returns: where the batches a read covers lie
// in the segment files, for a caller that sends them without copying them
// (sendfile) or copies them in small pieces.
//
// A FileRead holds a reference to every segment it names. Retention,
// DeleteRecords, topic deletion, Log.Close and anything else that drops a
// segment only unlinks its files and drops the log's own reference; the
// descriptor is closed when the last reference goes, so the bytes of
// Ranges stay readable, unchanged, until Release. Release must be called
// exactly once, after the last use of Ranges.
type FileRead struct {
	Ranges []FileRange // in log order; empty if no records
	Size   int64       // sum of the ranges' lengths
	// NextOffset is an exclusive upper bound of the offsets in Ranges:
	// the offset after the last batch where it is known exactly, else the
	// base offset of what follows (as Kafka bounds the aborted
	// transactions it collects). Meaningful only when Size > 0.
	NextOffset     int64
	HighWatermark  int64
	LogStartOffset int64

	parts []readPart // their files are pinned: open until Release
}

// Release unpins the files and drops the segment references the read
// holds.
func (r *FileRead) Release() {
	for i := range r.parts {
		r.parts[i].done()
	}
	r.parts = nil
}

// ReadFile is Read without reading: it returns the file ranges of the
// same whole batches Read would return (up to maxBytes, the first batch
// even if larger when minOne, only below the high watermark), except
// that batches whose base offset is upTo or more are left out (a
// read_committed fetch passes the last stable offset; others pass
// math.MaxInt64). It reads only batch headers, through the offset index,
// to find where the batches begin and end.
//
// On success the caller must Release the result; on error there is
// nothing to release.
func (l *Log) ReadFile(offset int64, maxBytes int, minOne bool, upTo int64) (FileRead, error) {
	res, parts, err := l.capture(offset, maxBytes, minOne)
	fr := FileRead{HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset}
	if err != nil || len(parts) == 0 {
		return fr, err
	}
	fr.parts = parts
	if err := openParts(parts); err != nil {
		fr.Release()
		return FileRead{HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset}, err
	}
	if err := l.fillFileRead(&fr, parts, offset, int64(maxBytes), minOne, upTo); err != nil {
		fr.Release()
		return FileRead{HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset}, err
	}
	return fr, nil
}

func (l *Log) fillFileRead(fr *FileRead, parts []readPart, offset, budget int64, minOne bool, upTo int64) error {
	started := false
	for _, p := range parts {
		if p.s.base >= upTo {
			break
		}
		if upTo < p.next {
			// The cut falls in this segment: read no further than the
			// first batch that starts at upTo or later.
			c, h, found, err := l.seek(p, upTo)
			if err != nil {
				return err
			}
			if found && h.BaseOffset < upTo {
				c += int64(h.Size())
			}
			p.limit = min(p.limit, c)
		}
		pos := int64(0)
		if !started {
			var h protocol.BatchHeader
			var found bool
			var err error
			pos, h, found, err = l.seek(p, offset)
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			if h.BaseOffset >= upTo {
				return nil
			}
			started = true
			if size := int64(h.Size()); size > budget {
				if minOne {
					fr.add(p.f, pos, size)
					fr.NextOffset = min(h.LastOffset()+1, upTo)
				}
				return nil
			}
		}
		end, next, err := l.batchEnd(p, pos, min(p.limit, pos+budget), upTo)
		if err != nil {
			return err
		}
		if end > pos {
			fr.add(p.f, pos, end-pos)
			budget -= end - pos
			fr.NextOffset = min(next, upTo)
		}
		if end < p.limit || upTo < p.next {
			return nil // cut by maxBytes or upTo
		}
	}
	return nil
}

func (fr *FileRead) add(f File, pos, n int64) {
	fr.Ranges = append(fr.Ranges, FileRange{File: f, Offset: pos, Len: n})
	fr.Size += n
}

// batchEnd returns the largest batch boundary end in [from, upToPos] such
// that every batch in [from, end) has a base offset below upTo (the caller
// also limits p to that), and an exclusive bound of the offsets before end. from is a batch boundary. It
// jumps through the offset index to the last indexed batch at or before
// upToPos and reads headers from there, so a read costs a few header
// reads, not a read of its records.
func (l *Log) batchEnd(p readPart, from, upToPos, upTo int64) (end, next int64, err error) {
	idx := p.idx
	if p.lazy != nil {
		idx, _ = p.lazy.entries(&l.logger)
	}
	end = max(from, lookupPosition(idx, upToPos))
	next = p.next // the bound if the scan reaches the limit
	sc := newHeaderScanner(p.f, p.limit)
	defer sc.free()
	for {
		h, ok, err := sc.header(end)
		if err != nil {
			return from, 0, err
		}
		if !ok {
			return end, next, nil
		}
		next = h.BaseOffset
		if end+int64(h.Size()) > upToPos || h.BaseOffset >= upTo {
			return end, next, nil
		}
		end += int64(h.Size())
		next = h.LastOffset() + 1
	}
}

// lookupPosition returns the position of the last indexed batch starting at
// or before pos, or 0.
func lookupPosition(idx []offsetEntry, pos int64) int64 {
	lo, hi := 0, len(idx) // find the first entry with idx[i].pos > pos
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if int64(idx[m].pos) <= pos {
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

// capture takes references to the segments a read of up to maxBytes from
// offset may use, under l.mu, as Read and ReadFile begin. No parts and no
// error: nothing to read. The caller releases every part.
func (l *Log) capture(offset int64, maxBytes int, minOne bool) (ReadResult, []readPart, error) {
	return l.captureTo(offset, maxBytes, minOne, false)
}

// captureTo is capture; with replica, up to the durable end instead of
// the high watermark (a follower's fetch).
func (l *Log) captureTo(offset int64, maxBytes int, minOne, replica bool) (ReadResult, []readPart, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ReadResult{}, nil, ErrClosed
	}
	hw := l.mu.hw
	res := ReadResult{HighWatermark: hw.offset, LogStartOffset: l.mu.logStart}
	if end := l.durableEndLocked(); replica && end.offset > hw.offset {
		hw = end // the limit of this read, not the reported high watermark
	}
	if offset < l.mu.logStart || offset > l.mu.leo {
		return res, nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, l.mu.logStart, l.mu.leo)
	}
	if offset >= hw.offset || (maxBytes <= 0 && !minOne) {
		return res, nil, nil
	}
	segs := l.mu.segs
	i := findSegment(segs, offset)
	parts := []readPart{l.partLocked(segs[i], hw)}
	// Take further segments only while the estimate of what the first can
	// give falls short of maxBytes.
	avail := parts[0].limit
	for j := i + 1; j < len(segs) && avail < int64(maxBytes); j++ {
		p := l.partLocked(segs[j], hw)
		if p.limit == 0 {
			p.s.release()
			break
		}
		parts = append(parts, p)
		avail += p.limit
	}
	for k := range parts {
		// The offsets of a part end where the next segment begins, or at
		// the high watermark.
		parts[k].next = hw.offset
		if j := i + k + 1; j < len(segs) {
			parts[k].next = min(segs[j].base, hw.offset)
		}
	}
	return res, parts, nil
}
