package remote

import "testing"

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
