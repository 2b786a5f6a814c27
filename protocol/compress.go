package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// DefaultMaxDecompressedSize bounds the decompressed size of one batch when
// the caller has no better limit. Producers cap the compressed batch (1 MiB
// message.max.bytes by default) but not the ratio, so a few kilobytes of
// zstd can claim gigabytes; 64 MiB is far above what real producers build
// (batch.size is 16 KiB–1 MiB before compression) and small enough that a
// handful of concurrent bombs cannot exhaust a small broker. It also admits
// zstd windows up to 64 MiB (levels up to 21); Kafka's own decoder goes to
// 128 MiB (level 22).
const DefaultMaxDecompressedSize = 64 << 20

// Errors returned by Decompress. Both mean the batch is unusable; the server
// answers CORRUPT_MESSAGE for either.
var (
	ErrDecompressedTooLarge = errors.New("protocol: decompressed records exceed the size limit")
	ErrCompressedCorrupt    = errors.New("protocol: compressed records corrupt")
)

// Decompress appends the decompressed form of src to dst[:0], reusing dst's
// capacity when it suffices, and returns the result. codec is the batch's
// codec; CodecNone copies src. Snappy input may be a raw snappy block or the
// xerial (snappy-java) framed stream that Java and librdkafka producers send;
// LZ4 input is the LZ4 frame format; gzip and zstd input may hold several
// concatenated members or frames. Malformed input fails with an error
// wrapping ErrCompressedCorrupt.
//
// Output beyond maxSize bytes fails with ErrDecompressedTooLarge, and no
// codec allocates more than a small multiple of maxSize on the way to the
// limit (buffers grow geometrically), so a hostile batch cannot make the
// broker allocate without bound. Gzip, snappy and LZ4 never size a buffer by
// a length the input claims; zstd does, up to maxSize, with klauspost/compress
// before v1.20.4. maxSize <= 0 means DefaultMaxDecompressedSize; it is capped
// at 2 GiB, past what any batch can legitimately hold.
//
// A zstd frame whose declared window exceeds maxSize also fails with
// ErrDecompressedTooLarge, whatever its content size, because the zstd
// decoder ties the two bounds. Keep maxSize at 8 MiB or more (the window of
// zstd levels up to 19) when decoding producer batches.
func Decompress(codec Codec, src, dst []byte, maxSize int) ([]byte, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxDecompressedSize
	}
	// The cap also keeps maxSize+1, which readLimited computes, from
	// overflowing.
	maxSize = min(maxSize, math.MaxInt32)
	dst = dst[:0]
	var (
		out []byte
		err error
	)
	switch codec {
	case CodecNone:
		if len(src) > maxSize {
			return nil, ErrDecompressedTooLarge
		}
		return append(dst, src...), nil
	case CodecGzip:
		out, err = decompressGzip(src, dst, maxSize)
	case CodecSnappy:
		out, err = decompressSnappy(src, dst, maxSize)
	case CodecLZ4:
		out, err = decompressLZ4(src, dst, maxSize)
	case CodecZstd:
		out, err = decompressZstd(src, dst, maxSize)
	default:
		return nil, fmt.Errorf("%w: %s", ErrBatchCodec, codec)
	}
	if err != nil {
		if errors.Is(err, ErrDecompressedTooLarge) {
			return nil, fmt.Errorf("%w: %s, limit %d bytes", ErrDecompressedTooLarge, codec, maxSize)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCompressedCorrupt, codec, err)
	}
	return out, nil
}

// Compress appends the compressed form of src to dst[:0] and returns the
// result. The broker never recompresses producer batches; this is for the
// batches it writes itself (internal topics, tests). Snappy output uses the
// xerial framing that snappy-java writes, the form Java producers send and
// every client decodes; LZ4 output is an LZ4 frame with 64 KiB blocks, as the
// Java producer writes.
func Compress(codec Codec, src, dst []byte) ([]byte, error) {
	dst = dst[:0]
	switch codec {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		return compressGzip(src, dst)
	case CodecSnappy:
		return compressSnappy(src, dst), nil
	case CodecLZ4:
		return compressLZ4(src, dst)
	case CodecZstd:
		return compressZstd(src, dst)
	}
	return nil, fmt.Errorf("%w: %s", ErrBatchCodec, codec)
}

