package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

var compressedCodecs = []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// testPayloads are inputs that exercise each codec's edge cases: nothing,
// one byte, incompressible data, highly repetitive data and sizes either
// side of the snappy chunk and LZ4 block boundaries.
func testPayloads() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := bytes.Repeat([]byte(`{"user":"skiff","event":"click","n":12345}`), 5000)
	return map[string][]byte{
		"empty":           {},
		"one byte":        {42},
		"random 1 KiB":    random(1 << 10),
		"random 200 KiB":  random(200 << 10),
		"zeros 1 MiB":     make([]byte, 1<<20),
		"json-ish":        text,
		"chunk boundary":  random(xerialChunkSize),
		"chunk + 1":       random(xerialChunkSize + 1),
		"lz4 block + 1":   random(64<<10 + 1),
		"three lz4 block": text[:3*64<<10],
	}
}

func TestCompressRoundTrip(t *testing.T) {
	for _, codec := range append([]Codec{CodecNone}, compressedCodecs...) {
		for name, in := range testPayloads() {
			t.Run(fmt.Sprintf("%s/%s", codec, name), func(t *testing.T) {
				comp, err := Compress(codec, in, nil)
				if err != nil {
					t.Fatalf("Compress: %v", err)
				}
				out, err := Decompress(codec, comp, nil, 0)
				if err != nil {
					t.Fatalf("Decompress: %v", err)
				}
				if !bytes.Equal(out, in) {
					t.Fatalf("round trip changed %d bytes into %d bytes", len(in), len(out))
				}
				// Reusing a buffer must give the same result and use it.
				buf := make([]byte, 7, len(in)+64)
				out, err = Decompress(codec, comp, buf, 0)
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("Decompress into buffer: %v (equal %v)", err, bytes.Equal(out, in))
				}
			})
		}
	}
}

// kgoCodec maps our codec to franz-go's, whose encoder and decoder are an
// independent implementation that real clients run.
func kgoCodec(c Codec) kgo.CompressionCodec {
	switch c {
	case CodecGzip:
		return kgo.GzipCompression()
	case CodecSnappy:
		return kgo.SnappyCompression()
	case CodecLZ4:
		return kgo.Lz4Compression()
	case CodecZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func kgoCompress(t testing.TB, c Codec, in []byte) []byte {
	t.Helper()
	comp, err := kgo.DefaultCompressor(kgoCodec(c))
	if err != nil {
		t.Fatal(err)
	}
	out, used := comp.Compress(new(bytes.Buffer), in)
	if used != kgo.CompressionCodecType(c) {
		t.Fatalf("kgo compressed with codec %d, want %d", used, c)
	}
	return bytes.Clone(out)
}

func TestDecompressMatchesKgo(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	for _, codec := range compressedCodecs {
		for name, in := range testPayloads() {
			t.Run(fmt.Sprintf("%s/%s", codec, name), func(t *testing.T) {
				// kgo's encoder, our decoder.
				out, err := Decompress(codec, kgoCompress(t, codec, in), nil, 0)
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("decoding kgo's output: %v (equal %v)", err, bytes.Equal(out, in))
				}
				// Our encoder, kgo's decoder.
				comp, err := Compress(codec, in, nil)
				if err != nil {
					t.Fatal(err)
				}
				out, err = dec.Decompress(comp, kgo.CompressionCodecType(codec))
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("kgo decoding our output: %v (equal %v)", err, bytes.Equal(out, in))
				}
			})
		}
	}
}

// xerialFrame builds a snappy-java framed stream by hand: magic, version
// and compatible version, then length-prefixed raw snappy blocks.
func xerialFrame(chunks ...[]byte) []byte {
	out := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	for _, c := range chunks {
		block := snappy.Encode(nil, c)
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
	}
	return out
}

