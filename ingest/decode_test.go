package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flowd/flowd/vocab"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

const testMaxLine = 200

func cloneSwipe(s Swipe) Swipe {
	s.Card, s.Station, s.Line, s.Mode = strings.Clone(s.Card), strings.Clone(s.Station), strings.Clone(s.Line), strings.Clone(s.Mode)
	return s
}

func cloneCount(c Count) Count {
	c.Sensor, c.Class = strings.Clone(c.Sensor), strings.Clone(c.Class)
	return c
}

func cloneFootfall(f Footfall) Footfall {
	f.Site, f.Gate = strings.Clone(f.Site), strings.Clone(f.Gate)
	return f
}

// decoded is what one decode call produced.
type decoded[E any] struct {
	events []E
	lines  []int
	errs   []LineError
}

func run[E any](t testing.TB, dec func(io.Reader, Format, int, func(int, *E)) ([]LineError, error), clone func(E) E, body string, f Format, maxLine int) decoded[E] {
	t.Helper()
	var d decoded[E]
	errs, err := dec(strings.NewReader(body), f, maxLine, func(line int, e *E) {
		d.events = append(d.events, clone(*e))
		d.lines = append(d.lines, line)
	})
	if err != nil {
		t.Fatalf("decode error: %v", err)
	}
	d.errs = errs
	return d
}

func swipes(t testing.TB, body string, f Format) decoded[Swipe] {
	t.Helper()
	return run(t, DecodeSwipes, cloneSwipe, body, f, testMaxLine)
}

func counts(t testing.TB, body string, f Format) decoded[Count] {
	t.Helper()
	return run(t, DecodeCounts, cloneCount, body, f, testMaxLine)
}

func footfall(t testing.TB, body string, f Format) decoded[Footfall] {
	t.Helper()
	return run(t, DecodeFootfall, cloneFootfall, body, f, testMaxLine)
}

// lineCase is one invalid NDJSON line and the LineError it must produce.
type lineCase struct {
	name  string
	line  string
	field string
	value string
	want  string
}

// checkLineCases puts each case's line at line 2, after a blank line and
// before a valid line 3, and checks that line 2 is rejected as expected and
// line 3 is still decoded.
func checkLineCases[E any](t *testing.T, cases []lineCase, valid string, decode func(t testing.TB, body string, f Format) decoded[E]) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decode(t, "\n"+c.line+"\n"+valid+"\n", NDJSON)
			want := []LineError{{Line: 2, Field: c.field, Value: c.value, Reason: c.want}}
			if !reflect.DeepEqual(d.errs, want) {
				t.Errorf("errors = %+v\nwant     %+v", d.errs, want)
			}
			if !reflect.DeepEqual(d.lines, []int{3}) {
				t.Errorf("decoded lines %v; want [3]", d.lines)
			}
		})
	}
}

// TestDecodeSwipesLineErrors: a swipe line is named by line, field and
// reason, never by a value: a shifted CSV column can put the card id in any
// field.
func TestDecodeSwipesLineErrors(t *testing.T) {
	const valid = `{"time":"2019-01-07T06:41:33Z","card":"C1","dir":"in","station":"S1"}`
	checkLineCases(t, []lineCase{
		{"time missing", `{"card":"C1","dir":"in","station":"S1"}`, "time", "", "required"},
		{"time empty", `{"time":"","card":"C1","dir":"in","station":"S1"}`, "time", "", "required"},
		{"time null", `{"time":null,"card":"C1","dir":"in","station":"S1"}`, "time", "", "required"},
		{"time bad", `{"time":"yesterday","card":"C1","dir":"in","station":"S1"}`, "time", "", timeReason("yesterday")},
		{"time 1999", `{"time":946684799,"card":"C1","dir":"in","station":"S1"}`, "time", "", timeReason("946684799")},
		{"time no zone", `{"time":"2019-01-07T06:41:33","card":"C1","dir":"in","station":"S1"}`, "time", "", timeReason("2019-01-07T06:41:33")},
		{"time bool", `{"time":true,"card":"C1","dir":"in","station":"S1"}`, "time", "", "must be a string or a number"},
		{"card missing", `{"time":1546843293,"dir":"in","station":"S1"}`, "card", "", "required"},
		{"card blank", `{"time":1546843293,"card":"  ","dir":"in","station":"S1"}`, "card", "", "required"},
		{"card array", `{"time":1546843293,"card":["C1"],"dir":"in","station":"S1"}`, "card", "", "must be a string or a number"},
		{"dir missing", `{"time":1546843293,"card":"C1","station":"S1"}`, "dir", "", "required"},
		{"dir word", `{"time":1546843293,"card":"C1","dir":"sideways","station":"S1"}`, "dir", "", "must be in, out, entry, exit, 1 or 0"},
		{"dir 2", `{"time":1546843293,"card":"C1","dir":2,"station":"S1"}`, "dir", "", "must be in, out, entry, exit, 1 or 0"},
		{"dir 1.0", `{"time":1546843293,"card":"C1","dir":1.0,"station":"S1"}`, "dir", "", "must be in, out, entry, exit, 1 or 0"},
		{"no place", `{"time":1546843293,"card":"C1","dir":"in"}`, "station", "", "station or lat and lng required"},
		{"lat alone", `{"time":1546843293,"card":"C1","dir":"in","lat":30.2}`, "lng", "", "required with lat"},
		{"lng alone", `{"time":1546843293,"card":"C1","dir":"in","station":"S1","lng":120.1}`, "lat", "", "required with lng"},
		{"lat 91", `{"time":1546843293,"card":"C1","dir":"in","lat":91,"lng":120.1}`, "lat", "", "must be between -90 and 90"},
		{"lng -180.5", `{"time":1546843293,"card":"C1","dir":"in","lat":"30","lng":"-180.5"}`, "lng", "", "must be between -180 and 180"},
		{"lat word", `{"time":1546843293,"card":"C1","dir":"in","lat":"north","lng":120.1}`, "lat", "", "must be a number"},
		{"lat NaN", `{"time":1546843293,"card":"C1","dir":"in","lat":NaN,"lng":120.1}`, "lat", "", "must be a number"},
		{"lat inf", `{"time":1546843293,"card":"C1","dir":"in","lat":"1e999","lng":120.1}`, "lat", "", "must be a number"},
		{"station object", `{"time":1546843293,"card":"C1","dir":"in","station":{"a":1}}`, "station", "", "must be a string or a number"},
		{"malformed JSON", `{"time":1546843293,"card":"C1"`, "", "", "malformed JSON"},
		{"trailing garbage", `{"time":1546843293} x`, "", "", "malformed JSON"},
		{"not an object", `[1546843293,"C1"]`, "", "", "must be a JSON object"},
		{"bare string", `"hello"`, "", "", "must be a JSON object"},
		{"bad UTF-8", "{\"time\":1546843293,\"card\":\"C1\",\"dir\":\"in\",\"station\":\"S\xff\"}", "", "", "not valid UTF-8"},
		{"too long", `{"time":1546843293,"card":"C1","dir":"in","station":"` + strings.Repeat("S", testMaxLine) + `"}`, "", "", "line longer than 200 bytes"},
	}, valid, swipes)
}

