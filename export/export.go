// Package export writes open data: the privacy-safe aggregates of one UTC
// day — per H3 cell (resolution 7 or 8) and hour, per station and hour,
// and the station OD matrix of the day — as CSV and GeoJSON files in a
// directory of that day, with a manifest stating how they were released.
//
// It reads them from a flowd's HTTP API with a read token, as any caller
// of that token would (GET /api/v1/density, /series, /od), so every
// figure has passed the privacy layer and the token's budget, and the
// files hold nothing the token's answers did not. Each figure is one cell
// or station over an aligned hour or day, the layer's published pyramid,
// whose noise is the same whoever asks: re-running an export gives
// byte-identical files, and costs the budget nothing but the OD matrix's
// two unmatched totals. docs/privacy.md says why it goes over HTTP.
package export

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/vocab"
)

// Config says where an export reads from and what it writes.
type Config struct {
	// URL is the flowd to read from and Token a token of the read role.
	URL, Token string
	// Client makes the requests (default: one with a 5-minute timeout).
	Client *http.Client
	// Res is the resolution of the cell tables: 7 or 8 (default 8).
	Res int
	// Metrics are those of the cell tables; nil takes every metric the
	// server lists but sketches, speeds and trip metrics (which the OD
	// table carries).
	Metrics []string
	// BBox is the area of the cell tables, "west,south,east,north" in
	// degrees; "" takes the stations', sensors' and sites' extent.
	BBox string
	// Dir is the directory each day's directory is written in.
	Dir string
	// Progress, when set, hears of each answer received.
	Progress func(done, total int, what string)
}

// StationMetrics are the metrics of the station table.
var StationMetrics = []string{vocab.SwipesIn, vocab.SwipesOut}

// LastSettledDay returns the last UTC day whose figures, trips included,
// the server releases in full now.
func LastSettledDay(ctx context.Context, c Config) (time.Time, error) {
	cl := c.client()
	var t privacy.Terms
	if err := cl.get(ctx, "/api/v1/privacy", &t); err != nil {
		return time.Time{}, err
	}
	return t.LinkedUntil.Truncate(24*time.Hour).AddDate(0, 0, -1), nil
}

// Day exports the UTC day that starts at day into Dir/YYYY-MM-DD and
// returns its manifest. Every answer is read before any file is written,
// so a refusal (an exhausted budget, a day not yet settled) writes
// nothing; each file is written under a temporary name and renamed, the
// manifest last.
func Day(ctx context.Context, c Config, day time.Time) (*Manifest, error) {
	if c.Res == 0 {
		c.Res = 8
	}
	if c.Res != 7 && c.Res != 8 {
		return nil, fmt.Errorf("export: res %d: want 7 or 8", c.Res)
	}
	day = day.UTC()
	if !day.Equal(day.Truncate(24 * time.Hour)) {
		return nil, fmt.Errorf("export: day %s: want the start of a UTC day", day.Format(time.RFC3339))
	}
	cl := c.client()
	var terms privacy.Terms
	if err := cl.get(ctx, "/api/v1/privacy", &terms); err != nil {
		return nil, err
	}
	if terms.Exact {
		return nil, errors.New("export: the token sees exact figures (an admin's, or any caller of a server without -tokens): open data must be read with a read token, whose answers pass the privacy layer")
	}
	end := day.Add(24 * time.Hour)
	if end.After(terms.LinkedUntil) {
		delay, _ := time.ParseDuration(terms.ReleaseDelay)
		window, _ := time.ParseDuration(terms.TripWindow)
		return nil, fmt.Errorf("export: day %s has not settled: the server releases trips until %s, %s after they begin; export the day after %s",
			day.Format(time.DateOnly), terms.LinkedUntil.Format(time.RFC3339), delay+window, end.Add(delay+window).Format(time.RFC3339))
	}
	f := &fetch{c: c, cl: cl, day: day}
	if err := f.all(ctx); err != nil {
		return nil, err
	}
	m := newManifest(c, day, terms, f)
	dir := filepath.Join(c.Dir, day.Format(time.DateOnly))
	if err := writeDay(dir, f, m); err != nil {
		return nil, err
	}
	return m, nil
}

func (c Config) client() *client {
	h := c.Client
	if h == nil {
		h = &http.Client{Timeout: 5 * time.Minute}
	}
	return &client{url: strings.TrimSuffix(c.URL, "/"), token: c.Token, http: h}
}

// defaultMetrics picks the cell tables' metrics from those the server
// lists: counts of people and vehicles, not sketches (which only
// /distinct reads), speed sums (meaningless alone) or trip metrics (the
// OD table's).
func defaultMetrics(listed []string) []string {
	var out []string
	for _, m := range listed {
		switch {
		case vocab.KindOf(m) == vocab.Sketch, strings.HasPrefix(m, vocab.SpeedPrefix):
		case m == vocab.Trips, m == vocab.TripSeconds, m == vocab.UnmatchedIn, m == vocab.UnmatchedOut:
		default:
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// query returns path with its parameters in a fixed order.
func query(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return path + "?" + v.Encode()
}
