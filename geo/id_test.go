package geo

import (
	"errors"
	"strings"
	"testing"
)

// TestIDAlphabet lists ids a registry takes and refuses: letters of any
// script, digits, marks, spaces inside and - _ . : ( ) ' are ids; path
// separators, leading dots or blanks, controls, other punctuation, and
// more than 128 bytes are not.
func TestIDAlphabet(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"1", true}, {"cam-0001", true}, {"west-lake", true}, {"de:11000:900100001", true},
		{"西湖", true}, {"Wulin Square", true}, {"St. Paul's (North)", true}, {"a_b.c", true},
		{strings.Repeat("x", 128), true},
		{"", false}, {"../../etc", false}, {"a/b", false}, {`a\b`, false}, {".hidden", false},
		{" lead", false}, {"trail ", false}, {"-flag", false}, {"a\x00b", false}, {"a\nb", false},
		{"<script>", false}, {"a,b", false}, {"a;b", false}, {"a\"b", false}, {"a%2fb", false},
		{strings.Repeat("x", 129), false}, {"\xff", false},
	} {
		err := CheckID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("CheckID(%q) = %v; want ok %v", tc.id, err, tc.ok)
		}
	}
}

// TestRegistryRefusesBadIDsAndEmptySets puts a set with a hostile id and
// files with no entries: each is refused naming what was wrong, and the
// registry keeps what it had; Clear empties a set on purpose.
func TestRegistryRefusesBadIDsAndEmptySets(t *testing.T) {
	r := New(9)
	if err := r.PutStations([]Station{{ID: "a", Name: "A", Lat: 30.25, Lng: 120.17}}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutStations([]Station{{ID: "../../etc", Name: "x", Lat: 30.25, Lng: 120.17}}); err == nil || !strings.Contains(err.Error(), "../../etc") {
		t.Errorf("a station id ../../etc: %v; want an error naming it", err)
	}
	sites := testSites(t)
	sites[0].ID = "../../etc"
	if err := r.PutSites(sites); err == nil || !strings.Contains(err.Error(), "../../etc") {
		t.Errorf("a site id ../../etc: %v; want an error naming it", err)
	}
	for _, tc := range []struct{ set, body string }{
		{SetStations, ""}, {SetStations, "id,name,lat,lng\n"}, {SetStations, "[]"},
		{SetSensors, ""}, {SetSensors, "id,name,lat,lng\n"},
		{SetSites, `{"type":"FeatureCollection","features":[]}`},
	} {
		if _, err := r.PutFile(tc.set, tc.set+" body", strings.NewReader(tc.body)); !errors.Is(err, ErrNoEntries) {
			t.Errorf("PutFile(%s, %q) = %v; want ErrNoEntries", tc.set, tc.body, err)
		}
	}
	if len(r.Stations()) != 1 {
		t.Fatalf("refused puts changed the stations: %+v", r.Stations())
	}
	r.Clear(SetStations)
	if len(r.Stations()) != 0 {
		t.Fatalf("Clear left %d stations", len(r.Stations()))
	}
}
