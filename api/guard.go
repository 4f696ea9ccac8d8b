package api

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/valyala/fasthttp"
)

// Guard is the access and abuse layer in front of every endpoint: it
// authenticates the bearer token, checks its role against the route's,
// applies the per-token rate and the route's limits, and writes the audit
// log as the route says. Without tokens (SetTokens(nil)) authentication is
// off and every caller is an admin; the server then listens on loopback
// only.
type Guard struct {
	Limits Limits
	Audit  *Audit
	Logf   func(format string, args ...any)
	// AllowedHosts are names besides localhost and IP addresses that a
	// request's Host may give while authentication is off.
	AllowedHosts []string
	// HangUp ends the live connections of tokens that a reload removed,
	// as the live view does with a close frame; without it the guard
	// closes those connections itself.
	HangUp func(conns []net.Conn)

	tokens atomic.Pointer[Tokens]
	extra  []Token // tokens made inside the process, kept across reloads

	mu      sync.Mutex
	buckets map[[sha256.Size]byte]*rateBucket
	live    map[[sha256.Size]byte]map[*liveSlot]struct{}
	queries *querySlots // nil: no limit

	refusals refusalRation
}

// NewGuard returns a guard with the given limits and authentication off.
func NewGuard(l Limits) *Guard {
	return &Guard{
		Limits:  l,
		Logf:    func(string, ...any) {},
		buckets: map[[sha256.Size]byte]*rateBucket{},
		live:    map[[sha256.Size]byte]map[*liveSlot]struct{}{},
		queries: newQuerySlots(l.MaxQueries, l.MaxQueriesPerToken),
	}
}

// SetTokens replaces the token set, as on start and SIGHUP. nil turns
// authentication off. Tokens added by AddToken stay. The live connections
// of tokens no longer in the set are ended at once: a revoked token's
// feed must not go on streaming.
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
	g.tokens.Store(merged)
	revoked := g.revokedLive(merged)
	g.mu.Unlock()
	if len(revoked) == 0 {
		return
	}
	g.Logf("flowd: ending %d live connections of revoked tokens", len(revoked))
	if g.HangUp != nil {
		g.HangUp(revoked)
		return
	}
	for _, c := range revoked {
		c.Close()
	}
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

// Serve admits a request to rt and calls its handler, or answers the
// refusal itself.
func (g *Guard) Serve(ctx *fasthttp.RequestCtx, rt *Route) {
	ts := g.tokens.Load()
	tok, ok := g.admit(ctx, rt, ts)
	if !ok {
		return
	}
	if ts == nil || rt.Role != RoleNone {
		setKnown(ctx)
	}
	switch {
	case rt.Limit == LimitLive && ts != nil:
		release, ok := g.acquireLive(ctx, tok)
		if !ok {
			ctx.Response.Header.Set("Retry-After", "5")
			answer.Error(ctx, fasthttp.StatusTooManyRequests, fmt.Errorf("token %q already holds %d live connections, its limit", tok.Name, g.Limits.LivePerToken))
			return
		}
		rt.Handler(ctx)
		if !ctx.Hijacked() || trackedOf(ctx.Conn()) == nil {
			release()
		}
	case rt.Limit == LimitQuery && g.queries != nil:
		var who *Token
		if ts != nil {
			who = &tok
		}
		release, status, err := g.queries.acquire(who, cmp.Or(g.Limits.QueryWait, DefaultQueryWait))
		if err != nil {
			ctx.Response.Header.Set("Retry-After", "1")
			answer.Error(ctx, status, err)
			return
		}
		defer release()
		rt.Handler(ctx)
	default:
		rt.Handler(ctx)
	}
	g.audit(ctx, rt, tok, ts != nil)
}

// admit authenticates the caller of rt and takes one request of its rate;
// on refusal it has answered and returns false.
func (g *Guard) admit(ctx *fasthttp.RequestCtx, rt *Route, ts *Tokens) (Token, bool) {
	switch {
	case ts == nil:
		if err := g.checkLocal(ctx); err != nil {
			answer.Error(ctx, fasthttp.StatusForbidden, err)
			return Token{}, false
		}
		return Token{Role: RoleAdmin, Name: "local"}, true
	case rt.Role == RoleNone:
		// An open endpoint's caller is no one: RoleOf must not take the
		// absence of a role for authentication being off.
		setRole(ctx, RoleNone)
		return Token{}, true
	}
	method, path := ctx.Method(), ctx.Path()
	secret := requestToken(ctx, rt)
	if secret == "" {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="flowd"`)
		answer.Error(ctx, fasthttp.StatusUnauthorized, fmt.Errorf("%s %s needs a token: send Authorization: Bearer <token>", method, path))
		g.auditRefusal(ctx, rt, "unknown", "no token")
		return Token{}, false
	}
	tok, ok := ts.Lookup(secret)
	if !ok {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="flowd", error="invalid_token"`)
		answer.Error(ctx, fasthttp.StatusUnauthorized, errors.New("unknown token"))
		g.auditRefusal(ctx, rt, "unknown", "unknown token")
		return Token{}, false
	}
	if !allows(tok.Role, rt.Role) {
		answer.Error(ctx, fasthttp.StatusForbidden, fmt.Errorf("token %q has the role %s; %s %s needs %s", tok.Name, tok.Role, method, path, rt.Role))
		g.auditRefusal(ctx, rt, tok.Name, fmt.Sprintf("role %s, needs %s", tok.Role, rt.Role))
		return Token{}, false
	}
	setRole(ctx, tok.Role)
	setCaller(ctx, tok.Name)
	if wait, ok := g.takeRate(tok.Hash); !ok {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		answer.Error(ctx, fasthttp.StatusTooManyRequests, fmt.Errorf("token %q is over its rate of %g requests a second (burst %d); retry after %v", tok.Name, g.Limits.Rate, g.Limits.Burst, wait.Round(time.Millisecond)))
		return Token{}, false
	}
	return tok, true
}

