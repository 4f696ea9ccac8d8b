package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Token is one entry of the token file: the SHA-256 of a bearer token (the
// token itself is never stored), the role it grants and a name for logs
// and the audit log.
type Token struct {
	Hash [sha256.Size]byte
	Role Role
	Name string
}

// Tokens is a set of tokens keyed by their hash.
type Tokens struct {
	byHash map[[sha256.Size]byte]Token
}

// Len returns the number of tokens in the set.
func (ts *Tokens) Len() int {
	if ts == nil {
		return 0
	}
	return len(ts.byHash)
}

// Lookup returns the token whose hash is the SHA-256 of secret.
func (ts *Tokens) Lookup(secret string) (Token, bool) {
	if ts == nil || secret == "" {
		return Token{}, false
	}
	t, ok := ts.byHash[HashToken(secret)]
	return t, ok
}

// Add puts t into the set, replacing a token with the same hash.
func (ts *Tokens) Add(t Token) {
	if ts.byHash == nil {
		ts.byHash = map[[sha256.Size]byte]Token{}
	}
	ts.byHash[t.Hash] = t
}

// HashToken returns the SHA-256 of a bearer token, as the token file holds
// it. Tokens are long random strings, so an unsalted hash is enough: it only
// has to keep a stolen token file from being a list of working tokens.
func HashToken(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// tokenJSON is one token of a JSON token file.
type tokenJSON struct {
	SHA256 string `json:"sha256"`
	Role   string `json:"role"`
	Name   string `json:"name"`
}

// ParseTokens reads a token file: either lines of
// `<sha256 hex> <role> [name]` (blank lines and lines starting with # are
// skipped), or a JSON array of {"sha256", "role", "name"} objects. Errors
// name the line (or array index) and field; they never quote a hash.
func ParseTokens(r io.Reader) (*Tokens, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	ts := &Tokens{byHash: map[[sha256.Size]byte]Token{}}
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
		var list []tokenJSON
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, fmt.Errorf("tokens: JSON: %w", err)
		}
		for i, tj := range list {
			t, err := newToken(tj.SHA256, tj.Role, tj.Name)
			if err != nil {
				return nil, fmt.Errorf("tokens: entry %d: %w", i, err)
			}
			if err := ts.addNew(t); err != nil {
				return nil, fmt.Errorf("tokens: entry %d: %w", i, err)
			}
		}
		return ts, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		f := strings.Fields(text)
		if len(f) < 2 {
			return nil, fmt.Errorf("tokens: line %d: want `<sha256 hex> <role> [name]`", line)
		}
		t, err := newToken(f[0], f[1], strings.Join(f[2:], " "))
		if err != nil {
			return nil, fmt.Errorf("tokens: line %d: %w", line, err)
		}
		if err := ts.addNew(t); err != nil {
			return nil, fmt.Errorf("tokens: line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return ts, nil
}

func (ts *Tokens) addNew(t Token) error {
	if _, dup := ts.byHash[t.Hash]; dup {
		return fmt.Errorf("token %q: the same hash appears twice", t.Name)
	}
	ts.Add(t)
	return nil
}

func newToken(hash, role, name string) (Token, error) {
	var t Token
	if len(hash) != 2*sha256.Size {
		return t, fmt.Errorf("field sha256: want %d hex digits, got %d (store the SHA-256 of the token, not the token; `flowd token` prints it)", 2*sha256.Size, len(hash))
	}
	if _, err := hex.Decode(t.Hash[:], []byte(hash)); err != nil {
		return t, errors.New("field sha256: not hex")
	}
	r, err := ParseRole(role)
	if err != nil {
		return t, fmt.Errorf("field role: %w", err)
	}
	t.Role = r
	t.Name = name
	if t.Name == "" {
		t.Name = hash[:8]
	}
	return t, nil
}

// LoadTokens reads the token file at path. A file that group or others can
// write is refused: whoever can write it can make themselves admin.
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("tokens: %s has mode %04o, writable by group or others; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	ts, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}