func TestDecodeCountsLineErrors(t *testing.T) {
	const valid = `{"time":1546843293,"sensor":"D1","class":"car","count":3}`
	checkLineCases(t, []lineCase{
		{"time missing", `{"sensor":"D1","class":"car","count":3}`, "time", "", "required"},
		{"sensor missing", `{"time":1546843293,"class":"car","count":3}`, "sensor", "", "required"},
		{"class missing", `{"time":1546843293,"sensor":"D1","count":3}`, "class", "", "required"},
		{"count missing", `{"time":1546843293,"sensor":"D1","class":"car"}`, "count", "", "required"},
		{"count negative", `{"time":1546843293,"sensor":"D1","class":"car","count":-2}`, "count", "-2", "must not be negative"},
		{"count fraction", `{"time":1546843293,"sensor":"D1","class":"car","count":"2.5"}`, "count", "2.5", "must be an integer"},
		{"count huge", `{"time":1546843293,"sensor":"D1","class":"car","count":1e30}`, "count", "1e30", "must be an integer"},
		{"count object", `{"time":1546843293,"sensor":"D1","class":"car","count":{}}`, "count", "{}", "must be a string or a number"},
		{"interval zero", `{"time":1546843293,"sensor":"D1","class":"car","count":3,"interval":0}`, "interval", "0", "must be positive"},
		{"interval negative", `{"time":1546843293,"sensor":"D1","class":"car","count":3,"interval":"-60"}`, "interval", "-60", "must be positive"},
		{"interval unit", `{"time":1546843293,"sensor":"D1","class":"car","count":3,"interval":"1m"}`, "interval", "1m", "must be an integer number of seconds"},
		{"interval too long", `{"time":1546843293,"sensor":"D1","class":"car","count":3,"interval":86401}`, "interval", "86401", "must be at most 86400 seconds"},
		{"speed negative", `{"time":1546843293,"sensor":"D1","class":"car","count":3,"speed":-1.5}`, "speed", "-1.5", "must not be negative"},
		{"speed word", `{"time":1546843293,"sensor":"D1","class":"car","count":3,"speed":"fast"}`, "speed", "fast", "must be a number"},
		{"speed long value", `{"time":1546843293,"sensor":"D1","class":"car","count":3,"speed":"` + strings.Repeat("x", 100) + `"}`, "speed", strings.Repeat("x", maxErrorValueLen) + "…", "must be a number"},
	}, valid, counts)
}

// TestDecodeSwipesCSVShiftedColumnsEchoNoCard: a CSV export whose columns
// shifted puts the card id where the time should be; the error names the
// field and not the value.
func TestDecodeSwipesCSVShiftedColumnsEchoNoCard(t *testing.T) {
	d := swipes(t, "time,card,dir,station\nCARD0012345,2019-01-07T06:41:33Z,in,S1\n", CSV)
	if len(d.errs) != 1 || d.errs[0].Field != "time" {
		t.Fatalf("errors %+v; want one on the time field", d.errs)
	}
	if e := d.errs[0].Error(); strings.Contains(e, "CARD0012345") {
		t.Errorf("the error echoes the card id: %s", e)
	}
}

