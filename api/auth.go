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
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
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

// ParseRole reads a role's name as the token file writes it.
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(s) {
	case "ingest":
		return RoleIngest, nil
	case "read":
		return RoleRead, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: want ingest, read or admin", s)
}

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

// RequiredRole returns the least role that may call method on path;
// RoleNone means the endpoint is open (health and the dashboard page).
// Unknown API paths need admin, so a route added without thought is closed
// rather than open.
func RequiredRole(method, path string) Role {
	if method == "HEAD" {
		method = "GET"
	}
	switch {
	case path == "/healthz":
		return RoleNone
	case path == "/metrics":
		return RoleAdmin
	case !strings.HasPrefix(path, "/api/"):
		return RoleNone // the embedded dashboard page and its assets
	case strings.HasPrefix(path, "/api/v1/ingest/"):
		if method == "POST" {
			return RoleIngest
		}
		return RoleAdmin
	case method == "GET":
		return RoleRead
	case method == "POST" && readPosts[path]:
		return RoleRead
	}
	return RoleAdmin
}

// readPosts are the queries that take their area or path as a POST body;
// they change nothing, so a read token may call them.
var readPosts = map[string]bool{
	"/api/v1/corridor":     true,
	"/api/v1/path/density": true,
	"/api/v1/density":      true,
	"/api/v1/series":       true,
	"/api/v1/top":          true,
	"/api/v1/od":           true,
}

// allows reports whether a caller with role have may call an endpoint that
// needs role need. Roles are not a ladder: an ingest token cannot read and a
// read token cannot ingest; admin may do everything.
func allows(have, need Role) bool {
	return need == RoleNone || have == RoleAdmin || have == need
}

// requestToken returns the token of a request: the Authorization bearer, or on
// the live WebSocket only, the token query parameter, because browsers
// cannot set headers on a WebSocket.
func requestToken(ctx *fasthttp.RequestCtx, path string) string {
	if h := ctx.Request.Header.Peek("Authorization"); len(h) > 0 {
		const prefix = "bearer "
		if len(h) > len(prefix) && strings.EqualFold(string(h[:len(prefix)]), prefix) {
			return strings.TrimSpace(string(h[len(prefix):]))
		}
		return ""
	}
	if path == livePath {
		return string(ctx.QueryArgs().Peek("token"))
	}
	return ""
}

// livePath is the live map's WebSocket upgrade.
const livePath = "/api/v1/live"

// Audit is an append-only NDJSON log of what admins do, registry changes
// and configuration reloads. Each record is one write(2) on a file opened
// with O_APPEND, so records from concurrent requests never interleave.
type Audit struct {
	mu sync.Mutex
	f  *os.File
}

// OpenAudit opens (or creates, mode 0600) the audit log at path.
func OpenAudit(path string) (*Audit, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Audit{f: f}, nil
}

// auditRecord is one line of the audit log.
type auditRecord struct {
	Time    time.Time      `json:"time"`
	Who     string         `json:"who"`
	What    string         `json:"what"`
	Details map[string]any `json:"details,omitempty"`
}

// Record appends one record. A nil Audit records nothing. Details must not
// hold request bodies or query strings: they may carry card ids or tokens.
func (a *Audit) Record(who, what string, details map[string]any) error {
	if a == nil {
		return nil
	}
	line, err := json.Marshal(auditRecord{Time: time.Now().UTC(), Who: who, What: what, Details: details})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.f.Write(line); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return a.f.Sync()
}

// Close closes the audit log.
func (a *Audit) Close() error {
	if a == nil {
		return nil
	}
	return a.f.Close()
}

// Guard is the access and abuse layer in front of every endpoint: it
// authenticates the bearer token, checks the role against the endpoint,
// applies the per-token rate and live-client limits and the ingest body
// limits, and writes the audit log. Without tokens (SetTokens(nil))
// authentication is off and every caller is an admin; the server then
// listens on loopback only.
type Guard struct {
	Limits Limits
	Audit  *Audit
	Logf   func(format string, args ...any)

	tokens atomic.Pointer[Tokens]
	extra  []Token // tokens made inside the process, kept across reloads

	mu      sync.Mutex
	buckets map[[sha256.Size]byte]*rateBucket
	live    map[[sha256.Size]byte]int
}

// NewGuard returns a guard with the given limits and authentication off.
func NewGuard(l Limits) *Guard {
	return &Guard{
		Limits:  l,
		Logf:    func(string, ...any) {},
		buckets: map[[sha256.Size]byte]*rateBucket{},
		live:    map[[sha256.Size]byte]int{},
	}
}

