package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A caller's mistake is a 400 that names it and what was meant: a
// misspelt metric or parameter, a span that ends before it starts, a body
// with no event; registry files whose rows flowd merges say so.
func TestMistakesAreNamedWithTheClosestKnownName(t *testing.T) {
	c := startFlowd(t, t.TempDir(), registryFlags(t)...)
	now := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	c.post(t, "counts", "text/csv", "time,sensor,class,count\n"+now+",D1,car,4\n", false)
	from, to := time.Now().Add(-time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix()
	inverted := fmt.Sprintf("from=%d&to=%d", from, to)
	for _, tc := range []struct {
		name, method, path, ctype, body string
		want                            []string
	}{
		{"unknown metric", "GET", "/api/v1/series?metric=count_cars&bbox=" + testBBox, "", "",
			[]string{`parameter "metric"`, `"count_cars"`, "unknown metric (did you mean count_car?)"}},
		{"unknown metric of a corridor", "POST", "/api/v1/corridor", "application/json", `{"path":[[30.25,120.10],[30.25,120.16]],"metric":"count_cra"}`,
			[]string{`parameter "metric"`, "did you mean count_car?"}},
		{"unknown parameter", "GET", "/api/v1/series?metric=count_car&bbox=" + testBBox + "&stepp=5m", "", "",
			[]string{`parameter "stepp"`, "unknown parameter (did you mean step?)", "GET /api/v1/series takes only metric"}},
		{"unknown parameter in a form", "POST", "/api/v1/density", "application/x-www-form-urlencoded", "metric=count_car&bbox=" + testBBox + "&windw=5m",
			[]string{`parameter "windw"`, "did you mean window?"}},
		{"a parameter of a route that takes none", "GET", "/api/v1/sites/lake/status?site=lake", "", "",
			[]string{`parameter "site"`, "takes no parameters"}},
		{"inverted series", "GET", "/api/v1/series?metric=count_car&bbox=" + testBBox + "&" + inverted, "", "", []string{`parameter "from"`, "must be before to"}},
		{"inverted series in a form", "POST", "/api/v1/series", "application/x-www-form-urlencoded", "metric=count_car&bbox=" + testBBox + "&" + inverted, []string{"must be before to"}},
		{"inverted density", "GET", "/api/v1/density?metric=count_car&bbox=" + testBBox + "&" + inverted, "", "", []string{`parameter "from"`, "must be before to"}},
		{"inverted top", "GET", "/api/v1/top?metric=count_car&" + inverted, "", "", []string{"must be before to"}},
		{"inverted od", "GET", "/api/v1/od?" + inverted, "", "", []string{"must be before to"}},
		{"inverted distinct", "GET", "/api/v1/distinct?bbox=" + testBBox + "&" + inverted, "", "", []string{"must be before to"}},
		{"inverted corridor", "POST", "/api/v1/corridor", "application/json",
			fmt.Sprintf(`{"path":[[30.25,120.10],[30.25,120.16]],"metric":"count_car","from":%d,"to":%d}`, from, to), []string{"must be before to"}},
		{"empty NDJSON swipes", "POST", "/api/v1/ingest/swipes", "application/x-ndjson", "", []string{"the body holds no event"}},
		{"blank NDJSON counts", "POST", "/api/v1/ingest/counts", "application/x-ndjson", "\n\n", []string{"the body holds no event"}},
		{"a CSV header alone", "POST", "/api/v1/ingest/footfall", "text/csv", "time,site,in,out\n", []string{"the body holds no event", "header row"}},
	} {
		r := do(t, tc.method, c.url+tc.path, tc.ctype, []byte(tc.body), false)
		if r.status != 400 {
			t.Errorf("%s: %s; want 400", tc.name, r)
			continue
		}
		var a struct{ Error string }
		r.json(t, &a)
		for _, w := range tc.want {
			if !strings.Contains(a.Error, w) {
				t.Errorf("%s: %s; want it to say %s", tc.name, a.Error, w)
			}
		}
	}

	// A station file without ids (names are ids) whose rows repeat a name
	// within 500 m: one transfer station, and the answer says so.
	r := do(t, "PUT", c.url+"/api/v1/stations", "text/csv", []byte("line,name,lon,lat\n1,Jinjiang,120.1700,30.2500\n4,Jinjiang,120.1703,30.2502\n1,Wulin,120.1600,30.2700\n"), false)
	var put struct {
		Stations int      `json:"stations"`
		Warnings []string `json:"warnings"`
	}
	r.json(t, &put)
	if r.status != 200 || put.Stations != 2 || len(put.Warnings) != 1 || !strings.Contains(put.Warnings[0], `line 3: station "Jinjiang" has the name of line 2's, 36 m away: merged into one transfer station (lines 1,4)`) {
		t.Errorf("PUT stations with a repeated name: %s; want 2 stations and a warning naming the merge", r)
	}
}

// `flowd -h` lists the subcommands, and `flowd serve -h` names each flag's
// argument and describes the token file apart.
func TestHelpListsCommandsAndReadsPlainly(t *testing.T) {
	out, err := exec.Command(flowdBin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("flowd -h: %v\n%s", err, out)
	}
	for _, w := range []string{"flowd [serve] [flags]", "flowd import [flags] FILE...", "flowd feed", "flowd token", `"flowd COMMAND -h"`} {
		if !strings.Contains(string(out), w) {
			t.Errorf("flowd -h does not say %q:\n%s", w, out)
		}
	}
	out, _ = exec.Command(flowdBin, "serve", "-h").CombinedOutput()
	for _, w := range []string{"-tokens FILE\n", "-data DIR\n", "-listen ADDR\n", "-stations FILE\n", `The -tokens file holds one token a line, "SHA256 ROLE [NAME]"`} {
		if !strings.Contains(string(out), w) {
			t.Errorf("flowd serve -h does not say %q:\n%s", w, out)
		}
	}
	if strings.Contains(string(out), "-tokens <") {
		t.Errorf("flowd serve -h names -tokens' argument after the line format:\n%s", out)
	}
}
