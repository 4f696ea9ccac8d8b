package ingest

import (
	"strings"
	"testing"
)

func TestParseRiderGroups(t *testing.T) {
	g, err := ParseRiderGroups(strings.NewReader("1=adult, 2=student\n# concessions\n3=senior\n4=senior\n"))
	if err != nil {
		t.Fatal(err)
	}
	if names := g.Names(); strings.Join(names, " ") != "adult senior student" {
		t.Errorf("groups %v", names)
	}
	if g.of("4") != g.of("3") || g.of("4").trips != "trips#senior" || g.of("9") != nil || g.of("") != nil {
		t.Errorf("categories map wrongly: 4 → %+v, 9 → %+v", g.of("4"), g.of("9"))
	}
	for _, tc := range []struct{ in, want string }{
		{"1", "want value=group"},
		{"1=Adult", `group "Adult"`},
		{"1=adult,1=student", `value "1" given twice`},
		{"1=a,2=b,3=c,4=d,5=e,6=f,7=g,8=h,9=i", "at most 8 groups"},
		{"# nothing", "no value=group pair"},
	} {
		if _, err := ParseRiderGroups(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want an error saying %q", tc.in, err, tc.want)
		}
	}
}