func TestDecompressSnappyXerial(t *testing.T) {
	a := bytes.Repeat([]byte("first chunk "), 100)
	b := []byte("second")
	c := bytes.Repeat([]byte{7}, 40000)
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"header only", xerialFrame(), []byte{}},
		{"one chunk", xerialFrame(a), a},
		{"three chunks", xerialFrame(a, b, c), append(append(append([]byte{}, a...), b...), c...)},
		{"raw block", snappy.Encode(nil, a), a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Decompress(CodecSnappy, tt.in, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tt.want) {
				t.Fatalf("got %d bytes, want %d", len(out), len(tt.want))
			}
		})
	}

	// Our framed output must parse as the hand-built format: same header,
	// and chunks of at most xerialChunkSize decoded bytes.
	comp, err := Compress(CodecSnappy, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(comp[:16], xerialFrame()) {
		t.Fatalf("header %x", comp[:16])
	}
	var chunks int
	for rest := comp[16:]; len(rest) > 0; chunks++ {
		n := binary.BigEndian.Uint32(rest)
		dl, err := snappy.DecodedLen(rest[4 : 4+n])
		if err != nil || dl > xerialChunkSize {
			t.Fatalf("chunk %d: decoded length %d, %v", chunks, dl, err)
		}
		rest = rest[4+n:]
	}
	if want := (len(c) + xerialChunkSize - 1) / xerialChunkSize; chunks != want {
		t.Fatalf("%d chunks, want %d", chunks, want)
	}
}

func TestDecompressCorrupt(t *testing.T) {
	good := map[Codec][]byte{}
	for _, c := range compressedCodecs {
		comp, err := Compress(c, bytes.Repeat([]byte("corrupt me "), 500), nil)
		if err != nil {
			t.Fatal(err)
		}
		good[c] = comp
	}
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0xff
		return b
	}
	tests := []struct {
		name  string
		codec Codec
		in    []byte
	}{
		{"gzip empty", CodecGzip, nil},
		{"gzip truncated", CodecGzip, good[CodecGzip][:len(good[CodecGzip])-5]},
		{"gzip bad crc", CodecGzip, flip(good[CodecGzip], len(good[CodecGzip])-6)},
		{"gzip trailing garbage", CodecGzip, append(bytes.Clone(good[CodecGzip]), 1, 2, 3)},
		{"snappy garbage", CodecSnappy, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"snappy xerial short header", CodecSnappy, xerialFrame()[:12]},
		{"snappy xerial chunk too long", CodecSnappy, append(xerialFrame(), 0, 0, 1, 0, 1, 2)},
		{"snappy xerial short length", CodecSnappy, append(xerialFrame(), 0, 0)},
		{"snappy xerial empty chunk", CodecSnappy, append(xerialFrame(), 0, 0, 0, 0)},
		{"snappy truncated", CodecSnappy, good[CodecSnappy][:len(good[CodecSnappy])-3]},
		{"lz4 bad magic", CodecLZ4, flip(good[CodecLZ4], 0)},
		{"lz4 truncated", CodecLZ4, good[CodecLZ4][:len(good[CodecLZ4])/2]},
		{"zstd bad magic", CodecZstd, flip(good[CodecZstd], 0)},
		{"zstd truncated", CodecZstd, good[CodecZstd][:len(good[CodecZstd])/2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decompress(tt.codec, tt.in, nil, 0)
			if !errors.Is(err, ErrCompressedCorrupt) {
				t.Fatalf("err = %v, want ErrCompressedCorrupt", err)
			}
		})
	}
	if _, err := Decompress(Codec(5), []byte{1}, nil, 0); !errors.Is(err, ErrBatchCodec) {
		t.Fatalf("codec 5: err = %v, want ErrBatchCodec", err)
	}
	if _, err := Compress(Codec(-1), []byte{1}, nil); !errors.Is(err, ErrBatchCodec) {
		t.Fatalf("compress codec -1: err = %v, want ErrBatchCodec", err)
	}
}

