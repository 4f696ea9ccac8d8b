package geo

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	cols := []column{
		{aliases: []string{"id"}, required: true},
		{aliases: []string{"lat", "latitude"}, required: true},
		{aliases: []string{"lng", "lon"}, required: true},
		{aliases: []string{"note"}},
	}
	tests := []struct {
		name    string
		in      string
		ids     []string
		notes   []string
		wantErr string
	}{
		{"BOM, case and spaces in header", "\uFEFF ID , Latitude,LON\na,1,2\n", []string{"a"}, []string{""}, ""},
		{"quoted newline keeps line numbers", "id,lat,lng,note\na,1,2,\"two\nlines\"\nb,1,x,\n", nil, nil, `line 4: field lng "x": not a number`},
		{"short row leaves fields empty", "id,lat,lng,note\na,1,2\n", []string{"a"}, []string{""}, ""},
		{"short row missing required", "id,lat,lng\na,1\n", nil, nil, "line 2: field lng is empty"},
		{"first of duplicate headers wins", "id,lat,lng,note,note\na,1,2,first,second\n", []string{"a"}, []string{"first"}, ""},
		{"blank lines skipped", "id,lat,lng\n\na,1,2\n\n", []string{"a"}, []string{""}, ""},
		{"missing column", "id,lat\n", nil, nil, `line 1: header "id,lat" has no column lng or lon`},
		{"broken quotes", "id,lat,lng\n\"a,1,2\n", nil, nil, "extraneous or missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids, notes []string
			err := func() error {
				tb, err := newTable(strings.NewReader(tt.in), cols)
				if err != nil {
					return err
				}
				for {
					ok, err := tb.next()
					if err != nil || !ok {
						return err
					}
					if _, _, err := tb.latLng(1, 2); err != nil {
						return err
					}
					ids, notes = append(ids, tb.str(0)), append(notes, tb.str(3))
				}
			}()
			if !succeeds(t, err, tt.wantErr) {
				return
			}
			if strings.Join(ids, "|") != strings.Join(tt.ids, "|") || strings.Join(notes, "|") != strings.Join(tt.notes, "|") {
				t.Fatalf("ids %q notes %q, want %q %q", ids, notes, tt.ids, tt.notes)
			}
		})
	}
}
