package vocab

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	ms := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("bad test time %q: %v", s, err)
		}
		return tm.UnixMilli()
	}
	ok := []struct {
		in   string
		want int64
	}{
		{"2019-01-07T06:41:33Z", ms("2019-01-07T06:41:33Z")},
		{"2019-01-07t06:41:33z", ms("2019-01-07T06:41:33Z")},
		{"2019-01-07T06:41:33.25+08:00", ms("2019-01-06T22:41:33.25Z")},
		{"2019-01-07T06:41:33.123456789-03:30", ms("2019-01-07T10:11:33.123Z")},
		{"2019-01-07 06:41:33", ms("2019-01-07T06:41:33Z")},
		{"2019-01-07 06:41:33.5", ms("2019-01-07T06:41:33.5Z")},
		{"2019-01-07 06:41:33+08:00", ms("2019-01-06T22:41:33Z")},
		{"2020-02-29T23:59:59Z", ms("2020-02-29T23:59:59Z")},
		{"2000-01-01T00:00:00Z", ms("2000-01-01T00:00:00Z")},
		{"2100-12-31T23:59:59.999Z", ms("2100-12-31T23:59:59.999Z")},
		{"2000-01-01T07:00:00+07:00", ms("2000-01-01T00:00:00Z")},
		{"1546843293", 1546843293000},
		{"1546843293.5", 1546843293500},
		{"1546843293.123999", 1546843293123},
		{"1546843293123", 1546843293123},
		{"1546843293123.9", 1546843293123},
		{"04102444799", 4102444799000}, // 11 digits: 2099-12-31T23:59:59Z
	}
	for _, c := range ok {
		got, err := ParseTime(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseTime(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}

	bad := []struct {
		in   string
		want error
	}{
		{"", errTimeSyntax},
		{"yesterday", errTimeSyntax},
		{"2019-01-07", errTimeSyntax},
		{"2019-01-07T06:41:33", errTimeZone},
		{"2019-01-07T06:41", errTimeSyntax},
		{"2019-01-07T06:41:33.Z", errTimeSyntax},
		{"2019-01-07T06:41:33+0800", errTimeSyntax},
		{"2019-01-07T06:41:33 +08:00", errTimeSyntax},
		{"2019-01-07X06:41:33Z", errTimeSyntax},
		{"2019-13-07T06:41:33Z", errTimeField},
		{"2019-02-29T06:41:33Z", errTimeField},
		{"2100-02-29T06:41:33Z", errTimeField},
		{"2019-01-07T24:00:00Z", errTimeField},
		{"2019-01-07T06:60:00Z", errTimeField},
		{"2019-01-07T06:41:60Z", errTimeField},
		{"2019-01-00T06:41:33Z", errTimeField},
		{"2019-01-07T06:41:33+24:00", errTimeField},
		{"1999-12-31T23:59:59Z", errTimeRange},
		{"2000-01-01T00:30:00+01:00", errTimeRange},
		{"2101-01-01T00:00:00Z", errTimeRange},
		{"0001-01-01T00:00:00Z", errTimeRange},
		{"9999-12-31 23:59:59", errTimeRange},
		{"946684799", errTimeRange},
		{"946684799999", errTimeDigits},
		{"99999999999", errTimeRange},
		{"154684329312", errTimeDigits},
		{"15468432931234", errTimeDigits},
		{"-1546843293", errTimeSyntax},
		{"1546843293.", errTimeSyntax},
		{"1.546843293e9", errTimeSyntax},
		{" 1546843293", errTimeSyntax},
	}
	for _, c := range bad {
		got, err := ParseTime(c.in)
		if err != c.want {
			t.Errorf("ParseTime(%q) = %d, %v; want error %q", c.in, got, err, c.want)
		}
	}
}

// TestParseTimeAgreesWithTime checks the hand-written calendar against the
// time package over every day of the accepted range.
func TestParseTimeAgreesWithTime(t *testing.T) {
	for d := time.Date(2000, 1, 1, 13, 14, 15, 0, time.UTC); d.Year() <= 2100; d = d.AddDate(0, 0, 1) {
		for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05"} {
			s := d.Format(layout)
			got, err := ParseTime(s)
			if err != nil || got != d.UnixMilli() {
				t.Fatalf("ParseTime(%q) = %d, %v; want %d", s, got, err, d.UnixMilli())
			}
		}
	}
}

func BenchmarkParseTime(b *testing.B) {
	for _, s := range []string{"2019-01-07T06:41:33.250+08:00", "2019-01-07 06:41:33", "1546843293123"} {
		b.Run(s, func(b *testing.B) {
			for b.Loop() {
				if _, err := ParseTime(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