// appendWriter is an io.Writer that appends to a slice, so that streaming
// compressors can write straight into the caller's buffer.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// readLimited reads r to EOF, appending to dst, and fails as soon as more
// than limit bytes have come out. The buffer grows geometrically from a
// guess of hint bytes but never past limit+1, the one extra byte being how
// an over-long stream is told apart from one of exactly limit bytes.
func readLimited(r io.Reader, dst []byte, limit, hint int) ([]byte, error) {
	if cap(dst) == 0 {
		dst = make([]byte, 0, min(max(hint, 512), limit+1))
	}
	for empty := 0; ; {
		if len(dst) == cap(dst) {
			grown := make([]byte, len(dst), min(max(2*cap(dst), 512), limit+1))
			copy(grown, dst)
			dst = grown
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return nil, ErrDecompressedTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
		// A decoder stuck returning nothing must not spin forever on a
		// hostile input; bufio gives up the same way.
		if n > 0 {
			empty = 0
		} else if empty++; empty == 100 {
			return nil, io.ErrNoProgress
		}
	}
}

// gzipDecoder pairs a reusable gzip reader with the bytes.Reader it reads
// from; both are pooled together because gzip.Reader keeps a 32 KiB window
// and Huffman tables that are costly to rebuild for every batch.
type gzipDecoder struct {
	src bytes.Reader
	zr  gzip.Reader
}

var gzipDecoders = sync.Pool{New: func() any { return new(gzipDecoder) }}

func decompressGzip(src, dst []byte, limit int) ([]byte, error) {
	d := gzipDecoders.Get().(*gzipDecoder)
	defer gzipDecoders.Put(d)
	d.src.Reset(src)
	if err := d.zr.Reset(&d.src); err != nil {
		return nil, err
	}
	out, err := readLimited(&d.zr, dst, limit, 4*len(src))
	// Drop the reference to src so the pool does not keep the batch alive.
	d.src.Reset(nil)
	return out, err
}

var gzipEncoders = sync.Pool{New: func() any {
	return &gzipEncoder{zw: gzip.NewWriter(nil)}
}}

type gzipEncoder struct {
	out appendWriter
	zw  *gzip.Writer
}

func compressGzip(src, dst []byte) ([]byte, error) {
	e := gzipEncoders.Get().(*gzipEncoder)
	defer gzipEncoders.Put(e)
	e.out.b = dst
	e.zw.Reset(&e.out)
	_, err := e.zw.Write(src)
	if cerr := e.zw.Close(); err == nil {
		err = cerr
	}
	out := e.out.b
	e.out.b = nil
	if err != nil {
		return nil, fmt.Errorf("protocol: gzip: %w", err)
	}
	return out, nil
}

// xerialMagic starts the framed stream snappy-java's SnappyOutputStream
// writes, which is what the Java producer and librdkafka send. It is
// followed by two big-endian int32s (stream version and minimum compatible
// version, both 1) and then by chunks, each a big-endian int32 length and a
// raw snappy block. A raw block cannot start with these bytes: its first
// element after the length varint would be a copy with nothing to copy from.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize = 16
	// xerialChunkSize is snappy-java's default block size; Compress uses it
	// so that our output looks like a Java producer's.
	xerialChunkSize = 32 << 10
	// snappyMaxRatio bounds how much a snappy block can expand: the densest
	// element is a 3-byte copy producing 64 bytes. A block claiming more is
	// corrupt, and rejecting it before decoding keeps a tiny input from
	// allocating its claimed length.
	snappyMaxRatio = 22
)

var errSnappyRatio = errors.New("snappy: decoded length impossible for block size")

func decompressSnappy(src, dst []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return appendSnappyBlock(dst, src, limit)
	}
	if len(src) < xerialHeaderSize {
		return nil, errors.New("snappy: truncated xerial header")
	}
	// The version fields are ignored, as snappy-java and librdkafka do.
	rest := src[xerialHeaderSize:]
	var err error
	for len(rest) > 0 {
		if len(rest) < 4 {
			return nil, errors.New("snappy: truncated xerial chunk length")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("snappy: xerial chunk of %d bytes with %d left", n, len(rest))
		}
		if dst, err = appendSnappyBlock(dst, rest[:n], limit); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return dst, nil
}

// appendSnappyBlock decodes one raw snappy block onto the end of dst.
func appendSnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > limit-len(dst) {
		return nil, ErrDecompressedTooLarge
	}
	if uint64(n) > snappyMaxRatio*uint64(len(block)) {
		return nil, errSnappyRatio
	}
	dst = slices.Grow(dst, n)
	// Decode writes into the spare capacity when it is large enough, which
	// slices.Grow just ensured; the append then copies onto itself.
	out, err := snappy.Decode(dst[len(dst):len(dst)+n], block)
	if err != nil {
		return nil, err
	}
	return append(dst, out...), nil
}

