package storage

import (
	"container/list"
	"fmt"
	"os"
	"sync"
)

// Sealed segments do not keep their log file open. Kafka holds a descriptor
// (and two mapped indexes) for every segment of every partition, which is
// why it asks for a raised ulimit; 10,000 segments would be 10,000
// descriptors. Skiff opens a sealed segment's file when a reader (a fetch,
// a timestamp lookup, the cleaner, a flush) needs it and keeps it open
// while it is idle only as long as a broker-wide budget allows: the idle
// files sit in an LRU, and opening one more than the budget closes the one
// idle the longest.
//
// A file is pinned while it is in use (segment.pin, unpin): a pinned file is
// never closed, so a FileRead's ranges stay valid for sendfile until its
// Release. The active segment, and a rolled segment until its first fsync,
// hold the log's own pin: appends and the fsync that acknowledges them use
// the descriptor they were written through. A segment whose files are
// unlinked or renamed away (retention, compaction's swap, a deleted log)
// while others still hold references is opened first and never evicted
// after (segment.holdOpen), since its path no longer names its data.

// DefaultSegmentFiles is the budget of open sealed-segment files used when
// StoreOptions.SegmentFiles is 0: a quarter of the process's descriptor
// limit (which the Go runtime raises to the hard limit at start), leaving
// the rest to active segments, connections and everything else.
func DefaultSegmentFiles() int {
	n, ok := fileLimit()
	if !ok || n == 0 {
		return 256
	}
	return int(max(min(n/4, 1<<20), 16)) // 1<<20: RLIM_INFINITY means more than needed
}

// fileBudget is the budget of open sealed-segment files, shared by every
// log of a store.
type fileBudget struct {
	max int

	// mu is a leaf and guards only counts and the list: no file is opened
	// or closed under it (segment.fmu is held for that, with mu released).
	mu struct {
		sync.Mutex
		open int        // files counted against max (see segment.counted)
		idle *list.List // of *segment: counted, unpinned, least recently used first
	}
}

func newFileBudget(max int) *fileBudget {
	if max <= 0 {
		max = DefaultSegmentFiles()
	}
	c := &fileBudget{max: max}
	c.mu.idle = list.New()
	return c
}

// Open is the number of sealed-segment files open now (idle or in use).
func (c *fileBudget) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.open
}

// count adds (or with -1 removes) a file to the open count. Call with the
// segment's fmu held.
func (c *fileBudget) count(n int) {
	c.mu.Lock()
	c.mu.open += n
	c.mu.Unlock()
}

// setIdle puts s at the recent end of the LRU (idle) or takes it out. Call
// with s.fmu held.
func (c *fileBudget) setIdle(s *segment, idle bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.lruElem != nil {
		c.mu.idle.Remove(s.lruElem)
		s.lruElem = nil
	}
	if idle {
		s.lruElem = c.mu.idle.PushBack(s)
	}
}

func (c *fileBudget) inLRU(s *segment) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.lruElem != nil
}

// evict closes idle files, least recently used first, while more than max
// are open. Call with no segment's fmu held.
func (c *fileBudget) evict() {
	for {
		c.mu.Lock()
		front := c.mu.idle.Front()
		if c.mu.open <= c.max || front == nil {
			c.mu.Unlock()
			return
		}
		s := front.Value.(*segment)
		c.mu.idle.Remove(front)
		s.lruElem = nil
		c.mu.Unlock()
		// Between the two locks a reader may have pinned s, or pinned
		// and unpinned it (putting it back in the LRU): then it stays.
		s.fmu.Lock()
		if s.pins == 0 && s.counted && !s.keep && !c.inLRU(s) {
			s.closeFileLocked()
		}
		s.fmu.Unlock()
	}
}

// pin returns the segment's open file, opening it if the budget closed it,
// and keeps it open until unpin. Call without Log.mu: opening is disk I/O.
// The caller holds a reference (acquire), so the segment is not released
// meanwhile.
func (s *segment) pin() (File, error) {
	s.fmu.Lock()
	opened := false
	if s.f == nil {
		if s.released {
			s.fmu.Unlock()
			return nil, fmt.Errorf("storage: segment %s is closed", s.path+logExt)
		}
		f, err := s.fs.OpenFile(s.path+logExt, os.O_RDONLY, 0)
		if err != nil {
			s.fmu.Unlock()
			return nil, fmt.Errorf("storage: open segment: %w", err)
		}
		s.f, s.counted, opened = f, true, true
		s.files.count(1)
	}
	s.pins++
	if s.pins == 1 && s.counted && !opened {
		s.files.setIdle(s, false)
	}
	f := s.f
	s.fmu.Unlock()
	if opened {
		s.files.evict()
	}
	return f, nil
}

// unpin ends a use begun by pin: the file becomes idle, and the budget may
// close it from now on.
func (s *segment) unpin() {
	s.fmu.Lock()
	s.pins--
	idle := s.pins == 0 && s.counted && !s.keep && s.f != nil
	if idle {
		s.files.setIdle(s, true)
	}
	s.fmu.Unlock()
	if idle {
		s.files.evict()
	}
}

// unpinLog drops the log's own pin once the segment is sealed and durable:
// its file now counts against the budget like any sealed segment's.
func (s *segment) unpinLog() {
	s.fmu.Lock()
	if s.f != nil && !s.counted {
		s.counted = true
		s.files.count(1)
	}
	s.fmu.Unlock()
	s.unpin()
}

// holdOpen opens the file if it is closed and keeps it open until the last
// reference is released. Called before the segment's path stops naming its
// data (unlink, or a compaction's cleaned segment taking the name), while
// references other than the log's may still read it.
func (s *segment) holdOpen() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.keep = true
	if s.f != nil {
		if s.counted && s.pins == 0 {
			s.files.setIdle(s, false)
		}
		return nil
	}
	if s.released {
		return nil
	}
	f, err := s.fs.OpenFile(s.path+logExt, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("storage: open segment: %w", err)
	}
	s.f, s.counted = f, true
	s.files.count(1)
	return nil
}

// closeFile closes the file for good with the last reference.
func (s *segment) closeFile() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.released = true
	if s.f != nil {
		s.closeFileLocked()
	}
}

func (s *segment) closeFileLocked() {
	_ = s.f.Close()
	s.f = nil
	if s.counted {
		s.counted = false
		s.files.setIdle(s, false)
		s.files.count(-1)
	}
}