// TestDecompressLimit checks the decompression-bomb bound: output of exactly
// the limit passes, one byte more fails, for every codec, including encoders
// that do and do not record the content size up front.
func TestDecompressLimit(t *testing.T) {
	const limit = 100 << 10
	exact := make([]byte, limit)
	over := make([]byte, limit+1)
	encoders := map[string]func([]byte) []byte{
		"none":   func(b []byte) []byte { return b },
		"gzip":   func(b []byte) []byte { c, _ := Compress(CodecGzip, b, nil); return c },
		"snappy": func(b []byte) []byte { c, _ := Compress(CodecSnappy, b, nil); return c },
		"snappy raw": func(b []byte) []byte {
			return snappy.Encode(nil, b)
		},
		"lz4": func(b []byte) []byte { c, _ := Compress(CodecLZ4, b, nil); return c },
		"lz4 with size": func(b []byte) []byte {
			var buf bytes.Buffer
			w := lz4.NewWriter(&buf)
			if err := w.Apply(lz4.SizeOption(uint64(len(b)))); err != nil {
				t.Fatal(err)
			}
			w.Write(b)
			w.Close()
			return buf.Bytes()
		},
		"zstd with size": func(b []byte) []byte { c, _ := Compress(CodecZstd, b, nil); return c },
		"zstd streamed": func(b []byte) []byte {
			// A streaming encoder does not know the content size, so the
			// decoder cannot refuse the frame up front.
			var buf bytes.Buffer
			w, _ := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
			w.Write(b)
			w.Close()
			return buf.Bytes()
		},
	}
	codecOf := map[string]Codec{
		"none": CodecNone, "gzip": CodecGzip, "snappy": CodecSnappy, "snappy raw": CodecSnappy,
		"lz4": CodecLZ4, "lz4 with size": CodecLZ4, "zstd with size": CodecZstd, "zstd streamed": CodecZstd,
	}
	for name, enc := range encoders {
		t.Run(name, func(t *testing.T) {
			codec := codecOf[name]
			out, err := Decompress(codec, enc(exact), nil, limit)
			if err != nil || len(out) != limit {
				t.Fatalf("exactly the limit: %d bytes, %v", len(out), err)
			}
			// Allocation rounding and codec slack are fine; a buffer
			// sized by a claimed length or grown past the limit is not.
			if cap(out) > limit+limit/8 {
				t.Errorf("exactly the limit: capacity %d, far over the limit", cap(out))
			}
			_, err = Decompress(codec, enc(over), nil, limit)
			if !errors.Is(err, ErrDecompressedTooLarge) {
				t.Fatalf("one byte over: err = %v, want ErrDecompressedTooLarge", err)
			}
		})
	}
}

// TestDecompressGzipMultistream: gzip members may be concatenated, as
// Java's GZIPInputStream accepts.
func TestDecompressGzipMultistream(t *testing.T) {
	var buf bytes.Buffer
	for _, part := range []string{"hello, ", "world"} {
		w := gzip.NewWriter(&buf)
		w.Write([]byte(part))
		w.Close()
	}
	out, err := Decompress(CodecGzip, buf.Bytes(), nil, 0)
	if err != nil || string(out) != "hello, world" {
		t.Fatalf("got %q, %v", out, err)
	}
}

// TestDecompressZstdLimitChanges: pooled zstd decoders remember their limit;
// a call with a different limit must get that limit, not the previous one.
func TestDecompressZstdLimitChanges(t *testing.T) {
	in, _ := Compress(CodecZstd, make([]byte, 10000), nil)
	for range 3 {
		if _, err := Decompress(CodecZstd, in, nil, 9999); !errors.Is(err, ErrDecompressedTooLarge) {
			t.Fatalf("limit 9999: %v", err)
		}
		if _, err := Decompress(CodecZstd, in, nil, 10000); err != nil {
			t.Fatalf("limit 10000: %v", err)
		}
	}
}

