package answer

import (
	"encoding/json"
	"errors"
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
