package api

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func hashHex(secret string) string {
	h := HashToken(secret)
	return hex.EncodeToString(h[:])
}

func TestParseTokensLinesAndJSON(t *testing.T) {
	lines := "# flowd tokens\n\n" + hashHex("a") + " ingest gate-feeder\n" + hashHex("b") + " READ planners team\n" + hashHex("c") + " admin\n"
	js := `[{"sha256":"` + hashHex("a") + `","role":"ingest","name":"gate-feeder"},{"sha256":"` + hashHex("b") + `","role":"read","name":"planners team"},{"sha256":"` + hashHex("c") + `","role":"admin"}]`
	for name, text := range map[string]string{"lines": lines, "json": js} {
		ts, err := ParseTokens(strings.NewReader(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ts.Len() != 3 {
			t.Fatalf("%s: %d tokens, want 3", name, ts.Len())
		}
		for secret, want := range map[string]Token{"a": {Role: RoleIngest, Name: "gate-feeder"}, "b": {Role: RoleRead, Name: "planners team"}, "c": {Role: RoleAdmin, Name: hashHex("c")[:8]}} {
			got, ok := ts.Lookup(secret)
			if !ok || got.Role != want.Role || got.Name != want.Name {
				t.Errorf("%s: token %q: got %+v, %v; want %+v", name, secret, got, ok, want)
			}
		}
		if _, ok := ts.Lookup("d"); ok {
			t.Errorf("%s: unknown token found", name)
		}
		if _, ok := ts.Lookup(""); ok {
			t.Errorf("%s: empty token found", name)
		}
	}
}

func TestParseTokensErrorsNameLineAndField(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"plain-token-not-a-hash read x\n", "line 1: field sha256"},
		{hashHex("a") + " read x\n" + hashHex("b") + " root y\n", "line 2: field role"},
		{hashHex("a") + "\n", "line 1: want"},
		{hashHex("a") + " read x\n" + hashHex("a") + " admin y\n", "line 2: token \"y\": the same hash appears twice"},
		{strings.Repeat("z", 64) + " read x\n", "line 1: field sha256: not hex"},
		{`[{"sha256":"00","role":"read"}]`, "entry 0: field sha256"},
	} {
		_, err := ParseTokens(strings.NewReader(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.text, err, tc.want)
		}
	}
}

func TestLoadTokensRefusesAWritableFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(hashHex("a")+" admin root\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o666)
	if _, err := LoadTokens(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-writable token file: error %v", err)
	}
	os.Chmod(p, 0o600)
	if ts, err := LoadTokens(p); err != nil || ts.Len() != 1 {
		t.Fatalf("0600 token file: %v", err)
	}
}

func TestRequiredRole(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         Role
	}{
		{"GET", "/healthz", RoleNone},
		{"GET", "/", RoleNone},
		{"GET", "/app.js", RoleNone},
		{"GET", "/vendor/maplibre-gl.js", RoleNone},
		{"GET", "/metrics", RoleAdmin},
		{"POST", "/api/v1/ingest/swipes", RoleIngest},
		{"GET", "/api/v1/ingest/swipes", RoleAdmin},
		{"GET", "/api/v1/series", RoleRead},
		{"HEAD", "/api/v1/density", RoleRead},
		{"POST", "/api/v1/corridor", RoleRead},
		{"POST", "/api/v1/path/density", RoleRead},
		{"GET", "/api/v1/live", RoleRead},
		{"GET", "/api/v1/sites/lake/status", RoleRead},
		{"PUT", "/api/v1/sites", RoleAdmin},
		{"DELETE", "/api/v1/sites", RoleAdmin},
		{"POST", "/api/v1/something-new", RoleAdmin},
	} {
		if got := RequiredRole(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	for _, tc := range []struct {
		have, need Role
		want       bool
	}{
		{RoleIngest, RoleIngest, true}, {RoleIngest, RoleRead, false}, {RoleIngest, RoleAdmin, false},
		{RoleRead, RoleIngest, false}, {RoleRead, RoleRead, true}, {RoleRead, RoleAdmin, false},
		{RoleAdmin, RoleIngest, true}, {RoleAdmin, RoleRead, true}, {RoleAdmin, RoleAdmin, true},
		{RoleNone, RoleNone, true}, {RoleNone, RoleRead, false},
	} {
		if got := allows(tc.have, tc.need); got != tc.want {
			t.Errorf("allows(%v, %v) = %v", tc.have, tc.need, got)
		}
	}
}

func TestRateBucket(t *testing.T) {
	g := NewGuard(Limits{Rate: 10, Burst: 5})
	h := HashToken("x")
	for i := range 5 {
		if _, ok := g.takeRate(h); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	wait, ok := g.takeRate(h)
	if ok || wait <= 0 || wait > 110*time.Millisecond {
		t.Fatalf("past the burst: ok %v, wait %v; want a refusal with a wait of about 100ms", ok, wait)
	}
	if _, ok := g.takeRate(HashToken("y")); !ok {
		t.Fatal("another token is limited by the first one's use")
	}
	time.Sleep(150 * time.Millisecond)
	if _, ok := g.takeRate(h); !ok {
		t.Fatal("no credit back after 150ms at 10/s")
	}
}

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
