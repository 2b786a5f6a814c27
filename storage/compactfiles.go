package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// The file operations of compaction, in one place, all through the store's
// FS (so that the crash-simulating MemFS covers the cleaner too).
// Everything else the cleaner does to disk goes through the segment and
// index helpers (syncDirectory, readIndexFile) that the rest of the
// package uses.

const (
	// cleanedExt marks files the cleaner is writing; a crash leaves them
	// behind and the next open deletes them (the swap never started).
	cleanedExt = ".cleaned"
	// swapExt marks cleaned files that are complete and durable: once a
	// "<base>.log.swap" exists the swap is decided, and the next open
	// completes it (Kafka's LogLoader rule).
	swapExt = ".swap"
	// cleanerCheckpointFile holds the log's first dirty offset: the cleaner
	// has compacted everything below it against itself. Kafka keeps one
	// "cleaner-offset-checkpoint" per data directory; Skiff keeps one per log,
	// beside its other per-log files.
	cleanerCheckpointFile = "cleaner-offset-checkpoint"
)

// createCompactFile creates (truncating) a file the cleaner writes.
func createCompactFile(fsys FS, path string) (File, error) {
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: compact: %w", err)
	}
	return f, nil
}

// writeCompactFile writes data to a new file at path and fsyncs it.
func writeCompactFile(fsys FS, path string, data []byte) error {
	f, err := createCompactFile(fsys, path)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Datasync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: compact: write %s: %w", path, err)
	}
	return nil
}

// renameCompactFile renames a cleaner file; a missing source is not an
// error when missingOK (an index file that a crash left unwritten is
// rebuilt at open).
func renameCompactFile(fsys FS, from, to string, missingOK bool) error {
	err := fsys.Rename(from, to)
	if err != nil && !(missingOK && errors.Is(err, os.ErrNotExist)) {
		return fmt.Errorf("storage: compact: %w", err)
	}
	return nil
}

// removeCompactFile unlinks path; a missing file is fine.
func removeCompactFile(fsys FS, path string) error {
	if err := fsys.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: compact: %w", err)
	}
	return nil
}

// readCompactFile returns the content of a small file, or ok=false if it
// does not exist.
func readCompactFile(fsys FS, path string) (b []byte, ok bool, err error) {
	b, ok, err = readIndexFile(fsys, path)
	if err != nil {
		err = fmt.Errorf("storage: compact: %w", err)
	}
	return b, ok, err
}

// listCompactDir returns the names of the plain files in dir.
func listCompactDir(fsys FS, dir string) ([]string, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: compact: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// openCompactFile opens a file for reading.
func openCompactFile(fsys FS, path string) (File, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("storage: compact: %w", err)
	}
	return f, nil
}

// fileAppender writes sequentially to a File, which has only WriteAt, so
// that a bufio.Writer can batch the cleaner's small writes.
type fileAppender struct {
	f   File
	off int64
}

func (a *fileAppender) Write(p []byte) (int, error) {
	n, err := a.f.WriteAt(p, a.off)
	a.off += int64(n)
	return n, err
}

// batchReader reads the whole batches of one segment file in order, through
// a window of a few hundred KiB, so that cleaning reads each file once in
// large sequential preads.
type batchReader struct {
	r      io.ReaderAt
	name   string
	limit  int64
	pos    int64 // file position of the next batch
	buf    []byte
	win    []byte // file bytes [winPos, winPos+len(win))
	winPos int64
}

const batchReaderWindow = 256 << 10

// next returns the next batch and its file position, or nil at the end.
// The bytes are valid until the next call.
func (br *batchReader) next() ([]byte, int64, error) {
	if br.pos >= br.limit {
		return nil, br.pos, nil
	}
	need := func(n int64) error {
		if br.pos >= br.winPos && br.pos+n <= br.winPos+int64(len(br.win)) {
			return nil
		}
		size := min(max(int64(batchReaderWindow), n), br.limit-br.pos)
		if size < n {
			return fmt.Errorf("%w: %s at %d", errCorruptSegment, br.name, br.pos)
		}
		if int64(cap(br.buf)) < size {
			br.buf = make([]byte, size)
		}
		if _, err := br.r.ReadAt(br.buf[:size], br.pos); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("storage: compact: read %s: %w", br.name, err)
		}
		br.win, br.winPos = br.buf[:size], br.pos
		return nil
	}
	if err := need(12); err != nil {
		return nil, br.pos, err
	}
	size := int64(batchSize(br.win[br.pos-br.winPos:]))
	if size < 12 {
		return nil, br.pos, fmt.Errorf("%w: %s at %d", errCorruptSegment, br.name, br.pos)
	}
	if err := need(size); err != nil {
		return nil, br.pos, err
	}
	at := br.pos
	b := br.win[at-br.winPos : at-br.winPos+size]
	br.pos += size
	return b, at, nil
}
