package storage

import (
	"fmt"

	"github.com/skiffmq/skiff/protocol"
)

// ReadResult is what Read returns.
type ReadResult struct {
	Records        []byte // whole batches, starting at the batch that contains offset; nil if none
	HighWatermark  int64
	LogStartOffset int64
}

// readPart is a segment a read may take bytes from, with what it needs to
// do so without l.mu: a reference, the readable limit and the index.
type readPart struct {
	s     *segment
	f     File  // s's file, pinned by open; nil before
	limit int64 // bytes below the high watermark
	idx   []offsetEntry
	tidx  []timeEntry
	lazy  *lazyIndex
	next  int64 // exclusive bound of the offsets readable below limit (set by capture)
}

// partLocked captures s for reading below hw. The caller releases it.
func (l *Log) partLocked(s *segment, hw logPos) readPart {
	p := readPart{s: s, idx: s.offIdx, tidx: s.timeIdx, lazy: s.lazy}
	switch {
	case s == hw.seg:
		p.limit = hw.pos
	case s.base < hw.offset:
		p.limit = s.size // a segment before the high watermark's is complete and durable
	}
	s.acquire()
	return p
}

// open pins the part's file (opening it if the budget closed it). Call
// without l.mu.
func (p *readPart) open() error {
	f, err := p.s.pin()
	if err != nil {
		return err
	}
	p.f = f
	return nil
}

// done unpins the file, if open pinned it, and drops the reference.
func (p *readPart) done() {
	if p.f != nil {
		p.s.unpin()
		p.f = nil
	}
	p.s.release()
}

// openParts pins the files of every part. On error it undoes the pins it
// took; the caller still releases every part (done).
func openParts(parts []readPart) error {
	for i := range parts {
		if err := parts[i].open(); err != nil {
			for k := range i {
				parts[k].s.unpin()
				parts[k].f = nil
			}
			return err
		}
	}
	return nil
}

// seek returns the position and header of the first batch in p whose last
// offset is >= offset, found through the sparse index and then a scan of
// batch headers.
func (l *Log) seek(p readPart, offset int64) (int64, protocol.BatchHeader, bool, error) {
	start := int64(0)
	if offset > p.s.base {
		idx := p.idx
		if p.lazy != nil {
			idx, _ = p.lazy.entries(&l.logger)
		}
		start = lookupOffset(idx, uint32(min(offset-p.s.base, maxRelOffset)))
	}
	sc := newHeaderScanner(p.f, p.limit)
	defer sc.free()
	return sc.find(start, func(h protocol.BatchHeader) bool { return h.LastOffset() >= offset })
}

// Read returns up to maxBytes of whole batches starting with the batch
// containing offset and only below the high watermark. If minOne is true,
// the first batch is returned even if larger than maxBytes (Kafka's rule).
// Reading may cross segments. offset == HighWatermark (or anything up to the
// log end offset) returns no records and no error; offset < LogStartOffset or
// > LogEndOffset returns ErrOffsetOutOfRange. Read never waits for an fsync:
// it holds the log's lock only to capture positions, then preads.
func (l *Log) Read(offset int64, maxBytes int, minOne bool) (ReadResult, error) {
	res, parts, err := l.capture(offset, maxBytes, minOne)
	if err != nil || len(parts) == 0 {
		return res, err
	}
	defer func() {
		for i := range parts {
			parts[i].done()
		}
	}()
	if err := openParts(parts); err != nil {
		return res, err
	}

	var buf []byte
	w := 0
	for k, p := range parts {
		pos := int64(0)
		if buf == nil {
			var h protocol.BatchHeader
			var found bool
			var err error
			pos, h, found, err = l.seek(p, offset)
			if err != nil {
				return res, err
			}
			if !found {
				continue
			}
			n := p.limit - pos
			for _, q := range parts[k+1:] {
				n += q.limit
			}
			n = min(n, int64(maxBytes))
			if n < int64(h.Size()) {
				if !minOne {
					return res, nil
				}
				n = int64(h.Size())
			}
			buf = make([]byte, n)
		}
		want := min(int64(len(buf)-w), p.limit-pos)
		if want <= 0 {
			break
		}
		if _, err := p.f.ReadAt(buf[w:int64(w)+want], pos); err != nil {
			return res, fmt.Errorf("storage: read %s: %w", p.f.Name(), err)
		}
		m := wholeBatches(buf[w : int64(w)+want])
		w += m
		if int64(m) < want {
			break // maxBytes cut a batch: done
		}
	}
	if w > 0 {
		res.Records = buf[:w]
	}
	return res, nil
}