func TestDecodeFootfallLineErrors(t *testing.T) {
	const valid = `{"time":1546843293,"site":"west-lake","gate":"G1","in":4,"out":1}`
	checkLineCases(t, []lineCase{
		{"time bad", `{"time":"2019-02-30 10:00:00","site":"west-lake","in":4}`, "time", "2019-02-30 10:00:00", timeReason("2019-02-30 10:00:00")},
		{"site missing", `{"time":1546843293,"gate":"G1","in":4}`, "site", "", "required"},
		{"nothing counted", `{"time":1546843293,"site":"west-lake","gate":"G1"}`, "in", "", "in or out, or occupancy required"},
		{"in negative", `{"time":1546843293,"site":"west-lake","in":-1,"out":2}`, "in", "-1", "must not be negative"},
		{"out word", `{"time":1546843293,"site":"west-lake","in":1,"out":"x"}`, "out", "x", "must be an integer"},
		{"occupancy fraction", `{"time":1546843293,"site":"west-lake","occupancy":1.5}`, "occupancy", "1.5", "must be an integer"},
		{"occupancy negative", `{"time":1546843293,"site":"west-lake","occupancy":"-7"}`, "occupancy", "-7", "must not be negative"},
	}, valid, footfall)
}

func TestDecodeCSVErrors(t *testing.T) {
	const rec = "2019-01-07T06:41:33Z,C1,in,S1"
	cases := []struct {
		name  string
		body  string
		errs  []LineError
		lines []int
	}{
		{"missing column", "time,dir,station\n2019-01-07T06:41:33Z,in,S1\n", []LineError{{Line: 1, Field: "card", Reason: "missing column card; a header names " + swipeSchema.expect}}, nil},
		{"missing columns, all named at once", "id,id_tarjeta,lat,lon,hora,fecha\n1,2,3,4,5,6\n", []LineError{{Line: 1, Field: "time", Reason: "missing column time, card, dir, lng (lat needs it); a header names " + swipeSchema.expect}}, nil},
		{"header after blank lines", "\n \ntime,dir,station\n" + rec + "\n", []LineError{{Line: 3, Field: "card", Reason: "missing column card; a header names " + swipeSchema.expect}}, nil},
		{"lat without lng", "time,card,dir,lat\n", []LineError{{Line: 1, Field: "lng", Reason: "missing column lng (lat needs it); a header names " + swipeSchema.expect}}, nil},
		{"lng without lat", "time,card,dir,station,lng\n", []LineError{{Line: 1, Field: "lat", Reason: "missing column lat (lng needs it); a header names " + swipeSchema.expect}}, nil},
		{"no place column", "time,card,dir,line\n", []LineError{{Line: 1, Field: "station", Reason: "missing column station (or lat and lng); a header names " + swipeSchema.expect}}, nil},
		{"duplicate column", "time,card,dir,station,Station\n" + rec + "\n", []LineError{{Line: 1, Field: "station", Reason: "duplicate column"}}, nil},
		{"header unterminated", "time,\"card,dir,station\n" + rec + "\n", []LineError{{Line: 1, Reason: "header: " + errCSVUnterminated.Error()}}, nil},
		{"header too long", "time,card,dir,station," + strings.Repeat("x", testMaxLine) + "\n" + rec + "\n", []LineError{{Line: 1, Reason: "header line longer than 200 bytes"}}, nil},
		{"header bad UTF-8", "time,card,dir,station,\xff\n" + rec + "\n", []LineError{{Line: 1, Reason: "header is not valid UTF-8"}}, nil},
		{"only a header", "time,card,dir,station\n", nil, nil},
		{"empty body", "", nil, nil},
		{"records", "time,card,dir,station\n" + strings.Join([]string{
			`2019-01-07T06:41:33Z,"C1,in,S1`,
			`2019-01-07T06:41:33Z,C"1,in,S1`,
			`2019-01-07T06:41:33Z,"C1"x,in,S1`,
			`2019-01-07T06:41:33Z,C1`,
			`2019-01-07T06:41:33Z,,in,S1`,
			``,
			rec,
			`2019-01-07T06:41:33Z,C1,in,S1,surplus,cells`,
			`,,,`,
			"2019-01-07T06:41:33Z,C1,in,\xc3",
			`2019-01-07T06:41:33Z,C1,in,` + strings.Repeat("S", testMaxLine),
			`2019-01-07T06:41:33Z,"C""1",in,S1`,
		}, "\n"), []LineError{
			{Line: 2, Reason: errCSVUnterminated.Error()},
			{Line: 3, Reason: errCSVBareQuote.Error()},
			{Line: 4, Reason: errCSVAfterQuote.Error()},
			{Line: 5, Field: "dir", Reason: "required"},
			{Line: 6, Field: "card", Reason: "required"},
			{Line: 10, Field: "time", Reason: "required"},
			{Line: 11, Reason: "not valid UTF-8"},
			{Line: 12, Reason: "line longer than 200 bytes"},
		}, []int{8, 9, 13}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := swipes(t, c.body, CSV)
			if !reflect.DeepEqual(d.errs, c.errs) {
				t.Errorf("errors = %+v\nwant     %+v", d.errs, c.errs)
			}
			if !reflect.DeepEqual(d.lines, c.lines) {
				t.Errorf("decoded lines %v; want %v", d.lines, c.lines)
			}
		})
	}

	t.Run("required count columns", func(t *testing.T) {
		d := counts(t, "time,sensor,count\n1546843293,D1,3\n", CSV)
		if want := []LineError{{Line: 1, Field: "class", Reason: "missing column class; a header names " + countSchema.expect}}; !reflect.DeepEqual(d.errs, want) || len(d.events) != 0 {
			t.Errorf("got %+v, %d events; want %+v and none", d.errs, len(d.events), want)
		}
	})
	t.Run("required footfall columns", func(t *testing.T) {
		d := footfall(t, "time,site,gate\n1546843293,S,G\n", CSV)
		if want := []LineError{{Line: 1, Field: "in", Reason: "missing column in and out (or occupancy); a header names " + footfallSchema.expect}}; !reflect.DeepEqual(d.errs, want) || len(d.events) != 0 {
			t.Errorf("got %+v, %d events; want %+v and none", d.errs, len(d.events), want)
		}
	})
}

