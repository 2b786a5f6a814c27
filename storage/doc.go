// Package storage is Skiff's partition log: Kafka's segmented log of record
// batches, with sparse offset and time indexes, recovery after a crash,
// retention, and a durability model built on group commit.
//
// It knows record batches only by their v2 header (protocol.ParseBatchHeader
// and friends): it validates CRCs, assigns offsets by rewriting base offsets,
// and stores the bytes exactly as the producer sent them.
//
// # Layout
//
// A Store owns a data directory with one directory per partition, named
// "<topic>-<partition>", plus a lock file, the recovery point checkpoint
// "recovery-point-offset-checkpoint" (Kafka's format) and, between a clean
// shutdown and the next start, the marker ".skiff_cleanshutdown". A log
// directory holds "producer-state.snapshot" (see producersnapshot.go) and
// segments, each three files named by the segment's base offset, zero-padded
// to 20 digits as in Kafka:
//
//	00000000000000000000.log        the batches, back to back
//	00000000000000000000.index      sparse offset index: 4-byte offset relative to the
//	                                base + 4-byte file position, one entry per
//	                                index.interval.bytes of batches
//	00000000000000000000.timeindex  8-byte timestamp + 4-byte relative offset, an entry
//	                                whenever the largest timestamp grew at an index point
//	log-start-offset                the log start offset, once DeleteRecordsBefore moved it
//	                                past the first segment's base
//	cleaner-offset-checkpoint       compacted logs: the first dirty offset (everything
//	                                below was cleaned against itself)
//	*.cleaned, *.swap               compacted logs: a cleaned segment being written, or
//	                                written and about to replace the old ones (see
//	                                compactswap.go; an open finishes or drops them)
//
// All but the last segment are immutable; appends go to the last, the active
// segment, which rolls (a new segment starts at the log end offset) when an
// append would exceed segment.bytes or segment.ms has passed since its first
// batch's timestamp. Index entries are kept in memory and written to their
// files, atomically (temp file, fsync, rename), when a segment rolls and when
// the log closes. The indexes of segments found complete at start-up are
// read from disk on first use only.
//
// # Usage
//
//	st, err := storage.OpenStore(dir, logger)
//	lg, err := st.OpenLog("orders-0", storage.DefaultConfig())
//	res, err := lg.Append(records, storage.AppendOptions{Sync: true}) // acks=1/all
//	ch := lg.Wait()                                                   // long poll: Wait first,
//	rr, err := lg.Read(offset, 1<<20, true)                           // then read, then <-ch
//	err = st.Close()                                                  // fsync all, mark clean
//
// # Durability
//
// In Durable mode (the default) an append is written to the page cache under
// the log's lock and made durable with fdatasync outside it. Appends with
// Sync set wait for an fsync round that started after their write: one round
// at a time runs, covering every append written before it started, and a
// waiter covered by another's round returns without an fsync of its own
// (group commit). Appends without Sync (acks=0) start a background flush and
// return. The high watermark, and so what Read, FindTimestamp and
// MaxTimestampBatch can see, covers only fsynced data; Wait wakes long polls
// when it advances. When a segment rolls, it is fsynced and the directory is
// fsynced before the high watermark enters the new segment; its indexes are
// written in the same round (if that fails, at a later round or at Close; a
// missing index is rebuilt at open).
//
// # Replication
//
// A log keeps Kafka's leader-epoch cache (epochcache.go, KIP-101): the
// first offset of every leader epoch, from the PartitionLeaderEpoch of the
// batches, persisted as leader-epoch-checkpoint by the flush round before
// the data it covers counts as flushed (an open after a crash rescans the
// batches past the recovery point). replica.go holds what a replica needs:
// AppendReplicated (a leader's batches kept as they are), Flush,
// TruncateTo and ResetTo (a follower's divergent tail, or a restart at its
// leader's log start), ReadFileReplica (a leader serving followers up to
// its durable end), and SetHighWatermarkCap, which bounds the high
// watermark by what the in-sync replicas hold (math.MaxInt64 on one node:
// the high watermark is the durable end, as always).
//
// # Disk faults
//
// A failed write to a segment (a full disk, an I/O error) fails that append
// with ErrWriteFailed and cuts whatever part of it reached the file off
// again, so no half batch stays on disk. The log logs once that it is
// offline for writes; every later append tries again, and the first that
// succeeds brings it back (logged too): writes resume by themselves once
// space is freed. A failed fsync is different: the kernel may have dropped
// the dirty pages, so the log fails (ErrLogFailed) and refuses appends until
// it is reopened, which recovers it from what is really on disk. Reads of
// data below the high watermark keep working in both cases.
//
// # Filesystem
//
// Every file operation goes through FS (StoreOptions.FS): OSFS in
// production, MemFS in tests, which simulates crashes (only synced data and
// synced directory entries are sure to survive; the rest is kept in part or
// torn) and injects write and fsync errors and a full disk.
//
// With Durable=false the log behaves as Kafka does by default: the high
// watermark is the log end offset, and data is fsynced only when
// flush.messages records are unflushed (the appender waits, as in Kafka),
// when flush.ms has passed, on roll and on close.
//
// # Recovery
//
// OpenStore removes the clean-shutdown marker durably, and Store.Close writes
// it after every log was flushed, so its presence at start-up proves that all
// data and index files are complete. After a clean stop a log opens without
// scanning: only the active segment's tail past its last index entry (at most
// about one index interval) is read to find the log end offset.
//
// Each log's recovery point is its flushed offset; the store checkpoints
// them (temp file, fsync, rename, directory fsync; no store-wide lock held)
// every StoreOptions.RecoveryPointInterval, after a flush made a rolled
// segment durable, and at Close. After an unclean stop, segments before the
// one holding the log's recovery point open as after a clean stop: they
// were fsynced whole, so damage found in them later is the reader's CRC
// check's business and costs no other data. From that segment on (every
// segment, without a checkpoint entry) each segment's tail past its last
// index entry is validated with protocol.ValidateBatch (a segment with
// missing or inconsistent index files is validated whole); at the first
// torn or corrupt batch any later segments are deleted and then the file is
// truncated, as Kafka does past its recovery point (in that order, so that
// a crash in between redoes both), logged as warnings with the bytes and
// offsets lost, and its indexes are rebuilt. Index files are only ever
// written from memory, atomically, so on disk they always describe a prefix
// of their log file; the tail scan is what catches data written after them.
// Damaged or missing index files are rebuilt from their segment. A segment
// log file missing between others (its index files left behind) refuses
// the log with ErrMissingSegment, naming the file and the fix, instead of
// opening with a silent hole; a log that ends before its checkpointed
// recovery point (files deleted or cut from outside) logs the offsets lost.
//
// # Compaction
//
// Logs with Config.Compact (cleanup.policy=compact) are cleaned by the
// store's cleaner threads (cleaner.go, log.cleaner.* settings): each
// picks the log with the highest dirty ratio that is due
// (min.cleanable.dirty.ratio, max.compaction.lag.ms, or a tombstone
// horizon passed), builds a bounded key -> latest offset map over the dirty
// part without any lock, rewrites the segments from the log start to the
// map's end in groups of at most segment.bytes, and swaps each group in
// atomically. Offsets never change; batches keep their codec and producer
// fields; transactions, markers, tombstones and each producer's last batch
// follow Kafka's LogCleaner (compact.go). The clock is StoreOptions.Now,
// so tests drive horizons and lags without waiting.
//
// # Producer state
//
// Idempotent and transactional producers are tracked per log
// (producerstate.go) and forgotten once idle for
// StoreOptions.ProducerIDExpiration (producer.id.expiration.ms) unless they
// have an open transaction; the store checks every
// ProducerIDExpirationCheckInterval.
//
// # Concurrency
//
// A Log is safe for concurrent use. Its mutable state sits in a mu struct
// guarded by its mutex; methods that need the lock end in Locked. Reads hold
// the lock only to capture positions, then pread without it, so they never
// wait behind an fsync or a large append. Segments are reference counted so
// that retention can delete a segment while a read of it is in flight. Every
// goroutine the package starts belongs to a log and Close waits for it.
// The package's locks (Store, Log, segment.fmu, fileBudget, MemFS) and
// their order are in LOCKS.md at the repository root.
//
// # File descriptors
//
// Only the active segment of each log keeps its file open for good. A
// sealed segment's file is opened when a reader, the cleaner or a flush
// pins it, and stays open while idle only within the store's budget
// (StoreOptions.SegmentFiles, by default a quarter of RLIMIT_NOFILE); past
// it the file idle the longest is closed (segfiles.go). Kafka keeps every
// segment open. A log that opens after a clean stop opens no sealed
// segment's file at all, and reads its indexes on the first lookup.
//
// # Reads that outlive the call
//
// ReadFile returns file ranges (segment file, offset, length) instead of
// bytes, for a server that sends them to a socket with sendfile. The
// FileRead holds a reference to each segment it names until Release, which
// may be long after ReadFile returned (the socket may be slow). That is
// safe because nothing rewrites a segment file's bytes below its size while
// any reference exists, and every path that drops a segment (retention,
// DeleteRecordsBefore, Log.Delete for a deleted topic, Log.Close) only
// unlinks its files and drops the log's reference: the descriptor is
// closed by the last release. A FileRead pins its files, so the budget
// never closes them under the sender; a segment unlinked while readers
// hold it is opened first (if the budget had closed it) and kept open. Code that replaces segments (compaction) must
// follow the same rule: write new files, swap them into l.mu.segs, then
// removeFiles and release the old segments, never truncate or overwrite a
// segment in place. The bytes a FileRead names are whole batches below the
// high watermark at the time of the read; ReadFile reads only batch headers
// (through the offset index) to find their bounds.
package storage
