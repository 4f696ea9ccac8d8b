package ingest

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Limits on a zstd frame, so that a hostile body cannot make the decoder
// allocate more than a few window sizes. 8 MiB is the window the zstd format
// asks every decoder to support and what `zstd -19` uses.
const (
	zstdMaxWindow = 8 << 20
	zstdMaxMemory = 64 << 20
)

var (
	gzipReaders  sync.Pool // *gzip.Reader
	zstdDecoders sync.Pool // *zstd.Decoder
)

// Body returns the decompressed stream of a request body with the given
// Content-Encoding ("", "identity", "gzip", "x-gzip" or "zstd"), cut at
// maxBytes decompressed bytes: a read past the limit fails with ErrTooLarge,
// so a compression bomb costs a bounded amount of memory and time.
//
// Decompressors are pooled; they return to their pool when the stream ends
// or fails, or when Close is called, which the caller should defer.
// Decompression errors are wrapped and reported by Read. maxBytes must be
// positive.
func Body(r io.Reader, contentEncoding string, maxBytes int64) (io.ReadCloser, error) {
	if maxBytes <= 0 {
		panic(fmt.Sprintf("BUG: ingest.Body: maxBytes must be positive, got %d", maxBytes))
	}
	enc := strings.TrimSpace(contentEncoding)
	switch {
	case identity(enc):
		return &body{r: r, left: maxBytes, limit: maxBytes}, nil
	case strings.EqualFold(enc, "gzip") || strings.EqualFold(enc, "x-gzip"):
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(r)
		} else {
			err = zr.Reset(r)
		}
		if err != nil {
			if zr != nil {
				gzipReaders.Put(zr)
			}
			return nil, fmt.Errorf("ingest: gzip body: %w", err)
		}
		return &body{r: zr, left: maxBytes, limit: maxBytes, encoding: "gzip", release: func() { gzipReaders.Put(zr) }}, nil
	case strings.EqualFold(enc, "zstd"):
		// Hide any Len method of r: the zstd decoder would otherwise decode
		// a small in-memory input whole, up to zstdMaxMemory, before the
		// limit below could stop it.
		src := struct{ io.Reader }{r}
		d, _ := zstdDecoders.Get().(*zstd.Decoder)
		var err error
		if d == nil {
			d, err = zstd.NewReader(src,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxWindow(zstdMaxWindow),
				zstd.WithDecoderMaxMemory(zstdMaxMemory))
		} else {
			err = d.Reset(src)
		}
		if err != nil {
			if d != nil {
				releaseZstd(d)
			}
			return nil, fmt.Errorf("ingest: zstd body: %w", err)
		}
		return &body{r: d, left: maxBytes, limit: maxBytes, encoding: "zstd", release: func() { releaseZstd(d) }}, nil
	default:
		return nil, fmt.Errorf("%w: content encoding %q; want gzip, zstd or identity", ErrUnsupportedMediaType, enc)
	}
}

func releaseZstd(d *zstd.Decoder) {
	// Reset(nil) drops the reference to the request body before pooling.
	_ = d.Reset(nil)
	zstdDecoders.Put(d)
}

var errBodyClosed = errors.New("ingest: read from a closed body")

// identity reports whether a Content-Encoding header's value names no
// encoding: the body is as it was sent.
func identity(contentEncoding string) bool {
	enc := strings.TrimSpace(contentEncoding)
	return enc == "" || strings.EqualFold(enc, "identity")
}

// errTooLarge is the error of an uncompressed body over limit bytes.
func errTooLarge(limit int64) error {
	return fmt.Errorf("%w: body larger than %d bytes", ErrTooLarge, limit)
}

// body cuts a (decompressed) stream at a byte limit and hands its
// decompressor back to the pool once the stream is done.
type body struct {
	r        io.Reader
	left     int64
	limit    int64  // maxBytes, for the message
	encoding string // "" for identity, whose errors are passed on as they are
	release  func()
	err      error
	probe    [1]byte
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.left <= 0 {
		// The limit is reached: one more byte means too large, EOF means
		// the body was exactly maxBytes long.
		n, err := io.ReadFull(b.r, b.probe[:])
		if n > 0 {
			err = errTooLarge(b.limit)
			if b.encoding != "" {
				err = fmt.Errorf("%w: body larger than %d bytes after %s decompression", ErrTooLarge, b.limit, b.encoding)
			}
		}
		return 0, b.fail(err)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil {
		err = b.fail(err)
	}
	return n, err
}

// fail records the stream's final error, wrapping decompression errors with
// the encoding, and releases the decompressor.
func (b *body) fail(err error) error {
	if err != io.EOF && !errors.Is(err, ErrTooLarge) && b.encoding != "" {
		err = fmt.Errorf("ingest: %s body: %w", b.encoding, err)
	}
	b.err = err
	b.done()
	return err
}

func (b *body) done() {
	if b.release != nil {
		b.release()
		b.release = nil
	}
	b.r = nil
}

// Close releases the decompressor; reads after Close fail.
func (b *body) Close() error {
	if b.err == nil {
		b.err = errBodyClosed
	}
	b.done()
	return nil
}
