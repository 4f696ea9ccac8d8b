package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/flowd/flowd/geo"
	"github.com/valyala/fasthttp"
)

// corridorOf reads a path, width and segment choice into a cached corridor
// at the query's res (the base resolution by default), and its locator for
// base cells. pathParam names the path in errors.
func (s *Server) corridorOf(q *query, pathParam string, rawPath json.RawMessage, width float64, rawSegment json.RawMessage) (*geo.Corridor, *geo.CorridorLocator, error) {
	res, err := q.intParam("res", s.Res, 0, s.Res)
	if err != nil {
		return nil, nil, err
	}
	if len(rawPath) == 0 || string(rawPath) == "null" {
		return nil, nil, &paramError{Param: pathParam, Reason: "required: [[lat,lng],...] or a GeoJSON LineString"}
	}
	path, err := geo.ParsePath(rawPath)
	if err != nil {
		return nil, nil, &paramError{Param: pathParam, Value: clip(rawPath), Reason: err.Error()}
	}
	segLen := 0.0
	if v := scalar(rawSegment); v != "" && v != "cell" {
		if segLen, err = strconv.ParseFloat(v, 64); err != nil || segLen <= 0 {
			return nil, nil, &paramError{Param: "segment", Value: v, Reason: `want "cell" or a length in metres`}
		}
	}
	c, err := s.corridors.Get(path, width, res, segLen)
	if err != nil {
		return nil, nil, corridorParamError(pathParam, err)
	}
	loc, err := c.Locator(s.Res)
	if err != nil {
		return nil, nil, corridorParamError("", err)
	}
	return c, loc, nil
}

// corridorParamError turns a corridor input error into a 400 naming the
// parameter; a path error is reported under pathParam.
func corridorParamError(pathParam string, err error) error {
	var ce *geo.CorridorError
	if !errors.As(err, &ce) {
		return err
	}
	name := ce.Input
	if name == "path" && pathParam != "" {
		name = pathParam
	}
	return &paramError{Param: name, Value: ce.Value, Reason: ce.Reason}
}

// decodeBody decodes a JSON request body into v, refusing unknown fields
// so that a misspelt parameter is an error rather than a silent default.
func decodeBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &paramError{Param: "body", Value: clip(body), Reason: "want a JSON object: " + err.Error()}
	}
	return nil
}

// fromBody returns a query holding a JSON body's metric and scalar
// fields, so that they are parsed and reported exactly as the same
// parameters of a GET.
func (q *query) fromBody(metric string, fields map[string]json.RawMessage) *query {
	bq := &query{args: &fasthttp.Args{}, now: q.now, role: q.role}
	bq.args.Set("metric", metric)
	for name, raw := range fields {
		if v := scalar(raw); v != "" {
			bq.args.Set(name, v)
		}
	}
	return bq
}

// scalar returns a JSON string's text or a number's literal, "" for null
// or absent.
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// clip cuts a value echoed in an error to a readable length.
func clip(b []byte) string {
	const n = 80
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