// TestFormatsAgree decodes the same swipes, counts and readings from NDJSON
// and from CSV (with a byte order mark, CRLF line ends, columns in another
// order, quoting and an unknown column) and wants the same events.
func TestFormatsAgree(t *testing.T) {
	t.Run("swipes", func(t *testing.T) {
		nd := strings.Join([]string{
			`{"time":"2019-01-07 06:41:33","card":"C0453c92","dir":1,"station":"63","line":"C","extra":{"x":[1]}}`,
			`{"time":1546843293,"card":"A\"quoted, card","dir":"OUT","lat":"30.25","lng":120.16,"mode":"metro"}`,
			`{"time":"1546843293123","card":" 42 ","dir":"entry","station":"Wulin Sq, east","lat":-34.5,"lng":-58.25}`,
			`{"time":"2019-01-07T06:41:33.5+08:00","card":12345,"dir":"exit","station":"\u897f\u6e56","line":null}`,
			`{"time":1546843293,"card":"C9","dir":0,"station":"S","lat":"","lng":null}`,
		}, "\n")
		csv := "\ufeffdir,Card, time ,station,lat,lng,line,mode,unused\r\n" +
			"1,C0453c92,2019-01-07 06:41:33,63,,,C,,zzz\r\n" +
			"OUT,\"A\"\"quoted, card\",1546843293,,30.25,120.16,,metro,\r\n" +
			"entry, 42 ,1546843293123,\"Wulin Sq, east\",-34.5,-58.25,,,\r\n" +
			"exit,12345,2019-01-07T06:41:33.5+08:00,西湖,,,,,\r\n" +
			"0,C9,1546843293,S\r\n"
		want := []Swipe{
			{Time: 1546843293000, Card: "C0453c92", In: true, Station: "63", Line: "C"},
			{Time: 1546843293000, Card: `A"quoted, card`, Lat: 30.25, Lng: 120.16, HasLatLng: true, Mode: "metro"},
			{Time: 1546843293123, Card: "42", In: true, Station: "Wulin Sq, east", Lat: -34.5, Lng: -58.25, HasLatLng: true},
			{Time: 1546814493500, Card: "12345", Station: "西湖"},
			{Time: 1546843293000, Card: "C9", Station: "S"},
		}
		a, b := swipes(t, nd, NDJSON), swipes(t, csv, CSV)
		if a.errs != nil || b.errs != nil {
			t.Fatalf("errors: ndjson %v, csv %v", a.errs, b.errs)
		}
		if !reflect.DeepEqual(a.events, want) {
			t.Errorf("ndjson = %+v\nwant     %+v", a.events, want)
		}
		if !reflect.DeepEqual(b.events, want) {
			t.Errorf("csv = %+v\nwant  %+v", b.events, want)
		}
		if !reflect.DeepEqual(a.lines, []int{1, 2, 3, 4, 5}) || !reflect.DeepEqual(b.lines, []int{2, 3, 4, 5, 6}) {
			t.Errorf("lines: ndjson %v, csv %v", a.lines, b.lines)
		}
	})
	t.Run("counts", func(t *testing.T) {
		nd := `{"time":1546843293,"sensor":"D1","class":"car","count":3}
{"time":"1546843293","sensor":7,"class":"bus","count":"0","interval":300,"speed":"41.5"}`
		csv := "sensor,class,count,time,speed,interval\n" +
			"D1,car,3,1546843293,,\n" +
			"7,bus,0,1546843293,41.5,300\n"
		want := []Count{
			{Time: 1546843293000, Sensor: "D1", Class: "car", Count: 3, Interval: 60},
			{Time: 1546843293000, Sensor: "7", Class: "bus", Count: 0, Interval: 300, Speed: 41.5, HasSpeed: true},
		}
		a, b := counts(t, nd, NDJSON), counts(t, csv, CSV)
		if a.errs != nil || b.errs != nil || !reflect.DeepEqual(a.events, want) || !reflect.DeepEqual(b.events, want) {
			t.Errorf("ndjson %+v %v\ncsv    %+v %v\nwant   %+v", a.events, a.errs, b.events, b.errs, want)
		}
	})
	t.Run("footfall", func(t *testing.T) {
		nd := `{"time":1546843293,"site":"west-lake","gate":"G1","in":4,"out":1}
{"time":1546843293,"site":"west-lake","occupancy":"180000"}
{"time":1546843293,"site":"west-lake","out":2}`
		csv := "time,site,gate,in,out,occupancy\n" +
			"1546843293,west-lake,G1,4,1,\n" +
			"1546843293,west-lake,,,,180000\n" +
			"1546843293,west-lake,,,2,\n"
		want := []Footfall{
			{Time: 1546843293000, Site: "west-lake", Gate: "G1", In: 4, Out: 1},
			{Time: 1546843293000, Site: "west-lake", Occupancy: 180000, HasOccupancy: true},
			{Time: 1546843293000, Site: "west-lake", Out: 2},
		}
		a, b := footfall(t, nd, NDJSON), footfall(t, csv, CSV)
		if a.errs != nil || b.errs != nil || !reflect.DeepEqual(a.events, want) || !reflect.DeepEqual(b.events, want) {
			t.Errorf("ndjson %+v %v\ncsv    %+v %v\nwant   %+v", a.events, a.errs, b.events, b.errs, want)
		}
	})
}

