package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// streamBufSize is the window a recordStream reads decompressed bytes
// through. It bounds what walking a compressed batch costs in memory,
// whatever the batch decompresses to: records are parsed out of this window
// and skipped bytes are read through it and dropped.
const streamBufSize = 64 << 10

var streamBufs = sync.Pool{New: func() any { return new([streamBufSize]byte) }}

// recordStream is the byte source the record iterator parses: either the
// records of an uncompressed batch, in place, or a decompressor read
// through a fixed window. Its methods report failure with ok=false; err
// then says whether the stream itself failed (corrupt or too large) rather
// than simply ending.
type recordStream struct {
	b     []byte    // unread bytes available now
	r     io.Reader // decompressor; nil when b holds everything
	buf   *[streamBufSize]byte
	total int // bytes taken from r (or the uncompressed body's size)
	limit int
	done  bool // r returned io.EOF
	err   error
	dec   pooledDecoder // returned to its pool by release
}

// pooledDecoder is a codec's streaming decoder, reset onto one batch.
type pooledDecoder interface {
	io.Reader
	release()
}

func (s *recordStream) resetUncompressed(body []byte) {
	s.release()
	*s = recordStream{b: body, total: len(body), limit: len(body)}
}

// resetCompressed starts decompressing src. maxSize bounds the output.
func (s *recordStream) resetCompressed(codec Codec, src []byte, maxSize int) error {
	s.release()
	*s = recordStream{limit: maxSize}
	dec, err := openDecoder(codec, src, maxSize)
	if err != nil {
		return err
	}
	s.dec, s.r = dec, dec
	s.buf = streamBufs.Get().(*[streamBufSize]byte)
	return nil
}

// release returns the decoder and window to their pools.
func (s *recordStream) release() {
	if s.dec != nil {
		s.dec.release()
		s.dec = nil
	}
	if s.buf != nil {
		streamBufs.Put(s.buf)
		s.buf = nil
	}
	s.r, s.b = nil, nil
}

// consumed is how many bytes of the stream have been parsed or skipped.
func (s *recordStream) consumed() int { return s.total - len(s.b) }

// fill tries to make n bytes (at most streamBufSize) available in b and
// reports whether it did.
func (s *recordStream) fill(n int) bool {
	if len(s.b) >= n {
		return true
	}
	if s.r == nil || s.done || s.err != nil {
		return false
	}
	m := copy(s.buf[:], s.b)
	for empty := 0; m < n && !s.done; {
		k, err := s.r.Read(s.buf[m:])
		m += k
		s.total += k
		switch {
		case s.total > s.limit:
			s.err = ErrDecompressedTooLarge
		case err == io.EOF:
			s.done = true
		case err != nil:
			s.err = decodeError(err)
		case k > 0:
			empty = 0
		default:
			// A decoder that keeps returning nothing must not spin.
			if empty++; empty == 100 {
				s.err = fmt.Errorf("%w: %w", ErrCompressedCorrupt, io.ErrNoProgress)
			}
		}
		if s.err != nil {
			break
		}
	}
	s.b = s.buf[:m]
	return len(s.b) >= n && s.err == nil
}

// skip discards n bytes and reports whether the stream held them.
func (s *recordStream) skip(n int) bool {
	for n > len(s.b) {
		n -= len(s.b)
		s.b = s.b[:0]
		if !s.fill(min(n, streamBufSize)) && len(s.b) == 0 {
			return false
		}
	}
	s.b = s.b[n:]
	return true
}

// readByte consumes one byte.
func (s *recordStream) readByte() (byte, bool) {
	if len(s.b) == 0 && !s.fill(1) {
		return 0, false
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c, true
}

// varint reads a zigzag varint that fits in an int32 (at most 5 bytes), as
// Kafka's ByteUtils.readVarint requires.
func (s *recordStream) varint() (int32, bool) {
	if len(s.b) < binary.MaxVarintLen32 && s.r != nil {
		s.fill(binary.MaxVarintLen32)
	}
	u, n := binary.Uvarint(s.b)
	if n <= 0 || n > binary.MaxVarintLen32 || u > math.MaxUint32 {
		return 0, false
	}
	s.b = s.b[n:]
	return int32(uint32(u)>>1) ^ -int32(u&1), true
}

// varlong reads a zigzag varint of up to 64 bits.
func (s *recordStream) varlong() (int64, bool) {
	if len(s.b) < binary.MaxVarintLen64 && s.r != nil {
		s.fill(binary.MaxVarintLen64)
	}
	v, n := binary.Varint(s.b)
	if n <= 0 {
		return 0, false
	}
	s.b = s.b[n:]
	return v, true
}

// atEnd reports whether the stream holds nothing more, reading to the end
// of a compressed stream so that its trailer (gzip's CRC, zstd's checksum)
// is checked too.
func (s *recordStream) atEnd() bool {
	if len(s.b) > 0 {
		return false
	}
	return !s.fill(1) && len(s.b) == 0 && s.err == nil
}

// decodeError classifies a decompressor's read error.
func decodeError(err error) error {
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) ||
		errors.Is(err, ErrDecompressedTooLarge) {
		return ErrDecompressedTooLarge
	}
	return fmt.Errorf("%w: %w", ErrCompressedCorrupt, err)
}