// checkLocal refuses, while authentication is off, a request that a web
// page on another site could have made the browser send: one whose Host
// is a name other than localhost (DNS rebinding: the page's own name,
// made to resolve to this machine) or whose Origin is not this server.
func (g *Guard) checkLocal(ctx *fasthttp.RequestCtx) error {
	host := string(ctx.Host())
	if !g.localHost(host) {
		return fmt.Errorf("header Host %q is not this machine: without -tokens flowd answers only requests to localhost, an IP address or an -allow-host name", answer.Clip(host))
	}
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		return nil // not sent by a browser on another site's behalf
	}
	if u, err := url.Parse(string(origin)); err != nil || !strings.EqualFold(u.Host, host) {
		return fmt.Errorf("header Origin %q is not this server: without -tokens flowd answers no other site's pages", answer.Clip(string(origin)))
	}
	return nil
}

// localHost reports whether a Host header names this machine in a way no
// other site's page can borrow: an IP address, localhost, or an allowed
// name. An absent Host is allowed: every browser sends one.
func (g *Guard) localHost(host string) bool {
	if host == "" {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	for _, a := range g.AllowedHosts {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
}

// requestToken returns the token of a request: the Authorization bearer
// (or InfluxDB's "Token" scheme, or a Basic password, as InfluxDB clients
// and Telegraf send it), or on the live WebSocket only, the token query
// parameter, because browsers cannot set headers on a WebSocket.
func requestToken(ctx *fasthttp.RequestCtx, rt *Route) string {
	if h := string(ctx.Request.Header.Peek("Authorization")); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		cred = strings.TrimSpace(cred)
		switch {
		case strings.EqualFold(scheme, "bearer"), strings.EqualFold(scheme, "token"):
			return cred
		case strings.EqualFold(scheme, "basic"):
			raw, err := base64.StdEncoding.DecodeString(cred)
			if err != nil {
				return ""
			}
			_, password, _ := strings.Cut(string(raw), ":")
			return password
		}
		return ""
	}
	if rt.Limit == LimitLive {
		return string(ctx.QueryArgs().Peek("token"))
	}
	return ""
}

// auditRefusal records a request refused for its token: under the route's
// own record for a registry change (its status says it was refused), else
// as auth.failed. A flood of refusals must not become a flood of fsyncs
// or fill the disk, so records are rationed (refusalBurst, then one a
// second), and the next record written counts those left out.
func (g *Guard) auditRefusal(ctx *fasthttp.RequestCtx, rt *Route, who, reason string) {
	what := "auth.failed"
	if rt.Audit == AuditChanges {
		what = "registry.change"
	}
	suppressed, ok := g.refusals.take()
	if !ok {
		return
	}
	details := map[string]any{
		"method": string(ctx.Method()), "path": answer.Clip(string(ctx.Path())), "status": ctx.Response.StatusCode(),
		"reason": reason, "remote": ctx.RemoteIP().String(),
	}
	if suppressed > 0 {
		details["suppressed_before"] = suppressed
	}
	if err := g.Audit.Record(who, what, details); err != nil {
		g.Logf("flowd: %v", err)
	}
}

// Rationing of the audit records of refusals.
const (
	refusalBurst = 20
	refusalRate  = 1 // a second
)

// refusalRation rations the audit records of refusals and counts those
// left out.
type refusalRation struct {
	mu         sync.Mutex
	bucket     rateBucket
	suppressed int
}

// take spends a record's credit: it reports whether a record may be
// written and how many were left out since the last one written.
func (r *refusalRation) take() (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.bucket.take(time.Now(), refusalRate, refusalBurst); !ok {
		r.suppressed++
		return 0, false
	}
	suppressed, r.suppressed = r.suppressed, 0
	return suppressed, true
}

// audit records a served request as its route's audit rule says: every
// call of a route that changes the registries, and the calls of admin
// tokens (when authentication is on) to the other audited routes.
func (g *Guard) audit(ctx *fasthttp.RequestCtx, rt *Route, tok Token, authOn bool) {
	what := ""
	switch {
	case rt.Audit == AuditChanges:
		what = "registry.change"
	case rt.Audit == AuditAdmin && authOn && tok.Role == RoleAdmin:
		what = "admin.request"
	default:
		return
	}
	err := g.Audit.Record(tok.Name, what, map[string]any{
		"method": string(ctx.Method()), "path": string(ctx.Path()), "status": ctx.Response.StatusCode(),
		"role": tok.Role.String(), "remote": ctx.RemoteIP().String(),
	})
	if err != nil {
		g.Logf("flowd: %v", err)
	}
}
