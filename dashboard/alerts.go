package dashboard

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"
)

// maxAlertsKept bounds the alerts held in memory for GET /api/v1/alerts;
// the file keeps them all.
const maxAlertsKept = 10000

// The kinds of alert: a site's level by occupancy against its capacity
// (written without a kind, as before daily levels existed), by the day's
// entries against its daily capacity, and a predictive warning, the level
// its occupancy forecast will reach.
const (
	AlertOccupancy = ""
	AlertDaily     = "daily"
	AlertForecast  = "forecast"
)

// Alert is one change of a site's level. On a daily alert Capacity is the
// daily capacity and Ratio is Entries over it. On a forecast alert To is
// the level the forecast's upper interval reaches within the warning
// horizon (normal: the warning is cleared), Expected when it first does,
// and Occupancy and Ratio are the site's now.
type Alert struct {
	Time      time.Time  `json:"time"`
	Site      string     `json:"site"`
	Name      string     `json:"name"`
	Kind      string     `json:"kind,omitempty"`
	From      Level      `json:"from"`
	To        Level      `json:"to"`
	Occupancy int64      `json:"occupancy"`
	Entries   int64      `json:"entries,omitempty"`
	Capacity  int64      `json:"capacity"`
	Ratio     float64    `json:"ratio"`
	Reason    string     `json:"reason,omitempty"`
	Expected  *time.Time `json:"expected,omitempty"`
}

// kindName names the alert's kind for a log line.
func (a *Alert) kindName() string {
	if a.Kind == AlertOccupancy {
		return "occupancy"
	}
	return a.Kind
}

// AlertLog is the history of level changes: an append-only NDJSON file,
// one alert a line, and the newest alerts in memory.
type AlertLog struct {
	path string

	mu     sync.Mutex
	f      *os.File
	alerts []Alert
}

// OpenAlertLog reads the history in path, if any, and opens it to append.
// A torn last line, from a crash mid-write, is skipped.
func OpenAlertLog(path string) (*AlertLog, error) {
	l := &AlertLog{path: path}
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var a Alert
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				continue
			}
			l.keep(a)
		}
		err := sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if l.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *AlertLog) keep(a Alert) {
	if len(l.alerts) >= maxAlertsKept {
		l.alerts = append(l.alerts[:0], l.alerts[len(l.alerts)-maxAlertsKept/2:]...)
	}
	l.alerts = append(l.alerts, a)
}

// Append records a, durably: level changes are rare and must survive a crash.
func (l *AlertLog) Append(a Alert) error {
	data, err := json.Marshal(a)
	if err != nil {
		panic("BUG: marshal an alert: " + err.Error())
	}
	data = append(data, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keep(a)
	if _, err := l.f.Write(data); err != nil {
		return fmt.Errorf("%s: %w", l.path, err)
	}
	return l.f.Sync()
}

// List returns the alerts of site (all sites when empty) since a time,
// oldest first, at most limit of the newest.
func (l *AlertLog) List(site string, since time.Time, limit int) []Alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []Alert{}
	for i := len(l.alerts) - 1; i >= 0 && len(out) < limit; i-- {
		a := l.alerts[i]
		if a.Time.Before(since) {
			break
		}
		if site == "" || a.Site == site {
			out = append(out, a)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Last returns site's newest alert of a kind.
func (l *AlertLog) Last(site, kind string) (Alert, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.alerts) - 1; i >= 0; i-- {
		if l.alerts[i].Site == site && l.alerts[i].Kind == kind {
			return l.alerts[i], true
		}
	}
	return Alert{}, false
}

// Close closes the file.
func (l *AlertLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
