package protocol

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// TestValidateBatchLengthNearMaxInt32 is the regression test for a length
// field near MaxInt32: Size() is Length+12 in an int, which wraps negative
// on 32-bit platforms, so ValidateBatch's bounds check passed and the CRC
// slice panicked. Run it with GOARCH=386 to see the original failure.
func TestValidateBatchLengthNearMaxInt32(t *testing.T) {
	for _, length := range []int32{math.MaxInt32, math.MaxInt32 - batchLengthOverhead + 1, math.MaxInt32 - batchLengthOverhead} {
		b := make([]byte, BatchHeaderSize+16)
		binary.BigEndian.PutUint32(b[offBatchLength:], uint32(length))
		b[offMagic] = 2
		if _, err := ValidateBatch(b); err == nil {
			t.Fatalf("length %d: accepted a %d-byte input", length, len(b))
		}
		if n, err := PeekBatchSize(b); err == nil && n < BatchHeaderSize {
			t.Fatalf("length %d: PeekBatchSize %d", length, n)
		}
		if h, err := ParseBatchHeader(b); err == nil && h.Size() < BatchHeaderSize {
			t.Fatalf("length %d: Size %d", length, h.Size())
		}
		if _, err := DecodeRecords(b, nil); !errors.Is(err, ErrBatchTruncated) && !errors.Is(err, ErrBatchLength) {
			t.Fatalf("length %d: DecodeRecords: %v", length, err)
		}
	}
}