// TestCodecsConcurrent runs every codec from many goroutines at once, for
// the race detector to check the pools.
func TestCodecsConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			in := bytes.Repeat([]byte{byte(g), 1, 2, 3}, 5000+g)
			for i := range 20 {
				codec := compressedCodecs[(g+i)%len(compressedCodecs)]
				comp, err := Compress(codec, in, nil)
				if err != nil {
					errs <- err
					return
				}
				out, err := Decompress(codec, comp, nil, 1<<20)
				if err != nil || !bytes.Equal(out, in) {
					errs <- fmt.Errorf("%s: %v", codec, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecompressAllocBounded feeds inputs whose headers claim far more
// output than they hold, and bombs that really expand past the limit, and
// checks that the memory allocated is bounded by the limit (or, where the
// codec allows, by the input) rather than by the claim.
func TestDecompressAllocBounded(t *testing.T) {
	const limit = 1 << 20
	// A zstd frame header claiming nearly the limit, then one 128 KiB RLE
	// block: the frame is short of its claim, which the decoder notices
	// only after sizing its buffer by the claim.
	zstdClaim := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0}
	zstdClaim = binary.LittleEndian.AppendUint64(zstdClaim, limit-100)
	zstdClaim = append(zstdClaim, 0x03, 0x00, 0x10, 'x')
	// A streamed zstd frame (no content size) of 64 MiB of zeros: a few
	// KiB that really expand 10000-fold.
	var zstdBomb bytes.Buffer
	zw, _ := zstd.NewWriter(&zstdBomb, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(512<<10))
	zw.Write(make([]byte, 64<<20))
	zw.Close()
	// Raw snappy claiming 60 MiB in five bytes, and the same as a xerial chunk.
	snappyClaim := binary.AppendUvarint(nil, 60<<20)
	snappyClaim = append(snappyClaim, 0)
	xerialClaim := append(xerialFrame(), 0, 0, 0, byte(len(snappyClaim)))
	xerialClaim = append(xerialClaim, snappyClaim...)
	// gzip and lz4 bombs: 64 MiB of zeros.
	gzipBomb, _ := Compress(CodecGzip, make([]byte, 64<<20), nil)
	lz4Bomb, _ := Compress(CodecLZ4, make([]byte, 64<<20), nil)

	tests := []struct {
		name  string
		codec Codec
		in    []byte
		max   uint64 // bytes allocated
	}{
		// klauspost/compress sizes the buffer by the claim (so up to the
		// limit) before v1.20.4, and by what the input can hold (128 KiB
		// here) from v1.20.4 on.
		{"zstd content size claim", CodecZstd, zstdClaim, limit + 256<<10},
		// zstd grows its output by append, 1.25x at a time for large
		// slices, so the buffers it outgrows add up to about four times
		// the last one; at most about 1.25 times the limit is live.
		{"zstd streamed bomb", CodecZstd, zstdBomb.Bytes(), 6 * limit},
		{"snappy length claim", CodecSnappy, snappyClaim, 64 << 10},
		{"xerial length claim", CodecSnappy, xerialClaim, 64 << 10},
		{"gzip bomb", CodecGzip, gzipBomb, 5 * limit},
		// The LZ4 reader holds one block (64 KiB here, up to 4 MiB) at most.
		{"lz4 bomb", CodecLZ4, lz4Bomb, 5 * limit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Logf("%d bytes of input", len(tt.in))
			var err error
			// The least of a few runs: what is measured is the decode, not
			// a pool refill (the race detector drops pooled items at random).
			n := uint64(math.MaxUint64)
			for range 5 {
				n = min(n, allocated(func() { _, err = Decompress(tt.codec, tt.in, nil, limit) }))
			}
			if err == nil {
				t.Fatal("no error")
			}
			if n > tt.max {
				t.Fatalf("allocated %d bytes, want at most %d (err %v)", n, tt.max, err)
			}
			t.Logf("allocated %d bytes: %v", n, err)
		})
	}
}

// stallingReader returns nothing, forever, without an error.
type stallingReader struct{ reads int }

func (r *stallingReader) Read([]byte) (int, error) { r.reads++; return 0, nil }

// TestReadLimitedGivesUpOnNoProgress: a decoder that returns no bytes and
// no error must not spin forever.
func TestReadLimitedGivesUpOnNoProgress(t *testing.T) {
	r := new(stallingReader)
	if _, err := readLimited(r, nil, 1<<20, 0); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
	if r.reads > 100 {
		t.Fatalf("%d reads", r.reads)
	}
}
