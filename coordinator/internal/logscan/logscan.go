// Package logscan reads an internal topic's partition log from its start,
// one whole record batch at a time. The group and transaction
// coordinators replay their state with it at start-up.
package logscan

import (
	"fmt"

	"github.com/skiffmq/skiff/protocol"
)

// Reader is the part of a partition log a scan needs: whole batches from
// an offset, and the high watermark.
type Reader interface {
	ReadRecords(offset int64, maxBytes int) (records []byte, highWatermark int64, err error)
}

const (
	initialReadBytes = 1 << 20
	// maxReadBytes bounds the read buffer when a single batch is larger
	// than what was asked for, so a corrupt length cannot grow it forever.
	maxReadBytes = 1 << 28
)

// Batches calls fn for every batch below the high watermark, in order. A
// batch cut short by the read size is read again whole.
func Batches(r Reader, fn func(batch []byte, h protocol.BatchHeader) error) error {
	var offset int64
	maxBytes := initialReadBytes
	for {
		data, hwm, err := r.ReadRecords(offset, maxBytes)
		if err != nil {
			return fmt.Errorf("reading at offset %d: %w", offset, err)
		}
		if offset >= hwm || len(data) == 0 {
			return nil
		}
		consumed := 0
		for len(data)-consumed >= protocol.BatchHeaderSize {
			size, err := protocol.PeekBatchSize(data[consumed:])
			if err != nil {
				return fmt.Errorf("at offset %d: %w", offset, err)
			}
			if size > len(data)-consumed {
				break
			}
			b := data[consumed : consumed+size]
			h, err := protocol.ParseBatchHeader(b)
			if err != nil {
				return fmt.Errorf("at offset %d: %w", offset, err)
			}
			if err := fn(b, h); err != nil {
				return fmt.Errorf("at offset %d: %w", offset, err)
			}
			offset = h.LastOffset() + 1
			consumed += size
		}
		if consumed == 0 {
			if maxBytes >= maxReadBytes {
				return fmt.Errorf("at offset %d: batch larger than %d bytes", offset, maxBytes)
			}
			maxBytes *= 2
		}
	}
}
