package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "card.key")
	p1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("created key has mode %04o; want 0600", perm)
	}
	text, _ := os.ReadFile(path)
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(text) {
		t.Errorf("key file holds %d bytes, not 64 hex digits and a newline", len(text))
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files; want only the key (no temporary left)", len(entries))
	}

	// Reloading keeps the key: the same card gets the same pseudonym.
	p2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Card("C0453c92") != p2.Card("C0453c92") {
		t.Error("pseudonym changed after reloading the key")
	}
	if p1.Card("C0453c92") == p1.Card("C0453c93") {
		t.Error("two cards share a pseudonym")
	}

	// The pseudonym is HMAC-SHA256 under the file's key, truncated.
	key, _ := hex.DecodeString(strings.TrimSpace(string(text)))
	m := hmac.New(sha256.New, key)
	m.Write([]byte("C0453c92"))
	if want := binary.BigEndian.Uint64(m.Sum(nil)); p1.Card("C0453c92") != want {
		t.Errorf("Card = %x; want %x", p1.Card("C0453c92"), want)
	}

	// Another key, other pseudonyms.
	p3, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	if p3.Card("C0453c92") == p1.Card("C0453c92") {
		t.Error("two keys give the same pseudonym")
	}
	if s := fmt.Sprintf("%+v %#v", p1, p1); strings.Contains(s, hex.EncodeToString(key[:4])) {
		t.Errorf("printing a Pseudonymizer shows its key: %s", s)
	}
}

func TestLoadOrCreateKeyConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "card.key")
	var wg sync.WaitGroup
	ids := make([]uint64, 8)
	for i := range ids {
		wg.Go(func() {
			p, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = p.Card("C1")
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("concurrent starts disagree on the key: %x", ids)
		}
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	const secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	cases := []struct {
		name string
		text string
		mode os.FileMode
		want string
	}{
		{"group readable", secret, 0o640, "mode 0640"},
		{"world readable", secret, 0o604, "chmod 600"},
		{"not hex", strings.Replace(secret, "00", "zz", 1), 0o600, "not hex-encoded"},
		{"odd length", secret[1:], 0o600, "not hex-encoded"},
		{"short", secret[:30], 0o600, "has 15 bytes; want at least 16"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "card.key")
			if err := os.WriteFile(path, []byte(c.text), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			_, err := LoadOrCreateKey(path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "zz") || strings.Contains(err.Error(), secret[:8]) {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
	t.Run("directory missing", func(t *testing.T) {
		if _, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "no", "card.key")); err == nil {
			t.Error("no error for a key in a missing directory")
		}
	})
}

// raceEnabled is set under the race detector (race_test.go).
var raceEnabled bool

func TestCardAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	p, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	card := strings.Repeat("C0453c92064c39bec91edd3dffc98e50b", 3)
	p.Card(card)
	if n := testing.AllocsPerRun(1000, func() { p.Card(card) }); n != 0 {
		t.Errorf("Card allocates %.1f times per call; want 0", n)
	}
}

func BenchmarkCard(b *testing.B) {
	p, err := LoadOrCreateKey(filepath.Join(b.TempDir(), "card.key"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Card("C0453c92064c39bec91edd3dffc98e50b")
	}
}
