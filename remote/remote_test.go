package remote

import (
	"strings"
	"testing"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

func TestImportURL(t *testing.T) {
	for _, c := range []struct{ base, want string }{
		{"http://127.0.0.1:8428", "http://127.0.0.1:8428/api/v1/import"},
		{"http://127.0.0.1:8428/", "http://127.0.0.1:8428/api/v1/import"},
		{"https://vm.example/api/v1/import", "https://vm.example/api/v1/import"},
		{"http://vminsert:8480/insert/0", "http://vminsert:8480/insert/0/prometheus/api/v1/import"},
		{"http://vminsert:8480/insert/7:3/prometheus/", "http://vminsert:8480/insert/7:3/prometheus/api/v1/import"},
		{"http://vminsert:8480/insert/0/prometheus/api/v1/import", "http://vminsert:8480/insert/0/prometheus/api/v1/import"},
		{"vm:8428", ""},
		{"ftp://vm:8428", ""},
		{"http://vminsert:8480/insert/", ""},
		{"http://vminsert:8480/insert/0/other", ""},
	} {
		got, err := ImportURL(c.base)
		if c.want == "" {
			if err == nil {
				t.Errorf("ImportURL(%q) = %q, want an error", c.base, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ImportURL(%q) = %q, %v; want %q", c.base, got, err, c.want)
		}
	}
}

// TestFamiliesShipUnderTheirMetricsName: a per-entity or rider group's
// family is shipped under its metric's name with an entity or group
// label, which the selectors match, and the metric itself matches
// neither.
func TestFamiliesShipUnderTheirMetricsName(t *testing.T) {
	for _, c := range []struct{ name, base, entity, group, matchers string }{
		{"count_car", "count_car", "", "", `entity="",group=""`},
		{"count_car@sensor", "count_car", "sensor", "", `entity="sensor",group=""`},
		{"swipes_in@station", "swipes_in", "station", "", `entity="station",group=""`},
		{"footfall_in@site", "footfall_in", "site", "", `entity="site",group=""`},
		{"swipes_in#student", "swipes_in", "", "student", `entity="",group="student"`},
		{"trips#senior citizen", "trips", "", "senior citizen", `entity="",group="senior citizen"`},
		{"swipes_in@station#student", "swipes_in", "station", "student", `entity="station",group="student"`},
	} {
		base, entity, group := Family(c.name)
		if base != c.base || entity != c.entity || group != c.group {
			t.Errorf("Family(%q) = %q, %q, %q; want %q, %q, %q", c.name, base, entity, group, c.base, c.entity, c.group)
		}
		if m := familyMatchers(c.name); m != c.matchers {
			t.Errorf("familyMatchers(%q) = %s, want %s", c.name, m, c.matchers)
		}
		l := labeler{node: "a", parents: []int{7}}
		cell := uint64(0x89309a42623ffff)
		got := string(l.appendSeries(nil, sampleKey{tier: storage.TierHour, metric: c.name, cell: cell, sub: 0x89309a42627ffff, minute: 1}))
		want := `{"__name__":"` + c.base + `:1h"`
		if c.entity != "" {
			want += `,"entity":"` + c.entity + `"`
		}
		if c.group != "" {
			want += `,"group":"` + c.group + `"`
		}
		if !strings.HasPrefix(got, want+`,"cell":"89309a42623ffff","r7":"87309a426ffffff"`) || strings.ContainsAny(got[:len(want)], "@#") {
			t.Errorf("the series of %s: %s, want it to begin %s", c.name, got, want)
		}
		if c.base == "trips" && !strings.Contains(got, `"dest":"89309a42627ffff"`) {
			t.Errorf("the series of %s has no dest: %s", c.name, got)
		}
	}
}

// TestRangeMatcherPicksTheFinestLabelHoldingEachRange: an area's cell
// ranges select series by the finest labelled resolution at which each
// range is one cell (the cell label holding a bucket's own key), or by
// none.
func TestRangeMatcherPicksTheFinestLabelHoldingEachRange(t *testing.T) {
	r, err := NewReader("http://127.0.0.1:8428", []int{7, 8}, 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := h3.Cell(0x89309a42623ffff)
	one := vocab.CellRange{Lo: uint64(base), Hi: uint64(base)}
	r8 := base.Parent(8)
	kids := r8.Children(9)
	under8 := vocab.CellRange{Lo: uint64(kids[0]), Hi: uint64(kids[len(kids)-1])}
	r7 := base.Parent(7)
	kids7 := r7.Children(9)
	under7 := vocab.CellRange{Lo: uint64(kids7[0]), Hi: uint64(kids7[len(kids7)-1])}
	for _, c := range []struct {
		name   string
		ranges []vocab.CellRange
		want   string
	}{
		{"a base cell", []vocab.CellRange{one}, `,cell=~"89309a42623ffff"`},
		{"a res-8 cell's children", []vocab.CellRange{under8}, `,r8=~"` + CellHex(uint64(r8)) + `"`},
		{"a res-7 cell's children", []vocab.CellRange{under7}, `,r7=~"` + CellHex(uint64(r7)) + `"`},
		{"everywhere", vocab.Everywhere, ""},
	} {
		if got := r.rangeMatcher(c.ranges); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
