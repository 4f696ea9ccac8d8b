package answer

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"step", "from", "to", "metric", "count_car", "count_bus"}
	for _, tc := range []struct{ name, want string }{
		{"stepp", "step"},
		{"form", "from"},
		{"Metric", "metric"},
		{"count_cars", "count_car"},
		{"count_bsu", "count_bus"},
		{"t", "to"},
	} {
		if got := Closest(tc.name, known); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := Closest("x", nil); got != "" {
		t.Errorf("Closest of nothing = %q, want \"\"", got)
	}
	if got := DidYouMean("stepp", known); got != " (did you mean step?)" {
		t.Errorf("DidYouMean = %q", got)
	}
}