// sliceReader reads a byte slice. The zstd decoder decodes a whole
// bytes.Buffer-like input (anything with Bytes and Len) in one go instead
// of streaming it; this type deliberately has neither method.
type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func openDecoder(codec Codec, src []byte, maxSize int) (pooledDecoder, error) {
	switch codec {
	case CodecGzip:
		d := gzipStreams.Get().(*gzipStream)
		d.src.b = src
		if err := d.zr.Reset(&d.src); err != nil {
			d.release()
			return nil, fmt.Errorf("%w: gzip: %w", ErrCompressedCorrupt, err)
		}
		return d, nil
	case CodecSnappy:
		d := snappyStreams.Get().(*snappyStream)
		if err := d.reset(src, maxSize); err != nil {
			d.release()
			return nil, err
		}
		return d, nil
	case CodecLZ4:
		d, _ := lz4Streams.Get().(*lz4Stream)
		if d == nil {
			d = &lz4Stream{zr: lz4.NewReader(nil)}
			if err := d.zr.Apply(lz4.ConcurrencyOption(1)); err != nil {
				return nil, fmt.Errorf("protocol: lz4: %w", err)
			}
		}
		d.src.b = src
		d.zr.Reset(&d.src)
		return d, nil
	case CodecZstd:
		d, _ := zstdStreams.Get().(*zstdStream)
		if d == nil {
			// A zstd stream decoder holds one window of history, which the
			// frame declares; the limit caps it, as it caps the output.
			zd, err := zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxMemory(uint64(maxSize)),
				zstd.WithDecoderMaxWindow(uint64(maxSize)))
			if err != nil {
				return nil, fmt.Errorf("protocol: zstd: %w", err)
			}
			d = &zstdStream{zd: zd, limit: maxSize}
		}
		d.src.b = src
		var err error
		if d.limit != maxSize {
			err = d.zd.ResetWithOptions(&d.src, zstd.WithDecoderMaxMemory(uint64(maxSize)), zstd.WithDecoderMaxWindow(uint64(maxSize)))
			d.limit = maxSize
		} else {
			err = d.zd.Reset(&d.src)
		}
		if err != nil {
			d.release()
			return nil, decodeError(err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrBatchCodec, codec)
}

// gzipStream is gzipDecoder for streaming: the same pooled reader state,
// reading a sliceReader.
type gzipStream struct {
	src sliceReader
	zr  gzip.Reader
}

var gzipStreams = sync.Pool{New: func() any { return new(gzipStream) }}

func (d *gzipStream) Read(p []byte) (int, error) { return d.zr.Read(p) }
func (d *gzipStream) release() {
	d.src.b = nil
	gzipStreams.Put(d)
}

type lz4Stream struct {
	src sliceReader
	zr  *lz4.Reader
}

var lz4Streams sync.Pool

func (d *lz4Stream) Read(p []byte) (int, error) { return d.zr.Read(p) }
func (d *lz4Stream) release() {
	d.src.b = nil
	d.zr.Reset(nil)
	lz4Streams.Put(d)
}

type zstdStream struct {
	src   sliceReader
	zd    *zstd.Decoder
	limit int
}

var zstdStreams sync.Pool

func (d *zstdStream) Read(p []byte) (int, error) { return d.zd.Read(p) }
func (d *zstdStream) release() {
	d.src.b = nil
	// Reset(nil) drops the decoder's reference to the input and parks it.
	_ = d.zd.Reset(nil)
	zstdStreams.Put(d)
}

// snappyStream decodes snappy input one block at a time: each chunk of the
// xerial framing is its own block, so memory follows the chunk size
// (32 KiB from snappy-java), while a raw (unframed) block is decoded
// whole, as its format requires, within the ratio and size limits that
// Decompress applies.
type snappyStream struct {
	rest  []byte // xerial chunks not yet decoded; nil for a raw block
	raw   []byte // a raw block not yet decoded
	block []byte // decoded bytes not yet read
	buf   []byte // backing array for block
	limit int    // output left before the size limit
}

var snappyStreams = sync.Pool{New: func() any { return new(snappyStream) }}

func (d *snappyStream) reset(src []byte, maxSize int) error {
	buf := d.buf[:0]
	*d = snappyStream{buf: buf, limit: maxSize}
	if !bytes.HasPrefix(src, xerialMagic) {
		d.raw = src
		return nil
	}
	if len(src) < xerialHeaderSize {
		return fmt.Errorf("%w: snappy: truncated xerial header", ErrCompressedCorrupt)
	}
	d.rest = src[xerialHeaderSize:]
	return nil
}

func (d *snappyStream) Read(p []byte) (int, error) {
	for len(d.block) == 0 {
		var next []byte
		switch {
		case d.raw != nil:
			next, d.raw = d.raw, nil
		case len(d.rest) > 0:
			if len(d.rest) < 4 {
				return 0, errors.New("snappy: truncated xerial chunk length")
			}
			n := binary.BigEndian.Uint32(d.rest)
			d.rest = d.rest[4:]
			if uint64(n) > uint64(len(d.rest)) {
				return 0, fmt.Errorf("snappy: xerial chunk of %d bytes with %d left", n, len(d.rest))
			}
			next, d.rest = d.rest[:n], d.rest[n:]
		default:
			return 0, io.EOF
		}
		out, err := appendSnappyBlock(d.buf[:0], next, d.limit)
		if err != nil {
			return 0, err
		}
		d.limit -= len(out)
		d.buf, d.block = out, out
	}
	n := copy(p, d.block)
	d.block = d.block[n:]
	return n, nil
}

func (d *snappyStream) release() {
	d.rest, d.raw, d.block = nil, nil, nil
	if cap(d.buf) > 4*xerialChunkSize {
		d.buf = nil // do not pool a large raw block's buffer
	}
	snappyStreams.Put(d)
}
