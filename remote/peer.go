package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

var errUnknownMetric = errors.New("unknown metric")

// Peer is another flowd (an ingest node) whose store a query node reads
// for the minutes not yet in VictoriaMetrics: the nodes' live deltas.
type Peer struct {
	URL    string
	token  string // an admin token of the peer: its figures exact
	client *http.Client
}

// NewPeer returns the peer at base, called with token (empty when the
// peer has no tokens).
func NewPeer(base, token string, client *http.Client) (*Peer, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-peers: %q is not the http(s)://host:port of a flowd", base)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Peer{URL: strings.TrimSuffix(base, "/"), token: token, client: client}, nil
}

func (p *Peer) do(req *http.Request, v any) error {
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "unknown metric") {
		return errUnknownMetric // the peer has no data of it
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusServiceUnavailable {
		return fmt.Errorf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// post sends form to the peer's path as a form POST and decodes its JSON
// answer into v, as do.
func (p *Peer) post(path string, form url.Values, v any) error {
	req, err := http.NewRequest("POST", p.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return p.do(req, v)
}

// Shipped returns the first minute whose buckets the peer may not have
// shipped to VictoriaMetrics yet (its /readyz); ok is false for a peer
// that ships nothing.
func (p *Peer) Shipped() (minute int64, ok bool, err error) {
	req, err := http.NewRequest("GET", p.URL+"/readyz", nil)
	if err != nil {
		return 0, false, err
	}
	var ready struct {
		Remote *Status `json:"remote"`
	}
	if err := p.do(req, &ready); err != nil {
		return 0, false, err
	}
	if ready.Remote == nil {
		return 0, false, nil
	}
	return ready.Remote.Shipped.Unix() / 60, true, nil
}

// SumSteps adds to sums[i] the peer's own sum of metric over cells (of
// resolution res) over the i-th step of step minutes from minute from,
// up to to: its store only (local=1), exact with an admin token.
func (p *Peer) SumSteps(metric string, cells []h3.Cell, res int, from, to, step int64, sums []int64) error {
	ids := make([]string, len(cells))
	for i, c := range cells {
		ids[i] = CellHex(uint64(c))
	}
	form := url.Values{
		"metric": {metric}, "cells": {strings.Join(ids, ",")}, "res": {strconv.Itoa(res)},
		"from": {strconv.FormatInt(from*60, 10)}, "to": {strconv.FormatInt(to*60, 10)},
		"step": {(time.Duration(step) * time.Minute).String()}, "local": {"1"},
	}
	var ans struct {
		Error  string     `json:"error"`
		Points [][2]int64 `json:"points"`
	}
	if err := p.post("/api/v1/series", form, &ans); err == errUnknownMetric {
		return nil
	} else if err != nil {
		return err
	}
	if ans.Error != "" {
		return fmt.Errorf("%s: %s", p.URL, ans.Error)
	}
	for _, pt := range ans.Points {
		if i := (pt[0]/60 - from) / step; i >= 0 && i < int64(len(sums)) {
			sums[i] += pt[1]
		}
	}
	return nil
}

// SumByCell calls fn with the peer's own sum of metric over [from, to)
// minutes in each cell (of resolution res) of cells that has any: its
// density map from its store only (local=1), exact with an admin token.
func (p *Peer) SumByCell(metric string, cells []h3.Cell, res int, from, to int64, fn func(cell h3.Cell, v int64)) error {
	ids := make([]string, len(cells))
	for i, c := range cells {
		ids[i] = CellHex(uint64(c))
	}
	form := url.Values{
		"metric": {metric}, "cells": {strings.Join(ids, ",")}, "res": {strconv.Itoa(res)},
		"from": {strconv.FormatInt(from*60, 10)}, "to": {strconv.FormatInt(to*60, 10)}, "local": {"1"},
	}
	var ans struct {
		Error string `json:"error"`
		Cells []struct {
			Cell  string `json:"cell"`
			Value int64  `json:"value"`
		} `json:"cells"`
	}
	if err := p.post("/api/v1/density", form, &ans); err == errUnknownMetric {
		return nil
	} else if err != nil {
		return err
	}
	if ans.Error != "" {
		return fmt.Errorf("%s: %s", p.URL, ans.Error)
	}
	for _, c := range ans.Cells {
		id, err := strconv.ParseUint(c.Cell, 16, 64)
		if err != nil {
			return fmt.Errorf("%s answered a cell %q", p.URL, c.Cell)
		}
		fn(h3.Cell(id), c.Value)
	}
	return nil
}

// RecentBucket is one minute bucket of a peer's store, as a query node's
// live map takes it.
type RecentBucket struct {
	Metric string
	Cell   uint64
	Minute int64
	Value  int64
}

// Recent returns the peer's own minute buckets of every summed metric
// from minute from on (GET /api/v1/live/recent, an admin's route): what
// its live map holds.
func (p *Peer) Recent(from int64) ([]RecentBucket, error) {
	req, err := http.NewRequest("GET", p.URL+"/api/v1/live/recent?from="+strconv.FormatInt(from*60, 10), nil)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Error   string               `json:"error"`
		Metrics []string             `json:"metrics"`
		Rows    [][4]json.RawMessage `json:"rows"`
	}
	if err := p.do(req, &ans); err != nil {
		return nil, err
	}
	if ans.Error != "" {
		return nil, fmt.Errorf("%s: %s", p.URL, ans.Error)
	}
	out := make([]RecentBucket, 0, len(ans.Rows))
	for _, r := range ans.Rows {
		var (
			idx  int
			cell string
			b    RecentBucket
		)
		if json.Unmarshal(r[0], &idx) != nil || idx < 0 || idx >= len(ans.Metrics) || json.Unmarshal(r[1], &cell) != nil ||
			json.Unmarshal(r[2], &b.Minute) != nil || json.Unmarshal(r[3], &b.Value) != nil {
			return nil, fmt.Errorf("%s answered a recent bucket %s", p.URL, r)
		}
		if b.Cell, err = strconv.ParseUint(cell, 16, 64); err != nil {
			return nil, fmt.Errorf("%s answered a cell %q", p.URL, cell)
		}
		b.Metric = ans.Metrics[idx]
		out = append(out, b)
	}
	return out, nil
}

// Bucket is one bucket of a peer's store (POST /api/v1/buckets).
type Bucket struct {
	Cell, Sub     uint64
	Minute, Value int64
}

// Buckets calls fn with each of the peer's own buckets of metric in tier
// t whose cell lies in ranges and whose minute is in [from, to): its
// store only, exact with an admin token.
func (p *Peer) Buckets(t storage.Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(Bucket)) error {
	var rs strings.Builder
	for i, r := range ranges {
		if i > 0 {
			rs.WriteByte(',')
		}
		rs.WriteString(CellHex(r.Lo) + "-" + CellHex(r.Hi))
	}
	form := url.Values{
		"metric": {metric}, "tier": {t.String()}, "ranges": {rs.String()},
		"from": {strconv.FormatInt(from*60, 10)}, "to": {strconv.FormatInt(to*60, 10)},
	}
	var ans struct {
		Error string               `json:"error"`
		Rows  [][4]json.RawMessage `json:"rows"`
	}
	if err := p.post("/api/v1/buckets", form, &ans); err != nil {
		return err
	}
	if ans.Error != "" {
		return fmt.Errorf("%s: %s", p.URL, ans.Error)
	}
	for _, r := range ans.Rows {
		var (
			cell, sub string
			b         Bucket
		)
		if json.Unmarshal(r[0], &cell) != nil || json.Unmarshal(r[1], &sub) != nil || json.Unmarshal(r[2], &b.Minute) != nil || json.Unmarshal(r[3], &b.Value) != nil {
			return fmt.Errorf("%s answered a bucket %s", p.URL, r)
		}
		var err1, err2 error
		b.Cell, err1 = strconv.ParseUint(cell, 16, 64)
		b.Sub, err2 = strconv.ParseUint(sub, 16, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%s answered a bucket %s", p.URL, r)
		}
		fn(b)
	}
	return nil
}
