package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
)

// The producer state snapshot, modelled on Kafka's .snapshot files: a
// versioned header with a CRC32C over the rest, then compact binary
// entries, so writing it costs a few dozen bytes per live producer however
// long the log's history is (expired producers are not in it).
//
//	version          int16   producerSnapshotVersion
//	crc              uint32  CRC32C of every byte after this field
//	offset           int64   the state is that after every batch below it
//	producers        int32   count
//	aborted          int32   count
//	producers, each 31 bytes plus 16 per remembered batch:
//	  producer id int64, epoch int16, last timestamp int64,
//	  coordinator epoch int32, open transaction's first offset int64,
//	  batches uint8 (0-5), then per batch, oldest first:
//	    first sequence int32, last offset delta int32, first offset int64
//	aborted, each 32 bytes:
//	  producer id int64, first offset int64, last offset int64,
//	  last stable offset int64
//
// Unlike Kafka, which keeps only each producer's last batch, all five
// remembered batches are kept, so a retry of any in-flight batch is still
// answered as a duplicate after a restart.
//
// Snapshots written as JSON (producer-state.json) by earlier versions are
// still read; the next snapshot replaces them.

const (
	producerSnapshotFile    = "producer-state.snapshot"
	legacyProducerStateFile = "producer-state.json"
	producerSnapshotVersion = 1

	snapshotHeaderSize   = 2 + 4 + 8 + 4 + 4
	snapshotEntrySize    = 8 + 2 + 8 + 4 + 8 + 1 // without its batches
	snapshotBatchSize    = 4 + 4 + 8
	snapshotAbortedSize  = 8 * 4
	snapshotCRCDataStart = 2 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorruptSnapshot marks a snapshot that must not be trusted; the log is
// then rebuilt from a scan.
var errCorruptSnapshot = errors.New("storage: corrupt producer state snapshot")

// encodeProducerSnapshot renders the state after every batch below offset.
// Aborted transactions wholly below logStart are dropped, as Kafka drops
// .txnindex files with their segments.
func encodeProducerSnapshot(ps *producerState, offset, logStart int64) []byte {
	pids := make([]int64, 0, len(ps.producers))
	for pid := range ps.producers {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	var aborted []AbortedTxn
	for _, a := range ps.aborted {
		if a.LastOffset >= logStart {
			aborted = append(aborted, a)
		}
	}
	size := snapshotHeaderSize + len(aborted)*snapshotAbortedSize
	for _, e := range ps.producers {
		size += snapshotEntrySize + int(e.n)*snapshotBatchSize
	}
	b := make([]byte, snapshotHeaderSize, size)
	be := binary.BigEndian
	be.PutUint16(b[0:], producerSnapshotVersion)
	be.PutUint64(b[6:], uint64(offset))
	be.PutUint32(b[14:], uint32(len(pids)))
	be.PutUint32(b[18:], uint32(len(aborted)))
	for _, pid := range pids {
		e := ps.producers[pid]
		b = be.AppendUint64(b, uint64(pid))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = be.AppendUint64(b, uint64(e.lastTs))
		b = be.AppendUint32(b, uint32(e.coordEpoch))
		b = be.AppendUint64(b, uint64(e.txnFirst))
		b = append(b, e.n)
		for i := range int(e.n) {
			bt := e.batch(i)
			b = be.AppendUint32(b, uint32(bt.firstSeq))
			b = be.AppendUint32(b, uint32(bt.delta))
			b = be.AppendUint64(b, uint64(bt.firstOffset))
		}
	}
	for _, a := range aborted {
		b = be.AppendUint64(b, uint64(a.ProducerID))
		b = be.AppendUint64(b, uint64(a.FirstOffset))
		b = be.AppendUint64(b, uint64(a.LastOffset))
		b = be.AppendUint64(b, uint64(a.LastStableOffset))
	}
	be.PutUint32(b[2:], crc32.Checksum(b[snapshotCRCDataStart:], castagnoli))
	return b
}

// decodeProducerSnapshot fills ps (initialized) from b and returns the
// snapshot's offset.
func decodeProducerSnapshot(b []byte, ps *producerState) (int64, error) {
	be := binary.BigEndian
	if len(b) < snapshotHeaderSize {
		return 0, fmt.Errorf("%w: %d bytes", errCorruptSnapshot, len(b))
	}
	if v := int16(be.Uint16(b)); v != producerSnapshotVersion {
		return 0, fmt.Errorf("%w: version %d", errCorruptSnapshot, v)
	}
	if crc := crc32.Checksum(b[snapshotCRCDataStart:], castagnoli); crc != be.Uint32(b[2:]) {
		return 0, fmt.Errorf("%w: crc mismatch", errCorruptSnapshot)
	}
	offset := int64(be.Uint64(b[6:]))
	np, na := int64(be.Uint32(b[14:])), int64(be.Uint32(b[18:]))
	corrupt := func(what string) (int64, error) {
		return 0, fmt.Errorf("%w: %s (%d bytes for %d producers and %d aborted transactions)", errCorruptSnapshot, what, len(b), np, na)
	}
	if offset < 0 || int64(len(b)) < snapshotHeaderSize+np*snapshotEntrySize+na*snapshotAbortedSize {
		return corrupt("too short")
	}
	p := b[snapshotHeaderSize:]
	for range np {
		if len(p) < snapshotEntrySize {
			return corrupt("producer entry cut short")
		}
		pid := int64(be.Uint64(p))
		e := newProducerEntry()
		e.epoch = int16(be.Uint16(p[8:]))
		e.lastTs = int64(be.Uint64(p[10:]))
		e.coordEpoch = int32(be.Uint32(p[18:]))
		e.txnFirst = int64(be.Uint64(p[22:]))
		n := int(p[30])
		p = p[snapshotEntrySize:]
		if n > maxProducerBatches || len(p) < n*snapshotBatchSize {
			return corrupt(fmt.Sprintf("producer %d with %d batches", pid, n))
		}
		for range n {
			e.addBatch(producerBatch{firstSeq: int32(be.Uint32(p)), delta: int32(be.Uint32(p[4:])), firstOffset: int64(be.Uint64(p[8:]))})
			p = p[snapshotBatchSize:]
		}
		ps.producers[pid] = e
		if e.txnFirst >= 0 {
			ps.ongoing[pid] = e.txnFirst
		}
	}
	if int64(len(p)) != na*snapshotAbortedSize {
		return corrupt("aborted transactions do not fill the rest")
	}
	for range na {
		ps.aborted = append(ps.aborted, AbortedTxn{
			ProducerID:       int64(be.Uint64(p)),
			FirstOffset:      int64(be.Uint64(p[8:])),
			LastOffset:       int64(be.Uint64(p[16:])),
			LastStableOffset: int64(be.Uint64(p[24:])),
		})
		p = p[snapshotAbortedSize:]
	}
	return offset, nil
}

// legacySnapshot is the JSON snapshot of earlier versions.
type legacySnapshot struct {
	Offset    int64 `json:"offset"`
	Producers []*struct {
		ID      int64 `json:"id"`
		Epoch   int16 `json:"epoch"`
		Batches []struct {
			FirstSeq    int32 `json:"first_seq"`
			LastSeq     int32 `json:"last_seq"`
			FirstOffset int64 `json:"first_offset"`
			LastOffset  int64 `json:"last_offset"`
		} `json:"batches"`
		TxnFirst   int64 `json:"txn_first"`
		LastTs     int64 `json:"last_ts"`
		CoordEpoch int32 `json:"coordinator_epoch"`
	} `json:"producers"`
	Aborted []AbortedTxn `json:"aborted"`
}

func decodeLegacySnapshot(b []byte, ps *producerState) (int64, error) {
	var snap legacySnapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return 0, fmt.Errorf("%w: %w", errCorruptSnapshot, err)
	}
	for _, p := range snap.Producers {
		if p == nil {
			continue
		}
		e := newProducerEntry()
		e.epoch, e.txnFirst, e.lastTs, e.coordEpoch = p.Epoch, p.TxnFirst, p.LastTs, p.CoordEpoch
		for _, b := range p.Batches {
			e.addBatch(producerBatch{firstSeq: b.FirstSeq, delta: int32(b.LastOffset - b.FirstOffset), firstOffset: b.FirstOffset})
		}
		ps.producers[p.ID] = e
		if e.txnFirst >= 0 {
			ps.ongoing[p.ID] = e.txnFirst
		}
	}
	ps.aborted = snap.Aborted
	return snap.Offset, nil
}

// producerSnapshotLocked encodes the state at the log end, after dropping
// expired producers (so they cost the snapshot nothing).
func (l *Log) producerSnapshotLocked() []byte {
	ps := &l.mu.producers
	if l.now != nil {
		ps.removeExpired(l.now().UnixMilli())
	}
	return encodeProducerSnapshot(ps, l.mu.leo, l.mu.logStart)
}

// saveProducerStateLocked writes the snapshot of the state at the log end
// (at Close: the lock is held, but nothing waits for it any more).
func (l *Log) saveProducerStateLocked() error {
	l.mu.pendingSnapshot = nil
	return l.writeProducerSnapshot(l.producerSnapshotLocked())
}

// writeProducerSnapshot writes an encoded snapshot (temp file, fsync,
// rename; the directory is fsynced by the caller's flush round or close)
// and removes an earlier version's JSON snapshot.
func (l *Log) writeProducerSnapshot(data []byte) error {
	if err := writeFileAtomic(l.fs, filepath.Join(l.dir, producerSnapshotFile), data, false); err != nil {
		return err
	}
	if err := l.fs.Remove(filepath.Join(l.dir, legacyProducerStateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// loadProducerStateLocked rebuilds the producer state at open: from the
// snapshot (binary, or an earlier version's JSON), if it describes a prefix
// of the log, plus the batches after it; otherwise from every batch.
// Producers already expired are dropped, as Kafka drops them when it loads
// a snapshot.
func (l *Log) loadProducerStateLocked() error {
	ps := &l.mu.producers
	ps.init()
	from := int64(-1)
	for _, f := range []struct {
		name   string
		decode func([]byte, *producerState) (int64, error)
	}{
		{producerSnapshotFile, decodeProducerSnapshot},
		{legacyProducerStateFile, decodeLegacySnapshot},
	} {
		data, err := l.fs.ReadFile(filepath.Join(l.dir, f.name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		off, err := f.decode(data, ps)
		if err != nil || off > l.mu.leo {
			if err != nil {
				l.logger.Warn().Err(err).Str("dir", l.dir).Str("file", f.name).Msg("storage: ignoring producer state snapshot; rebuilding from the log")
			}
			ps.init()
			ps.aborted = nil
			continue
		}
		from = off
		break
	}
	if from < 0 {
		ps.init()
		ps.aborted = nil
		from = 0
	}
	if err := l.scanProducersLocked(from); err != nil {
		return err
	}
	if l.now != nil {
		ps.removeExpired(l.now().UnixMilli())
	}
	return nil
}

// scanProducersLocked applies every batch from offset from to the log end.
// Only the headers are read, and the bodies of control batches.
func (l *Log) scanProducersLocked(from int64) error {
	for i, s := range l.mu.segs {
		if i+1 < len(l.mu.segs) && l.mu.segs[i+1].base <= from {
			continue
		}
		if s.size == 0 {
			continue
		}
		// At open, before the log is shared: the file is opened here
		// if it is closed, and closed by the budget after.
		f, err := s.pin()
		if err != nil {
			return err
		}
		err = scanProducersIn(&l.mu.producers, f, s.size, from)
		s.unpin()
		if err != nil {
			return err
		}
	}
	return nil
}

// scanProducersIn applies the batches of one segment file from offset from.
func scanProducersIn(ps *producerState, f File, size, from int64) error {
	sc := newHeaderScanner(f, size)
	defer sc.free()
	pos := int64(0)
	for {
		h, ok, err := sc.header(pos)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if h.BaseOffset >= from && h.HasProducerID() {
			commit, coordEpoch := false, int32(-1)
			if h.IsControl() {
				b := make([]byte, h.Size())
				if _, err := f.ReadAt(b, pos); err != nil {
					return fmt.Errorf("storage: read %s: %w", f.Name(), err)
				}
				if commit, err = markerType(b); err != nil {
					pos += int64(h.Size())
					continue
				}
				coordEpoch = markerCoordinatorEpoch(b)
			}
			ps.apply(&h, commit, coordEpoch)
		}
		pos += int64(h.Size())
	}
}
