package api

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
