package cityfile

import (
	"strings"
	"testing"
	"time"
)

// Wall times across Melbourne's clock changes of 2018: summer time ended
// on 1 April (03:00 AEDT became 02:00 AEST, so 02:00–02:59 happened twice)
// and began on 7 October (02:00 AEST became 03:00 AEDT, so 02:00–02:59
// never happened).
func TestClockAcrossDST(t *testing.T) {
	wall := func(s string) time.Time {
		w, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	cases := []struct {
		name           string
		repeatIsSecond bool
		walls          []string
		want           []string // UTC, or an error's start
	}{
		{"an hourly table lists the repeated hour twice", true,
			[]string{"2018-04-01 01:00", "2018-04-01 02:00", "2018-04-01 02:00", "2018-04-01 03:00"},
			[]string{"2018-03-31T14:00:00Z", "2018-03-31T15:00:00Z", "2018-03-31T16:00:00Z", "2018-03-31T17:00:00Z"}},
		{"an hourly table lists it once: the first", true,
			[]string{"2018-04-01 01:00", "2018-04-01 02:00", "2018-04-01 03:00"},
			[]string{"2018-03-31T14:00:00Z", "2018-03-31T15:00:00Z", "2018-03-31T17:00:00Z"}},
		{"a file of many rows a time goes back within the hour", false,
			[]string{"2018-04-01 02:00", "2018-04-01 02:00", "2018-04-01 02:30", "2018-04-01 02:00", "2018-04-01 02:30", "2018-04-01 03:00"},
			[]string{"2018-03-31T15:00:00Z", "2018-03-31T15:00:00Z", "2018-03-31T15:30:00Z", "2018-03-31T16:00:00Z", "2018-03-31T16:30:00Z", "2018-03-31T17:00:00Z"}},
		{"the next year's change starts over", true,
			[]string{"2018-04-01 02:00", "2018-04-01 02:00", "2019-04-07 02:00"},
			[]string{"2018-03-31T15:00:00Z", "2018-03-31T16:00:00Z", "2019-04-06T15:00:00Z"}},
		{"the gap", true,
			[]string{"2018-10-07 01:59", "2018-10-07 02:00", "2018-10-07 02:59", "2018-10-07 03:00"},
			[]string{"2018-10-06T15:59:00Z", "2018-10-07 02:00:00 does not exist in Australia/Melbourne: the clocks were put forward 1h0m0s then",
				"2018-10-07 02:59:00 does not exist", "2018-10-06T16:00:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock, err := NewClock("Australia/Melbourne", c.repeatIsSecond)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range c.walls {
				got, err := clock.Instant(wall(w))
				text := got.Format(time.RFC3339)
				if err != nil {
					text = err.Error()
				}
				if !strings.HasPrefix(text, c.want[i]) {
					t.Errorf("%s: %s, want %s", w, text, c.want[i])
				}
			}
		})
	}
	if _, err := NewClock("Mars/Olympus", false); err == nil || !strings.Contains(err.Error(), "IANA") {
		t.Errorf("an unknown zone: %v, want an error asking for an IANA name", err)
	}
}

// Localize reads flowd's one offset-less format in the zone and leaves
// absolute times alone.
func TestLocalize(t *testing.T) {
	clock, _ := NewClock("Asia/Shanghai", false)
	for in, want := range map[string]string{
		"2019-01-07 06:41:33":       "2019-01-06T22:41:33Z",
		"2019-01-07 06:41:33.250":   "2019-01-06T22:41:33.25Z",
		"2019-01-07T06:41:33Z":      "2019-01-07T06:41:33Z",
		"2019-01-07 06:41:33+08:00": "2019-01-07 06:41:33+08:00",
		"1546843293":                "1546843293",
	} {
		if got, err := clock.Localize(in); err != nil || got != want {
			t.Errorf("Localize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