func compressSnappy(src, dst []byte) []byte {
	if len(src) == 0 {
		// A header with no chunks is what snappy-java would write, but some
		// decoders (franz-go's among them) only recognise the framing when
		// a chunk follows; the raw empty block is read by everyone.
		return append(dst, 0)
	}
	dst = append(dst, xerialMagic...)
	dst = binary.BigEndian.AppendUint32(dst, 1)
	dst = binary.BigEndian.AppendUint32(dst, 1)
	for len(src) > 0 {
		chunk := src[:min(len(src), xerialChunkSize)]
		src = src[len(chunk):]
		lenAt := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = slices.Grow(dst, snappy.MaxEncodedLen(len(chunk)))
		enc := snappy.Encode(dst[len(dst):cap(dst)], chunk)
		dst = append(dst, enc...)
		binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(enc)))
	}
	return dst
}

// lz4Decoder is a pooled LZ4 frame reader. Concurrency is pinned to 1: the
// package starts no goroutines, and batches are too small to gain from them.
type lz4Decoder struct {
	src bytes.Reader
	zr  *lz4.Reader
}

var lz4Decoders sync.Pool

func decompressLZ4(src, dst []byte, limit int) ([]byte, error) {
	d, _ := lz4Decoders.Get().(*lz4Decoder)
	if d == nil {
		d = &lz4Decoder{zr: lz4.NewReader(nil)}
		if err := d.zr.Apply(lz4.ConcurrencyOption(1)); err != nil {
			return nil, err
		}
	}
	defer lz4Decoders.Put(d)
	d.src.Reset(src)
	d.zr.Reset(&d.src)
	out, err := readLimited(d.zr, dst, limit, 4*len(src))
	d.src.Reset(nil)
	d.zr.Reset(nil)
	return out, err
}

type lz4Encoder struct {
	out appendWriter
	zw  *lz4.Writer
}

var lz4Encoders sync.Pool

func compressLZ4(src, dst []byte) ([]byte, error) {
	e, _ := lz4Encoders.Get().(*lz4Encoder)
	if e == nil {
		e = &lz4Encoder{zw: lz4.NewWriter(nil)}
		if err := e.zw.Apply(lz4.ConcurrencyOption(1), lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			return nil, fmt.Errorf("protocol: lz4: %w", err)
		}
	}
	defer lz4Encoders.Put(e)
	e.out.b = dst
	e.zw.Reset(&e.out)
	_, err := e.zw.Write(src)
	if cerr := e.zw.Close(); err == nil {
		err = cerr
	}
	out := e.out.b
	e.out.b = nil
	e.zw.Reset(nil)
	if err != nil {
		return nil, fmt.Errorf("protocol: lz4: %w", err)
	}
	return out, nil
}

// zstdDecoder is a pooled zstd decoder with its current output limit. A
// zstd.Decoder with concurrency 1 runs DecodeAll synchronously and serves
// one call at a time, so each caller takes its own from the pool instead of
// queueing on a shared one. limit is remembered so that the common case of
// every caller passing the same maxSize never re-applies options.
type zstdDecoder struct {
	zd    *zstd.Decoder
	limit int
}

var zstdDecoders sync.Pool

func decompressZstd(src, dst []byte, limit int) ([]byte, error) {
	d, _ := zstdDecoders.Get().(*zstdDecoder)
	if d == nil {
		zd, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(limit)))
		if err != nil {
			return nil, err
		}
		d = &zstdDecoder{zd: zd, limit: limit}
	} else if d.limit != limit {
		if err := d.zd.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(uint64(limit))); err != nil {
			return nil, err
		}
		d.limit = limit
	}
	defer zstdDecoders.Put(d)
	out, err := d.zd.DecodeAll(src, dst)
	// The zstd decoder caps a frame's window at the output limit, so a
	// frame whose window is larger than limit fails as a window error even
	// though the window costs DecodeAll no memory: report it as the limit
	// it is. (The reference library, under zstd-jni and librdkafka, declares
	// windows of 2 MiB at level 3, 8 MiB at level 19 and 128 MiB at level 22
	// when streaming, whatever the batch size.)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return nil, ErrDecompressedTooLarge
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

var zstdEncoders sync.Pool

func compressZstd(src, dst []byte) ([]byte, error) {
	ze, _ := zstdEncoders.Get().(*zstd.Encoder)
	if ze == nil {
		var err error
		// WithZeroFrames makes empty input a valid frame rather than no
		// bytes at all, which zstd-jni would reject.
		ze, err = zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true),
			zstd.WithZeroFrames(true))
		if err != nil {
			return nil, fmt.Errorf("protocol: zstd: %w", err)
		}
	}
	defer zstdEncoders.Put(ze)
	return ze.EncodeAll(src, dst), nil
}
