package dashboard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
)

// Compressed messages (RFC 7692, permessage-deflate), which every browser
// offers. A cells frame is JSON of hexadecimal cell ids that share most
// of their digits: deflate takes a 5 KB frame of 217 res-9 cells to 1.3 KB.
// That is a quarter of the bytes on the wire for every viewer, and of
// what each write copies into the kernel: with 19 KB frames the copy was
// 27 % of a write's cost on loopback (perf, 10,000 clients), and 24 KB
// frames compressed took 15 % less server CPU a frame
// (BenchmarkLiveFanout).
//
// flowd agrees to the extension with no context takeover either way:
// each message is compressed on its own, so a frame is compressed once
// per subscription and tick and the same bytes go to every client of it,
// and no connection keeps a compressor's or decompressor's window.
// Compressing costs about one write, so a frame goes compressed only to
// a subscription that enough clients share (HubOptions.DeflateShared):
// each message says whether it is.
const deflateResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// rsv1 marks the first frame of a compressed message.
const rsv1 = 0x40

// negotiateDeflate reads the Sec-WebSocket-Extensions offers of a
// handshake and reports whether flowd takes permessage-deflate: it takes
// the first offer of it whose parameters it can honour. An offer that
// limits the server's window (server_max_window_bits below 15) is one it
// cannot: deflate's window is 32 KB.
func negotiateDeflate(offers string) bool {
	for offer := range strings.SplitSeq(offers, ",") {
		params := strings.Split(offer, ";")
		if !strings.EqualFold(strings.TrimSpace(params[0]), "permessage-deflate") {
			continue
		}
		if deflateParamsOK(params[1:]) {
			return true
		}
	}
	return false
}

// deflateParamsOK reports whether flowd can agree to a permessage-deflate
// offer with these parameters (RFC 7692 §7.1): each known, at most once,
// with a valid value.
func deflateParamsOK(params []string) bool {
	seen := map[string]bool{}
	for _, p := range params {
		name, value, hasValue := strings.Cut(strings.TrimSpace(p), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.Trim(strings.TrimSpace(value), `"`)
		if seen[name] {
			return false
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasValue {
				return false
			}
		case "client_max_window_bits":
			// The client's own window, which an inflater of 32 KB reads
			// whatever it is.
			if hasValue && !windowBits(value) {
				return false
			}
		case "server_max_window_bits":
			if value != "15" { // deflate's window; a smaller one flowd cannot keep to
				return false
			}
		default:
			return false
		}
	}
	return true
}

func windowBits(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 8 && n <= 15 && strconv.Itoa(n) == v
}

// deflateLevel is flate's fastest: at 27 µs for a 5 KB frame, once per
// subscription and tick, it keeps 97 % of what the best level saves.
const deflateLevel = flate.BestSpeed

var deflaters = sync.Pool{New: func() any {
	w, err := flate.NewWriter(nil, deflateLevel)
	if err != nil {
		panic("BUG: flate writer: " + err.Error())
	}
	return w
}}

// appendWriter appends what is written to it to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// deflateFrame returns the text frame frame (a server frame of one
// unfragmented message) as a compressed message: its payload deflated,
// the final empty block deflate's flush ends with taken off (RFC 7692
// §7.2.1), and RSV1 set.
func deflateFrame(frame []byte) []byte {
	payload := frame[frameHeaderLen(frame):]
	out := &appendWriter{b: newFrame(len(payload)/3 + 64)}
	w := deflaters.Get().(*flate.Writer)
	w.Reset(out)
	w.Write(payload) // appendWriter never fails
	w.Flush()
	w.Reset(nil)
	deflaters.Put(w)
	if !bytes.HasSuffix(out.b, deflateTail) {
		panic("BUG: a flushed deflate stream does not end with an empty stored block")
	}
	out.b = out.b[:len(out.b)-len(deflateTail)]
	return sealFrame(out.b, opText|rsv1)
}

// frameHeaderLen is the length of the header of server frame f.
func frameHeaderLen(f []byte) int {
	switch f[1] & 0x7f {
	case 126:
		return 4
	case 127:
		return 10
	}
	return 2
}

// deflateTail is the empty stored block that ends a flushed deflate
// stream: the sender takes it off a message, the receiver puts it back.
var deflateTail = []byte{0, 0, 0xff, 0xff}

// deflateEnd follows deflateTail when inflating: a final empty stored
// block, so that the inflater ends cleanly at the message's end.
var deflateEnd = []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}

var inflaters sync.Pool

// errTooBig is a compressed message that inflates past the limit.
var errTooBig = errors.New("message too big")

// inflateMessage returns the compressed message p inflated, or errTooBig
// once it passes limit bytes: a small message may inflate to a great
// deal, and only what the limit allows is ever inflated.
func inflateMessage(p []byte, limit int) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateEnd))
	var r io.ReadCloser
	if v := inflaters.Get(); v != nil {
		r = v.(io.ReadCloser)
		if err := r.(flate.Resetter).Reset(src, nil); err != nil {
			return nil, err
		}
	} else {
		r = flate.NewReader(src)
	}
	defer inflaters.Put(r)
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("compressed message: %w", err)
	case len(out) > limit:
		return nil, errTooBig
	}
	return out, nil
}
