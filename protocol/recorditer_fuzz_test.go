package protocol_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/protocol/protocoltest"
)

// validateFuzzLimit keeps decompression bombs cheap under the fuzzer.
const validateFuzzLimit = 128 << 10

// FuzzValidateRecords: produce-time record validation, every codec. On any
// bytes it must not panic and must fail only with its documented errors.
// What it accepts must be exactly what its header claims, as the full
// decoder sees it: DecodeRecords and a full iteration give the same records,
// NumRecords of them with offset deltas 0..n-1, and the max timestamp it
// reports. The skip-key-value and full iterations must agree on whether a
// batch is well formed.
func FuzzValidateRecords(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, codec := range allCodecs {
		for _, n := range []int{1, 4} {
			b := buildBatch(f, codec, testRecords(rng, n))
			f.Add(b)
			f.Add(b[:len(b)-1])
		}
	}
	for _, lb := range protocoltest.LyingBatches(1e12) {
		f.Add(lb.Batch)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := protocol.ValidateRecords(b, validateFuzzLimit)
		full, fullErr := iterate(b, protocol.IterFull, validateFuzzLimit)
		skipped, skipErr := iterate(b, protocol.IterSkipKeyValue, validateFuzzLimit)
		if (fullErr == nil) != (skipErr == nil) || len(full) != len(skipped) {
			t.Fatalf("full iteration: %d records, %v; skip iteration: %d records, %v", len(full), fullErr, len(skipped), skipErr)
		}
		for i := range full {
			if full[i].OffsetDelta != skipped[i].OffsetDelta || full[i].TimestampDelta != skipped[i].TimestampDelta ||
				full[i].Attributes != skipped[i].Attributes {
				t.Fatalf("record %d: full %+v, skip %+v", i, full[i], skipped[i])
			}
		}
		if err != nil {
			for _, known := range []error{protocol.ErrRecordsCorrupt, protocol.ErrCompressedCorrupt,
				protocol.ErrDecompressedTooLarge, protocol.ErrBatchTruncated, protocol.ErrBatchLength,
				protocol.ErrBatchMagic, protocol.ErrBatchCodec} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("error outside the documented ones: %v", err)
		}
		h, _ := protocol.ParseBatchHeader(b)
		if fullErr != nil || int32(len(full)) != h.NumRecords || h.LastOffsetDelta != h.NumRecords-1 {
			t.Fatalf("accepted a batch of %d records (last offset delta %d) that iterates to %d records, %v",
				h.NumRecords, h.LastOffsetDelta, len(full), fullErr)
		}
		maxTs := int64(-1)
		for i, r := range full {
			if r.OffsetDelta != int32(i) {
				t.Fatalf("accepted record %d with offset delta %d", i, r.OffsetDelta)
			}
			maxTs = max(maxTs, h.BaseTimestamp+r.TimestampDelta)
		}
		if maxTs != info.MaxTimestamp {
			t.Fatalf("max timestamp %d, records say %d", info.MaxTimestamp, maxTs)
		}
		decoded, err := protocol.DecodeRecords(b, nil)
		if err != nil {
			t.Fatalf("ValidateRecords accepted what DecodeRecords refuses: %v", err)
		}
		if !reflect.DeepEqual(normalize(decoded), normalize(full)) {
			t.Fatalf("iteration and DecodeRecords disagree")
		}
		// The accepted batch survives a rebuild with the same records.
		rebuilt, err := protocol.BuildBatch(nil, h, h.Codec(), decoded)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := protocol.ValidateRecords(rebuilt, 2*validateFuzzLimit); err != nil {
			t.Fatalf("rebuilt batch refused: %v", err)
		}
	})
}
