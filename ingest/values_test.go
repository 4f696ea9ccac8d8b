package ingest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/flowd/flowd/vocab"
)

// TestParseDecimalIsStrconv checks the fast path against strconv on the
// forms it takes, and that it leaves the others to it.
func TestParseDecimalIsStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []string{"0", "31.5", "-2.25", "0.1", "123456789012345", "99999.9999999999", "0.3"}
	for range 20000 {
		cases = append(cases, strconv.FormatFloat(rng.Float64()*1000, 'f', rng.IntN(12), 64))
	}
	for _, s := range cases {
		got, ok := parseDecimal([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil || got != want {
			t.Fatalf("parseDecimal(%q) = %v, %v; strconv %v, %v", s, got, ok, want, err)
		}
	}
	for _, s := range []string{"", ".5", "5.", "1e3", "1234567890123456", "1.000000000000001", "1.2.3", "--1", "+1", "1_0"} {
		if _, ok := parseDecimal([]byte(s)); ok {
			t.Errorf("parseDecimal(%q) took a form it must leave to strconv", s)
		}
	}
}

// TestTimesOfOneMinuteReadAsParsed reads time texts in sequences where
// most share a minute with the text before and differ in their seconds
// (valid or not), in every form ParseTime takes, through one timeCache:
// each gives what ParseTime gives it, the time or the refusal.
func TestTimesOfOneMinuteReadAsParsed(t *testing.T) {
	forms := []string{
		"2019-01-07T08:00:%s+08:00", "2019-01-07T08:00:%sZ", "2019-01-07t08:00:%sz",
		"2019-01-07T08:00:%s.250Z", "2019-01-07T08:00:%s.5-05:30", "2019-01-07 08:00:%s",
		"2099-12-31T23:59:%sZ", "2100-12-31T23:59:%sZ", "2000-01-01T00:00:%sZ", "1999-12-31T23:59:%sZ",
		"2019-02-29T08:00:%sZ", "2019-01-07T08:00:%s+24:00", "1546819200%s",
	}
	secs := []string{"00", "07", "30", "59", "60", "61", "99", "5a", "a5", "-1", "6", "007"}
	rng := rand.New(rand.NewPCG(1, 2))
	for form := range forms {
		var tc timeCache
		for range 400 {
			// Mostly the form of the line before, sometimes another.
			f := forms[form]
			if rng.IntN(8) == 0 {
				f = forms[rng.IntN(len(forms))]
			}
			text := fmt.Sprintf(f, secs[rng.IntN(len(secs))])
			var v fields
			v[0] = []byte(text)
			got, fe := requiredTime(&v, &tc, 0)
			want, err := vocab.ParseTime(text)
			if (fe.reason != "") != (err != nil) || err == nil && got != want {
				t.Fatalf("%q: %d %q, ParseTime gives %d %v", text, got, fe.reason, want, err)
			}
		}
	}
}
