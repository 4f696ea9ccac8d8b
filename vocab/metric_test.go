package vocab

import (
	"fmt"
	"strconv"
	"testing"
)

// TestSpeedSumRoundsTiesUp: a speed written in tenths or thousandths,
// parsed as ingest parses it, times a count, rounds half up exactly as
// integer arithmetic on the digits does, where adding a half to the
// float64 product took one reading in about 500 down (0.7 × 45 gave 31).
func TestSpeedSumRoundsTiesUp(t *testing.T) {
	for _, c := range []struct {
		speed string
		count int64
		want  int64
	}{{"0.7", 45, 32}, {"0.175", 180, 32}, {"43.5", 1, 44}, {"43.4", 1, 43}, {"0", 9, 0}, {"500", 1000000, 500000000}} {
		s, _ := strconv.ParseFloat(c.speed, 64)
		if got := SpeedSum(s, c.count); got != c.want {
			t.Errorf("SpeedSum(%s, %d) = %d, want %d", c.speed, c.count, got, c.want)
		}
	}
	for _, digits := range []int64{10, 1000} {
		bad := 0
		for n := int64(0); n <= 500*digits; n += 1 + digits/100 {
			s, err := strconv.ParseFloat(strconv.FormatInt(n/digits, 10)+"."+fmt.Sprintf("%0*d", len(strconv.FormatInt(digits, 10))-1, n%digits), 64)
			if err != nil {
				t.Fatal(err)
			}
			for count := int64(1); count <= 1000; count++ {
				if got, want := SpeedSum(s, count), (n*count+digits/2)/digits; got != want {
					if bad++; bad < 5 {
						t.Errorf("SpeedSum(%v, %d) = %d, want %d", s, count, got, want)
					}
				}
			}
		}
		if bad > 0 {
			t.Errorf("1/%d: %d wrong", digits, bad)
		}
	}
}
