package ingest

import (
	"encoding/json"
	"testing"
)

func TestLineErrorError(t *testing.T) {
	cases := []struct {
		e    LineError
		want string
	}{
		{LineError{Line: 3, Field: "count", Value: "-2", Reason: "must not be negative"}, `line 3: field "count": value "-2": must not be negative`},
		{LineError{Line: 7, Field: "card", Reason: "required"}, `line 7: field "card": required`},
		{LineError{Line: 1, Reason: "malformed JSON"}, `line 1: malformed JSON`},
		{LineError{Line: 2, Field: "station", Value: "a\"b", Reason: "x"}, `line 2: field "station": value "a\"b": x`},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %s; want %s", got, c.want)
		}
	}
}

func TestLineErrorJSON(t *testing.T) {
	b, err := json.Marshal(LineError{Line: 3, Field: "count", Value: "-2", Reason: "must not be negative"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"line":3,"field":"count","value":"-2","reason":"must not be negative"}`; string(b) != want {
		t.Errorf("got %s; want %s", b, want)
	}
	b, _ = json.Marshal(LineError{Line: 1, Reason: "malformed JSON"})
	if want := `{"line":1,"reason":"malformed JSON"}`; string(b) != want {
		t.Errorf("got %s; want %s", b, want)
	}
}
