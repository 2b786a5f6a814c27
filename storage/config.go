package storage

import (
	"fmt"
	"math"
)

const week = 7 * 24 * 60 * 60 * 1000 // milliseconds

// Config holds the per-log settings (Kafka topic-config names in comments).
type Config struct {
	SegmentBytes       int64 // segment.bytes, default 1 GiB
	SegmentMs          int64 // segment.ms, default 7 days; roll when the active segment's first batch is older
	IndexIntervalBytes int32 // index.interval.bytes, default 4096
	RetentionMs        int64 // retention.ms, default 7 days; -1 unlimited
	RetentionBytes     int64 // retention.bytes, default -1 unlimited

	// Durability. Durable (the default, true) means: an append is made durable
	// with fdatasync, concurrent appends share one fsync (group commit), and
	// the high watermark only covers fsynced data. Durable=false is Kafka's
	// page-cache behaviour: fsync when FlushMessages unflushed messages have
	// accumulated or FlushMs has elapsed (flush.messages / flush.ms; 0 or
	// math.MaxInt64 = never by that rule), and the high watermark is the log
	// end offset.
	Durable       bool
	FlushMessages int64
	FlushMs       int64

	// Compaction (see cleaner.go). Compact says cleanup.policy holds
	// "compact"; retention by time and size is the caller's business
	// ("delete"), as EnforceRetention is called only for such topics.
	Compact                bool
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio, default 0.5
	MinCompactionLagMs     int64   // min.compaction.lag.ms, default 0
	MaxCompactionLagMs     int64   // max.compaction.lag.ms, default MaxInt64
	DeleteRetentionMs      int64   // delete.retention.ms, default 1 day: how long tombstones and removable markers outlive their first cleaning
}

// DefaultConfig returns Kafka's topic defaults with Skiff's durable group
// commit switched on.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentMs:          week,
		IndexIntervalBytes: 4096,
		RetentionMs:        week,
		RetentionBytes:     -1,
		Durable:            true,
		FlushMessages:      math.MaxInt64,
		FlushMs:            math.MaxInt64,

		MinCleanableDirtyRatio: 0.5,
		MaxCompactionLagMs:     math.MaxInt64,
		DeleteRetentionMs:      24 * 60 * 60 * 1000,
	}
}

// Validate reports the first setting that is out of range.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes <= 0 || c.SegmentBytes > math.MaxInt32:
		// Index entries hold 4-byte file positions, as in Kafka.
		return fmt.Errorf("storage: segment.bytes %d not in [1, %d]", c.SegmentBytes, math.MaxInt32)
	case c.SegmentMs <= 0:
		return fmt.Errorf("storage: segment.ms %d must be positive", c.SegmentMs)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("storage: index.interval.bytes %d must not be negative", c.IndexIntervalBytes)
	case c.RetentionMs < -1:
		return fmt.Errorf("storage: retention.ms %d must be -1 or more", c.RetentionMs)
	case c.RetentionBytes < -1:
		return fmt.Errorf("storage: retention.bytes %d must be -1 or more", c.RetentionBytes)
	case c.FlushMessages < 0:
		return fmt.Errorf("storage: flush.messages %d must not be negative", c.FlushMessages)
	case c.FlushMs < 0:
		return fmt.Errorf("storage: flush.ms %d must not be negative", c.FlushMs)
	case c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1:
		return fmt.Errorf("storage: min.cleanable.dirty.ratio %g not in [0, 1]", c.MinCleanableDirtyRatio)
	case c.MinCompactionLagMs < 0:
		return fmt.Errorf("storage: min.compaction.lag.ms %d must not be negative", c.MinCompactionLagMs)
	case c.Compact && c.MaxCompactionLagMs < 1:
		return fmt.Errorf("storage: max.compaction.lag.ms %d must be positive", c.MaxCompactionLagMs)
	case c.DeleteRetentionMs < 0:
		return fmt.Errorf("storage: delete.retention.ms %d must not be negative", c.DeleteRetentionMs)
	}
	return nil
}

// flushMessages returns the flush.messages threshold and whether the rule is
// on at all.
func (c Config) flushMessages() (int64, bool) {
	return c.FlushMessages, c.FlushMessages > 0 && c.FlushMessages != math.MaxInt64
}

// flushMs returns the flush.ms interval and whether the rule is on at all.
func (c Config) flushMs() (int64, bool) {
	return c.FlushMs, c.FlushMs > 0 && c.FlushMs != math.MaxInt64
}