// SetTokens replaces the token set, as on start and SIGHUP. nil turns
// authentication off. Tokens added by AddToken stay.
func (g *Guard) SetTokens(ts *Tokens) {
	if ts == nil {
		g.tokens.Store(nil)
		return
	}
	g.mu.Lock()
	merged := &Tokens{byHash: make(map[[sha256.Size]byte]Token, ts.Len()+len(g.extra))}
	for h, t := range ts.byHash {
		merged.byHash[h] = t
	}
	for _, t := range g.extra {
		merged.Add(t)
	}
	g.mu.Unlock()
	g.tokens.Store(merged)
}

// AddToken adds a token that lives as long as the process, such as the one
// the demo feed uses; it survives reloads of the token file.
func (g *Guard) AddToken(secret string, role Role, name string) {
	t := Token{Hash: HashToken(secret), Role: role, Name: name}
	g.mu.Lock()
	g.extra = append(g.extra, t)
	g.mu.Unlock()
	ts := g.tokens.Load()
	if ts == nil {
		ts = &Tokens{}
	}
	g.SetTokens(ts)
}

// AuthOn reports whether requests must carry a token.
func (g *Guard) AuthOn() bool { return g.tokens.Load() != nil }

// tokenNameKey is the request user value holding the caller's token name.
const tokenNameKey = "flowd.token"

// CallerName returns the name of the caller's token: "local" when
// authentication is off, "anonymous" on an open endpoint.
func CallerName(ctx *fasthttp.RequestCtx) string {
	if n, ok := ctx.UserValue(tokenNameKey).(string); ok {
		return n
	}
	return "anonymous"
}

// Serve admits ctx and calls next, or answers the refusal itself.
func (g *Guard) Serve(ctx *fasthttp.RequestCtx, next fasthttp.RequestHandler) {
	method, path := string(ctx.Method()), string(ctx.Path())
	need := RequiredRole(method, path)
	ts := g.tokens.Load()
	var tok Token
	switch {
	case ts == nil:
		tok = Token{Role: RoleAdmin, Name: "local"}
		ctx.SetUserValue(tokenNameKey, tok.Name)
	case need == RoleNone:
		// An open endpoint's caller is no one: RoleOf must not take the
		// absence of a role for authentication being off.
		SetRole(ctx, RoleNone)
	default:
		secret := requestToken(ctx, path)
		if secret == "" {
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="flowd"`)
			writeError(ctx, fasthttp.StatusUnauthorized, fmt.Errorf("%s %s needs a token: send Authorization: Bearer <token>", method, path))
			return
		}
		var ok bool
		if tok, ok = ts.Lookup(secret); !ok {
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="flowd", error="invalid_token"`)
			writeError(ctx, fasthttp.StatusUnauthorized, errors.New("unknown token"))
			return
		}
		if !allows(tok.Role, need) {
			writeError(ctx, fasthttp.StatusForbidden, fmt.Errorf("token %q has the role %s; %s %s needs %s", tok.Name, tok.Role, method, path, need))
			return
		}
		SetRole(ctx, tok.Role)
		ctx.SetUserValue(tokenNameKey, tok.Name)
		if wait, ok := g.takeRate(tok.Hash); !ok {
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(ctx, fasthttp.StatusTooManyRequests, fmt.Errorf("token %q is over its rate of %g requests a second (burst %d); retry after %v", tok.Name, g.Limits.Rate, g.Limits.Burst, wait.Round(time.Millisecond)))
			return
		}
	}
	if path == livePath && method == "GET" && ts != nil {
		release, ok := g.acquireLive(ctx, tok)
		if !ok {
			ctx.Response.Header.Set("Retry-After", "5")
			writeError(ctx, fasthttp.StatusTooManyRequests, fmt.Errorf("token %q already holds %d live connections, its limit", tok.Name, g.Limits.LivePerToken))
			return
		}
		next(ctx)
		if !ctx.Hijacked() || trackedOf(ctx.Conn()) == nil {
			release()
		}
		return
	}
	next(ctx)
	g.audit(ctx, tok, method, path)
}

// audit records registry changes by anyone and every request of an admin
// token except ingest (which an admin token may do in bulk).
func (g *Guard) audit(ctx *fasthttp.RequestCtx, tok Token, method, path string) {
	registry := method != "GET" && method != "HEAD" && (path == "/api/v1/stations" || path == "/api/v1/sensors" || path == "/api/v1/sites")
	adminUse := tok.Role == RoleAdmin && g.tokens.Load() != nil && !strings.HasPrefix(path, "/api/v1/ingest/")
	if !registry && !adminUse {
		return
	}
	what := "admin.request"
	if registry {
		what = "registry.change"
	}
	err := g.Audit.Record(tok.Name, what, map[string]any{
		"method": method, "path": path, "status": ctx.Response.StatusCode(), "role": tok.Role.String(),
		"remote": ctx.RemoteIP().String(),
	})
	if err != nil {
		g.Logf("flowd: %v", err)
	}
}
