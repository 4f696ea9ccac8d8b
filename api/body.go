package api

import (
	"bytes"
	"encoding/json"

	"github.com/valyala/fasthttp"
)

// decodeBody decodes a JSON request body into v, refusing unknown fields
// so that a misspelt parameter is an error rather than a silent default.
func decodeBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &paramError{Param: "body", Value: string(body), Reason: "want a JSON object: " + err.Error()}
	}
	return nil
}

// bodyParams are the parameters every JSON query body carries.
type bodyParams struct {
	Metric string          `json:"metric"`
	Step   json.RawMessage `json:"step"`
	Res    json.RawMessage `json:"res"`
}

// fromBody returns a query holding a JSON body's parameters and other
// scalar fields, so that they are parsed and reported exactly as the same
// parameters of a GET.
func (q *query) fromBody(p bodyParams, fields map[string]json.RawMessage) *query {
	bq := &query{args: &fasthttp.Args{}, now: q.now, rel: q.rel, store: q.store, history: q.history}
	bq.args.Set("metric", p.Metric)
	fields["step"], fields["res"] = p.Step, p.Res
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
