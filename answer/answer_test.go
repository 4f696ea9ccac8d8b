package answer

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

func TestErrorsQuoteShortPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		// has must be in the message, which must not be longer than max.
		has string
		max int
	}{
		{"a short value whole", &ParamError{Param: "bbox", Value: "1,2,3", Reason: "want 4 numbers"}, `parameter "bbox": value "1,2,3": want 4 numbers`, 100},
		{"a long value cut", &ParamError{Param: "polygon", Value: strings.Repeat("x", 1<<20), Reason: "bad"}, `value "` + strings.Repeat("x", maxEcho) + `…"`, 200},
		{"cut at a rune boundary", &ParamError{Param: "site", Value: "x" + strings.Repeat("湖", 100), Reason: "unknown"}, `value "x` + strings.Repeat("湖", 21) + `…"`, 200},
		{"a long reason cut", &ParamError{Param: "bbox", Value: "v", Reason: "bbox " + strings.Repeat("1", 1<<16)}, "…", maxEcho + maxReason + 100},
		{"any long error cut", errors.New(strings.Repeat("e", 1<<20)), "…", maxMessage + len("…")},
	} {
		var ctx fasthttp.RequestCtx
		Error(&ctx, 400, tc.err)
		var ans errorBody
		if err := json.Unmarshal(ctx.Response.Body(), &ans); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if msg := ans.Error; !strings.Contains(msg, tc.has) || len(msg) > tc.max || !utf8.ValidString(msg) {
			t.Errorf("%s: %d bytes: %.300s; want at most %d bytes holding %q", tc.name, len(msg), msg, tc.max, tc.has)
		}
	}
}

// numbers is an Appender of n numbers in an array, about 8 bytes each.
type numbers int

func (n numbers) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, '[')
	for i := range int(n) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, 1230768000+int64(i)*3600, 10)
	}
	return append(dst, ']'), nil
}

// TestJSONWritesInPlace: an Appender's answer is the body, whole, after
// a body written before it (which it replaces), and again in a response
// reused as fasthttp reuses them; a marshalled answer likewise.
func TestJSONWritesInPlace(t *testing.T) {
	var ctx fasthttp.RequestCtx
	ctx.Response.SetBodyString("an earlier body, longer than the answer that replaces it")
	JSON(&ctx, 200, numbers(3))
	if got := string(ctx.Response.Body()); got != "[1230768000,1230771600,1230775200]" {
		t.Fatalf("body %q", got)
	}
	if ct := string(ctx.Response.Header.ContentType()); ct != "application/json" || ctx.Response.StatusCode() != 200 {
		t.Fatalf("content type %q, status %d", ct, ctx.Response.StatusCode())
	}
	for i := range 3 {
		ctx.Response.Reset()
		JSON(&ctx, 201, numbers(i))
		want, _ := numbers(i).AppendJSON(nil)
		if got := ctx.Response.Body(); string(got) != string(want) || ctx.Response.StatusCode() != 201 {
			t.Fatalf("reused response %d: body %q, status %d", i, got, ctx.Response.StatusCode())
		}
	}
	ctx.Response.Reset()
	JSON(&ctx, 200, errorBody{"e"})
	if got := string(ctx.Response.Body()); got != `{"error":"e"}` {
		t.Fatalf("marshalled body %q", got)
	}
}

// BenchmarkJSONAnswer writes an answer of 70,128 numbers (an eight-year
// hourly series' size, 770 KB) through JSON into a response reset after
// each, as fasthttp resets its responses.
func BenchmarkJSONAnswer(b *testing.B) {
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		JSON(&ctx, 200, numbers(70128))
		ctx.Response.Reset()
	}
}