// TestCardNeverInLineErrors feeds lines whose card is a recognisable secret
// and that fail in every way a line can fail; no error may repeat it.
func TestCardNeverInLineErrors(t *testing.T) {
	const card = "SECRET4411"
	nd := []string{
		`{"time":"x","card":"SECRET4411","dir":"in","station":"S"}`,
		`{"time":1546843293,"card":"SECRET4411","dir":"up","station":"S"}`,
		`{"time":1546843293,"card":"SECRET4411"`,
		`{"time":1546843293,"card":"SECRET4411","dir":"in","station":"S"} trailing`,
		`{"time":1546843293,"card":["SECRET4411"],"dir":"in","station":"S"}`,
		`{"time":1546843293,"card":{"id":"SECRET4411"},"dir":"in","station":"S"}`,
		`{"time":1546843293,"card":SECRET4411,"dir":"in","station":"S"}`,
		`["SECRET4411"]`,
		"{\"time\":1546843293,\"card\":\"SECRET4411\xff\",\"dir\":\"in\",\"station\":\"S\"}",
		`{"time":1546843293,"card":"SECRET4411","dir":"in","station":"S","pad":"` + strings.Repeat("p", testMaxLine) + `"}`,
	}
	csv := []string{
		"time,card,dir,station",
		`x,SECRET4411,in,S`,
		`1546843293,"SECRET4411,in,S`,
		`1546843293,SECRET4411",in,S`,
		`1546843293,"SECRET4411"x,in,S`,
		`1546843293,SECRET4411,sideways,S`,
		`1546843293,SECRET4411,in,`,
	}
	for _, body := range []struct {
		f    Format
		text string
		bad  int
	}{{NDJSON, strings.Join(nd, "\n"), len(nd)}, {CSV, strings.Join(csv, "\n"), len(csv) - 1}} {
		d := swipes(t, body.text, body.f)
		if len(d.errs) != body.bad {
			t.Errorf("%s: %d errors; want %d: %v", body.f, len(d.errs), body.bad, d.errs)
		}
		for _, e := range d.errs {
			if strings.Contains(e.Error(), card) || strings.Contains(e.Value, "SECRET") {
				t.Errorf("%s: error repeats the card: %s", body.f, e.Error())
			}
		}
	}
}

func TestLineErrorsAreCapped(t *testing.T) {
	body := strings.Repeat("nonsense\n", MaxLineErrors+500) + `{"time":1546843293,"card":"C1","dir":"in","station":"S1"}`
	d := swipes(t, body, NDJSON)
	if len(d.errs) != MaxLineErrors+1 {
		t.Fatalf("%d errors; want %d", len(d.errs), MaxLineErrors+1)
	}
	last := d.errs[MaxLineErrors]
	if want := (LineError{Line: MaxLineErrors + 1, Reason: "500 more invalid lines from here on are not listed", More: 500}); last != want {
		t.Errorf("last error %+v; want %+v", last, want)
	}
	if !reflect.DeepEqual(d.lines, []int{MaxLineErrors + 501}) {
		t.Errorf("decoded lines %v; want [%d]", d.lines, MaxLineErrors+501)
	}
}

