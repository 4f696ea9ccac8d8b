package ingest

import (
	"math/rand/v2"
	"strconv"
	"testing"
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
