package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuditAppends(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	for i := range 2 {
		a, err := OpenAudit(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Record("ops", "reload", map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
	data, _ := os.ReadFile(p)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"n":0`) || !strings.Contains(lines[1], `"who":"ops"`) {
		t.Fatalf("audit log after two opens:\n%s", data)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %04o, want 0600", fi.Mode().Perm())
	}
}