// wholeBatches returns the length of the longest prefix of b made of whole
// batches.
func wholeBatches(b []byte) int {
	p := 0
	for {
		n, err := protocol.PeekBatchSize(b[p:])
		if err != nil || n > len(b)-p {
			return p
		}
		p += n
	}
}

// readBatch reads the batch with header h at pos.
func readBatch(p readPart, pos int64, h *protocol.BatchHeader) ([]byte, error) {
	b := make([]byte, h.Size())
	if _, err := p.f.ReadAt(b, pos); err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", p.f.Name(), err)
	}
	return b, nil
}

// FindTimestamp returns the first batch (only below the high watermark, and
// not entirely below the log start offset) whose MaxTimestamp >= ts, found via
// the time index; ok=false if none. The caller decodes records inside it for
// the exact record offset.
func (l *Log) FindTimestamp(ts int64) (batch []byte, ok bool, err error) {
	after := int64(-1) // base offset of the last segment searched
	for {
		l.mu.Lock()
		if l.mu.closed {
			l.mu.Unlock()
			return nil, false, ErrClosed
		}
		hw, logStart, segs := l.mu.hw, l.mu.logStart, l.mu.segs
		var p readPart
		for i, s := range segs {
			if s.base >= hw.offset {
				break
			}
			end := l.mu.leo
			if i+1 < len(segs) {
				end = segs[i+1].base
			}
			if s.base > after && s.maxTs >= ts && end > logStart {
				p = l.partLocked(s, hw)
				break
			}
		}
		l.mu.Unlock()
		if p.s == nil {
			return nil, false, nil
		}
		if err = p.open(); err == nil {
			batch, ok, err = l.findTimestampIn(p, ts, logStart)
		}
		p.done()
		if ok || err != nil {
			return batch, ok, err
		}
		after = p.s.base
	}
}

func (l *Log) findTimestampIn(p readPart, ts, logStart int64) ([]byte, bool, error) {
	idx, tidx := p.idx, p.tidx
	if p.lazy != nil {
		idx, tidx = p.lazy.entries(&l.logger)
	}
	rel := lookupTime(tidx, ts)
	if start := p.s.base + int64(rel); start < logStart {
		rel = uint32(min(max(logStart-p.s.base, 0), maxRelOffset))
	}
	sc := newHeaderScanner(p.f, p.limit)
	defer sc.free()
	pos, h, found, err := sc.find(lookupOffset(idx, rel), func(h protocol.BatchHeader) bool {
		// An empty batch (left by compaction) holds no record to answer with.
		return h.MaxTimestamp >= ts && h.LastOffset() >= logStart && h.NumRecords > 0
	})
	if !found || err != nil {
		return nil, false, err
	}
	b, err := readBatch(p, pos, &h)
	return b, err == nil, err
}

// MaxTimestampBatch returns the batch holding the largest MaxTimestamp below
// the high watermark (ListOffsets -3); ok=false if there is none.
func (l *Log) MaxTimestampBatch() (batch []byte, ok bool, err error) {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil, false, ErrClosed
	}
	off := l.mu.hwMaxTsOffset
	if l.mu.hwMaxTs < 0 || off < l.mu.segs[0].base {
		l.mu.Unlock()
		return nil, false, nil
	}
	p := l.partLocked(l.mu.segs[findSegment(l.mu.segs, off)], l.mu.hw)
	l.mu.Unlock()
	defer p.done()
	if err := p.open(); err != nil {
		return nil, false, err
	}
	pos, h, found, err := l.seek(p, off)
	if !found || err != nil {
		return nil, false, err
	}
	b, err := readBatch(p, pos, &h)
	return b, err == nil, err
}