func TestFormatOf(t *testing.T) {
	cases := []struct {
		ct   string
		want Format
		err  bool
	}{
		{"", 0, true}, // a cross-site "simple" POST may carry none
		{"application/x-ndjson", NDJSON, false},
		{"application/json; charset=utf-8", NDJSON, false},
		{"Application/JSONL", NDJSON, false},
		{"text/csv", CSV, false},
		{" text/csv ; header=present", CSV, false},
		{"text/plain", 0, true},
		{"application/xml", 0, true},
	}
	for _, c := range cases {
		got, err := FormatOf(c.ct)
		if c.err {
			if !errors.Is(err, ErrUnsupportedMediaType) {
				t.Errorf("FormatOf(%q) = %v, %v; want ErrUnsupportedMediaType", c.ct, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("FormatOf(%q) = %v, %v; want %v", c.ct, got, err, c.want)
		}
	}
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, data []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func swipeBody(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"time":%d,"card":"C%08d","dir":"%s","station":"S%d","line":"1","mode":"metro"}`+"\n",
			1546843293000+int64(i)*37, i%5000, [2]string{"in", "out"}[i%2], i%81)
	}
	return b.Bytes()
}

func TestBodyEncodings(t *testing.T) {
	plain := swipeBody(3000)
	want := run(t, DecodeSwipes, cloneSwipe, string(plain), NDJSON, testMaxLine)
	if len(want.events) != 3000 {
		t.Fatalf("plain body decoded %d events", len(want.events))
	}
	cases := []struct {
		enc  string
		body []byte
	}{
		{"", plain},
		{"identity", plain},
		{"gzip", gzipped(t, plain)},
		{"x-gzip", gzipped(t, plain)},
		{"GZIP", gzipped(t, plain)},
		{"zstd", zstded(t, plain)},
	}
	// Twice, so that the second round runs on pooled decompressors.
	for round := range 2 {
		for _, c := range cases {
			r, err := Body(bytes.NewReader(c.body), c.enc, int64(len(plain)))
			if err != nil {
				t.Fatalf("round %d, %q: %v", round, c.enc, err)
			}
			var got []Swipe
			errs, err := DecodeSwipes(r, NDJSON, testMaxLine, func(_ int, s *Swipe) { got = append(got, cloneSwipe(*s)) })
			r.Close()
			if err != nil || errs != nil {
				t.Fatalf("round %d, %q: %v, %v", round, c.enc, err, errs)
			}
			if !reflect.DeepEqual(got, want.events) {
				t.Errorf("round %d, %q: events differ from the plain body's", round, c.enc)
			}
		}
	}
}

func TestBodyErrors(t *testing.T) {
	plain := swipeBody(100)
	if _, err := Body(bytes.NewReader(plain), "br", 1<<20); !errors.Is(err, ErrUnsupportedMediaType) {
		t.Errorf("br: %v; want ErrUnsupportedMediaType", err)
	}
	if _, err := Body(bytes.NewReader(plain), "gzip", 1<<20); err == nil {
		t.Errorf("gzip of a plain body: no error")
	}
	gz := gzipped(t, plain)
	zs := zstded(t, plain)
	for _, c := range []struct {
		enc  string
		body []byte
	}{
		{"gzip", gz[:len(gz)/2]},
		{"zstd", zs[:len(zs)/2]},
		{"zstd", append(bytes.Clone(zs[:len(zs)-8]), 1, 2, 3, 4, 5, 6, 7, 8)},
	} {
		r, err := Body(bytes.NewReader(c.body), c.enc, 1<<20)
		if err != nil {
			continue // refused up front: fine too
		}
		_, err = DecodeSwipes(r, NDJSON, testMaxLine, func(int, *Swipe) {})
		if err == nil || errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), c.enc) {
			t.Errorf("damaged %s body: %v; want a %s error", c.enc, err, c.enc)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	plain := swipeBody(50)
	n := int64(len(plain))
	for _, c := range []struct {
		enc  string
		body []byte
	}{{"", plain}, {"gzip", gzipped(t, plain)}, {"zstd", zstded(t, plain)}} {
		for _, limit := range []int64{n, n - 1, 1} {
			r, err := Body(bytes.NewReader(c.body), c.enc, limit)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if limit >= n {
				if err != nil || !bytes.Equal(got, plain) {
					t.Errorf("%q, limit %d: read %d bytes, %v; want the whole body", c.enc, limit, len(got), err)
				}
				continue
			}
			if !errors.Is(err, ErrTooLarge) || int64(len(got)) != limit {
				t.Errorf("%q, limit %d: read %d bytes, %v; want %d bytes and ErrTooLarge", c.enc, limit, len(got), err, limit)
			}
			if _, err := r.Read(make([]byte, 8)); !errors.Is(err, ErrTooLarge) {
				t.Errorf("%q: read after the limit: %v; want ErrTooLarge again", c.enc, err)
			}
		}
	}
}

// TestBodyBomb decompresses 1 GiB of zeros packed into about a megabyte and
// wants it cut at the limit with ErrTooLarge, allocating far less than the
// decompressed size.
func TestBodyBomb(t *testing.T) {
	const (
		chunk = 1 << 20
		total = 1 << 30
		limit = 4 << 20
	)
	zeros := make([]byte, chunk)
	// Concatenated gzip members and zstd frames decode as one stream, so
	// one compressed megabyte repeated gives the whole gigabyte cheaply.
	bombs := map[string][]byte{
		"gzip": bytes.Repeat(gzipped(t, zeros), total/chunk),
		"zstd": bytes.Repeat(zstded(t, zeros), total/chunk),
	}
	for enc, bomb := range bombs {
		t.Run(enc, func(t *testing.T) {
			t.Logf("%d compressed bytes", len(bomb))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)

			r, err := Body(bytes.NewReader(bomb), enc, limit)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, r)
			if !errors.Is(err, ErrTooLarge) || n != limit {
				t.Errorf("copied %d bytes, %v; want %d and ErrTooLarge", n, err, limit)
			}
			r.Close()

			r, err = Body(bytes.NewReader(bomb), enc, limit)
			if err != nil {
				t.Fatal(err)
			}
			errs, err := DecodeSwipes(r, NDJSON, 64<<10, func(int, *Swipe) { t.Error("decoded an event from zeros") })
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("DecodeSwipes: %v; want ErrTooLarge", err)
			}
			if len(errs) != 0 {
				t.Errorf("DecodeSwipes: %v; want no line errors (the one line never ended)", errs)
			}
			r.Close()

			runtime.ReadMemStats(&after)
			// The race detector's pools drop decoders at random, so a
			// fresh one (and its window) may be allocated: allow for one.
			bound := uint64(16 << 20)
			if raceEnabled {
				bound += 16 << 20
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bound {
				t.Errorf("allocated %d MiB for a %d MiB limit", alloc>>20, limit>>20)
			}
		})
	}
}

// TestBodyZstdWindow: a frame that asks for a bigger window than
// zstdMaxWindow is refused instead of allocated.
func TestBodyZstdWindow(t *testing.T) {
	data := bytes.Repeat(swipeBody(1000), 200) // about 20 MiB
	zs := zstded(t, data, zstd.WithWindowSize(64<<20))
	r, err := Body(bytes.NewReader(zs), "zstd", 1<<30)
	if err == nil {
		_, err = io.Copy(io.Discard, r)
	}
	if !errors.Is(err, zstd.ErrWindowSizeExceeded) {
		t.Errorf("got %v; want ErrWindowSizeExceeded", err)
	}
}

// TestDecodeAllocsPerEvent checks that steady decoding allocates nothing per
// event: a body twice as long must cost no more allocations.
func TestDecodeAllocsPerEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are slow to measure")
	}
	perEvent := func(dec func(r io.Reader) error, body func(n int) []byte) float64 {
		measure := func(n int) float64 {
			b := body(n)
			r := bytes.NewReader(b)
			return testing.AllocsPerRun(20, func() {
				r.Reset(b)
				if err := dec(r); err != nil {
					t.Fatal(err)
				}
			})
		}
		return (measure(4000) - measure(2000)) / 2000
	}
	swipesND := perEvent(func(r io.Reader) error {
		_, err := DecodeSwipes(r, NDJSON, 1024, func(int, *Swipe) {})
		return err
	}, swipeBody)
	countsCSV := perEvent(func(r io.Reader) error {
		_, err := DecodeCounts(r, CSV, 1024, func(int, *Count) {})
		return err
	}, countBodyCSV)
	if swipesND > 0.01 || countsCSV > 0.01 {
		t.Errorf("allocations per event: swipes NDJSON %.3f, counts CSV %.3f; want 0", swipesND, countsCSV)
	}
}

func countBodyCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("time,sensor,class,count,interval,speed\n")
	for i := range n {
		fmt.Fprintf(&b, "2019-01-07T06:%02d:%02dZ,cam-%d,%s,%d,60,%d.5\n", i/60%60, i%60, i%400, [3]string{"car", "bus", "bike"}[i%3], i%37, i%90)
	}
	return b.Bytes()
}

// checkFuzzResult holds for every body: events and errors are on distinct,
// increasing lines that exist, and no swipe error echoes a value.
func checkFuzzResult(t *testing.T, body []byte, lines []int, errs []LineError, swipes bool) {
	total := bytes.Count(body, []byte("\n")) + 1
	seen := map[int]bool{}
	prev := 0
	for _, l := range lines {
		if l <= prev || l > total {
			t.Fatalf("event line %d after %d of %d lines", l, prev, total)
		}
		prev = l
		seen[l] = true
	}
	prev = 0
	for i, e := range errs {
		last := i == len(errs)-1 && len(errs) == MaxLineErrors+1
		if (e.Line <= prev && !last) || e.Line > total || e.Line < 1 {
			t.Fatalf("error line %d after %d of %d lines: %v", e.Line, prev, total, e)
		}
		if seen[e.Line] && !last {
			t.Fatalf("line %d both decoded and rejected", e.Line)
		}
		prev = e.Line
		if swipes && e.Value != "" {
			t.Fatalf("a swipe line's value echoed: %v", e)
		}
		if !utf8.ValidString(e.Error()) || e.Reason == "" {
			t.Fatalf("bad error %q", e.Error())
		}
	}
}

func fuzzDecode[E any](f *testing.F, dec func(io.Reader, Format, int, func(int, *E)) ([]LineError, error), check func(*testing.T, *E), seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, csv bool) {
		format := NDJSON
		if csv {
			format = CSV
		}
		var lines []int
		var got []string
		errs, err := dec(bytes.NewReader(body), format, 128, func(line int, e *E) {
			lines = append(lines, line)
			got = append(got, fmt.Sprintf("%d %+v", line, *e))
			check(t, e)
		})
		if err != nil {
			t.Fatalf("error from an in-memory body: %v", err)
		}
		// Read in place (a Memory), the body decodes the same.
		var inPlace []string
		memErrs, err := dec(NewMemory(body), format, 128, func(line int, e *E) {
			inPlace = append(inPlace, fmt.Sprintf("%d %+v", line, *e))
		})
		if err != nil || !slices.Equal(got, inPlace) || fmt.Sprint(errs) != fmt.Sprint(memErrs) {
			t.Fatalf("read in place: %v, %q, %v; through a reader: %q, %v", err, inPlace, memErrs, got, errs)
		}
		_, swipes := any((*E)(nil)).(*Swipe)
		checkFuzzResult(t, body, lines, errs, swipes)
	})
}

func checkTime(t *testing.T, ms int64) {
	if ms < vocab.MinTimeMs || ms >= vocab.MaxTimeMs {
		t.Fatalf("time %d out of range", ms)
	}
}

func FuzzDecodeSwipes(f *testing.F) {
	fuzzDecode(f, DecodeSwipes, func(t *testing.T, s *Swipe) {
		checkTime(t, s.Time)
		if s.Card == "" || (s.Station == "" && !s.HasLatLng) || s.Lat < -90 || s.Lat > 90 || s.Lng < -180 || s.Lng > 180 {
			t.Fatalf("invalid swipe passed: %+v", *s)
		}
	},
		"time,card,dir,station,lat,lng,line,mode\n2019-01-07 06:41:33,C1,1,63,,,C,metro\n1546843293,\"C\"\"2\",out,,30.2,120.1,,\n",
		`{"time":"2019-01-07T06:41:33Z","card":"C1","dir":"in","station":"S1"}`+"\n"+`{"time":1546843293123,"card":7,"dir":0,"lat":"30.2","lng":120.1}`,
		"\ufeffcard,dir,time,lat,lng\r\nC1,entry,2019-01-07T06:41:33.5+08:00,-90,180\r\n",
		`{"time":"x","card":["C"],"dir":"up"}`+"\n[1]\n{",
	)
}

func FuzzDecodeCounts(f *testing.F) {
	fuzzDecode(f, DecodeCounts, func(t *testing.T, c *Count) {
		checkTime(t, c.Time)
		if c.Sensor == "" || c.Class == "" || c.Count < 0 || c.Interval <= 0 || c.Interval > maxInterval || c.Speed < 0 {
			t.Fatalf("invalid count passed: %+v", *c)
		}
	},
		"time,sensor,class,count,interval,speed\n1546843293,D1,car,3,60,41.5\n2019-01-07 06:41:33,D2,bus,0,,\n",
		// Lines of one form, read where they are in a body in memory:
		// "\r\n", a line too long, a blank one, the last without "\n"
		// and with "\r".
		`{"time":1546843293,"sensor":"D1","class":"car","count":3}`+"\r\n"+`{"time":1546843293,"sensor":"D2","class":"car","count":4}`+"\r\n\n"+
			`{"time":1546843293,"sensor":"D3`+strings.Repeat("y", 100)+`","class":"car","count":5}`+"\n"+
			`{"time":1546843293,"sensor":"D4","class":"car","count":6}`+"\n"+`{"time":1546843293,"sensor":"D5","class":"car","count":7}`+"\r",
		// A first line of 128 bytes after its byte order mark (the
		// fuzzers' lines may have 128), its "\n" the buffer's 132nd.
		"\ufeff"+`{"time":1546843293,"sensor":"D1","class":"car","count":3,"x":"`+strings.Repeat("x", 128-64)+`"}`+"\n",
		`{"time":1546843293,"sensor":"D1","class":"car","count":3}`+"\n"+`{"time":"1546843293","sensor":7,"class":"bus","count":"0","interval":300,"speed":"41.5"}`,
		`{"time":1546843293,"sensor":"D1","class":"car","count":-3,"interval":0,"speed":-1}`,
	)
}

func FuzzDecodeFootfall(f *testing.F) {
	fuzzDecode(f, DecodeFootfall, func(t *testing.T, ff *Footfall) {
		checkTime(t, ff.Time)
		if ff.Site == "" || ff.In < 0 || ff.Out < 0 || ff.Occupancy < 0 || (!ff.HasOccupancy && ff.Occupancy != 0) {
			t.Fatalf("invalid reading passed: %+v", *ff)
		}
	},
		"time,site,gate,in,out,occupancy\n1546843293,west-lake,G1,4,1,\n1546843293,west-lake,,,,180000\n",
		`{"time":1546843293,"site":"west-lake","gate":"G1","in":4,"out":1}`+"\n"+`{"time":1546843293,"site":"west-lake","occupancy":"180000"}`,
		`{"time":1546843293,"site":"west-lake"}`,
	)
}

// timeReason is the reason vocab.ParseTime gives for s, which a rejected
// line must carry unchanged.
func timeReason(s string) string {
	_, err := vocab.ParseTime(s)
	if err == nil {
		panic("BUG: " + s + " parses")
	}
	return err.Error()
}

// TestMemoryBodyRefusesAsTheStreamDoes: a body decoded in place is refused
// for its bytes and lines exactly when, and with the error that, reading
// it through Body and the event limit would give.
func TestMemoryBodyRefusesAsTheStreamDoes(t *testing.T) {
	for _, body := range []string{"", "a", "a\n", "a\nb", "a\nb\n", "a\nb\nc", "a\nb\nc\n", "\n\n\n", "h\na\nb\n"} {
		for _, f := range []Format{NDJSON, CSV} {
			for maxBytes := int64(1); maxBytes <= 8; maxBytes++ {
				for maxEvents := 0; maxEvents <= 3; maxEvents++ {
					var streamErr error
					r, err := Body(strings.NewReader(body), "", maxBytes)
					if err != nil {
						t.Fatal(err)
					}
					_, streamErr = io.ReadAll(limitEvents(r, f, maxEvents))
					_, memErr := memoryBody([]byte(body), f, maxBytes, maxEvents)
					if fmt.Sprint(streamErr) != fmt.Sprint(memErr) {
						t.Errorf("%q %s, %d bytes, %d events: in memory %v, streamed %v", body, f, maxBytes, maxEvents, memErr, streamErr)
					}
				}
			}
		}
	}
}

// TestSplitCSVWithoutQuotes: a line that quotes nothing splits at every
// comma, empty fields and a trailing comma included, as a line with quotes
// elsewhere does.
func TestSplitCSVWithoutQuotes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = ",ab1 \t;"[rng.IntN(7)]
		}
		got, err := splitCSV(nil, append([]byte(nil), b...))
		if err != nil {
			t.Fatalf("line %d %q: %v", i, b, err)
		}
		want := strings.Split(string(b), ",")
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("line %q: fields %q, want %q", b, got, want)
		}
		// The same fields with one of them quoted take the quoted path.
		q := strings.Join(append([]string{`"x"`}, want...), ",")
		got, err = splitCSV(nil, []byte(q))
		if err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", append([]string{"x"}, want...)) {
			t.Fatalf("line %q: fields %q (%v), want %q", q, got, err, append([]string{"x"}, want...))
		}
	}
}
