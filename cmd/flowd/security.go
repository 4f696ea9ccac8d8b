package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/ingest"
)

// securityConfig holds the flags of access control, TLS and limits.
type securityConfig struct {
	tokens   string
	insecure bool
	tlsCert  string
	tlsKey   string
	maxLine  int
	// maxEvents and maxDecompressed bound an ingest body; the ingest
	// handler checks them while it decodes.
	maxEvents       int
	maxDecompressed int64
	limits          api.Limits
	conns           api.ConnLimits
	allowHosts      string
}

// securityFlags registers the access, TLS and limit flags on fs.
func securityFlags(fs *flag.FlagSet, c *securityConfig) {
	fs.StringVar(&c.tokens, "tokens", "", "`FILE` of access tokens, reloaded on SIGHUP; without it every caller is an admin and flowd listens on loopback only (the file's format is below)")
	fs.StringVar(&c.allowHosts, "allow-host", "", "comma-separated host names (`HOSTS`) a request's Host may give without -tokens, besides localhost and IP addresses (a guard against DNS rebinding)")
	fs.BoolVar(&c.insecure, "insecure", false, "allow listening beyond loopback without -tokens (every caller is then an admin)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "`FILE` of the TLS certificate chain (PEM); with -tls-key serves HTTPS and WSS, reloaded on SIGHUP")
	fs.StringVar(&c.tlsKey, "tls-key", "", "`FILE` of the TLS private key (PEM) of -tls-cert")
	fs.Float64Var(&c.limits.Rate, "rate-limit", api.DefaultRate, "requests a second one token may make (0 = no limit); beyond it 429 with Retry-After")
	fs.IntVar(&c.limits.Burst, "rate-burst", api.DefaultBurst, "requests one token may make at once after a quiet spell")
	fs.IntVar(&c.limits.LivePerToken, "live-max-per-token", api.DefaultLivePerToken, "live map WebSocket connections one token may hold (0 = no limit); beyond it 429")
	fs.IntVar(&c.maxEvents, "max-events", 1_000_000, "events (lines) in one ingest request (0 = no limit); beyond it 413")
	fs.Int64Var(&c.maxDecompressed, "max-decompressed", 256<<20, "largest ingest body in bytes after gzip or zstd decompression; beyond it 413")
	fs.IntVar(&c.maxLine, "max-line", 64<<10, "longest line of an ingest body in bytes; a longer line is rejected by number")
	fs.Int64Var(&c.limits.MaxQueryCost, "max-query-cost", api.DefaultMaxQueryCost, "rows one query may read (of the tier that answers it) plus figures it may answer; beyond it 400")
	fs.IntVar(&c.limits.MaxQueries, "max-queries", 0, "queries computed at once (0: twice the cores, at least 4); a query waits up to -query-wait for its turn, then 503 with Retry-After")
	fs.IntVar(&c.limits.MaxQueriesPerToken, "max-queries-per-token", 0, "queries one token may have computed at once (0: half of -max-queries); past it, after -query-wait, 429 with Retry-After")
	fs.DurationVar(&c.limits.QueryWait, "query-wait", api.DefaultQueryWait, "how long a query waits for a turn under -max-queries and -max-queries-per-token")
	fs.IntVar(&c.limits.MaxPolygonVertices, "max-polygon-vertices", api.DefaultMaxPolygonVertices, "vertices of a query's polygon; beyond it 400 (covering a polygon costs time in proportion to its vertices and cells)")
	fs.IntVar(&c.limits.MaxQueryBody, "max-query-body", api.DefaultMaxQueryBody, "largest body of a query (a POSTed area, path or form) in bytes; ingest and registry bodies have -max-body")
	fs.IntVar(&c.conns.MaxConns, "max-conns", 0, "open connections in all, live WebSockets included (0: the open-file limit less 1024); past it a new connection closes the oldest one that has not made a request with a token")
	fs.IntVar(&c.conns.MaxAnon, "max-anon-conns", 0, "connections that have not yet made a request with a token (0: half of -max-conns, at most 4096); past it the oldest of them is closed")
	fs.IntVar(&c.conns.MaxAnonPerIP, "max-anon-conns-per-ip", api.DefaultMaxAnonPerIP, "connections from one address that have not yet made a request with a token (0 = no limit); past it that address's oldest of them is closed")
	fs.DurationVar(&c.conns.HeaderTimeout, "header-timeout", api.DefaultHeaderTimeout, "time a connection has to send its request line and headers, from its opening or a keep-alive request's first byte; past it the connection is closed without an answer")
	fs.DurationVar(&c.conns.BodyTimeout, "body-timeout", api.DefaultBodyTimeout, "time a request has to send its body once its headers are in")
	fs.DurationVar(&c.conns.IdleTimeout, "idle-timeout", api.DefaultIdleTimeout, "a keep-alive connection that sends no request for this long is closed")
}

// queryLimits fills in the query limits left to their defaults: twice the
// cores at once, half of them for one token.
func queryLimits(l api.Limits) (api.Limits, error) {
	if l.MaxQueries < 0 || l.MaxQueriesPerToken < 0 || l.QueryWait < 0 || l.MaxPolygonVertices <= 0 || l.MaxQueryBody <= 0 {
		return l, fmt.Errorf("-max-queries, -max-queries-per-token and -query-wait must not be negative, -max-polygon-vertices and -max-query-body must be positive")
	}
	if l.MaxQueries == 0 {
		l.MaxQueries = max(2*runtime.GOMAXPROCS(0), 4)
	}
	if l.MaxQueriesPerToken == 0 {
		l.MaxQueriesPerToken = max(l.MaxQueries/2, 1)
	}
	return l, nil
}

// connLimits fills in the connection limits left to their defaults: as
// many connections as the open-file limit leaves room for after the
// store's files, and half of them, at most 4096, for connections that have
// not yet shown a token.
func connLimits(c api.ConnLimits) (api.ConnLimits, error) {
	if c.MaxConns < 0 || c.MaxAnon < 0 || c.MaxAnonPerIP < 0 {
		return c, fmt.Errorf("-max-conns, -max-anon-conns and -max-anon-conns-per-ip must not be negative")
	}
	if c.HeaderTimeout <= 0 || c.BodyTimeout <= 0 || c.IdleTimeout <= 0 {
		return c, fmt.Errorf("-header-timeout, -body-timeout and -idle-timeout must be positive")
	}
	if c.MaxConns == 0 {
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return c, fmt.Errorf("-max-conns: reading the open-file limit: %w", err)
		}
		c.MaxConns = int(max(min(lim.Cur, 1<<20), 2048) - 1024)
	}
	if c.MaxAnon == 0 {
		c.MaxAnon = min(c.MaxConns/2, 4096)
	}
	return c, nil
}

// security is the running access layer: the guard, the audit log, the TLS
// certificate and what SIGHUP reloads.
type security struct {
	c     securityConfig
	guard *api.Guard
	conns *api.Conns
	audit *api.Audit
	certs *certReloader
	// demoToken is the in-process admin token of the -demo feed,
	// exportToken the read token of -export-dir.
	demoToken, exportToken string
	// cards and cardKeyFile: SIGHUP also rotates the card pseudonym key
	// when the file holds a new one.
	cards       *ingest.Pseudonymizer
	cardKeyFile string
}

// setupSecurity checks the listen address against the token flags, loads
// the tokens, certificate and audit log, and puts the guard in front of srv
// and the limits into the ingest handler.
func setupSecurity(c securityConfig, listen, dataDir string, srv *api.Server, ih *ingest.Handler) (*security, error) {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, fmt.Errorf("-tls-cert and -tls-key go together")
	}
	if c.maxLine <= 0 || c.maxDecompressed <= 0 {
		return nil, fmt.Errorf("-max-line and -max-decompressed must be positive")
	}
	loopback, err := isLoopback(listen)
	if err != nil {
		return nil, err
	}
	if c.tokens == "" && !loopback {
		if !c.insecure {
			return nil, fmt.Errorf("-listen %s reaches beyond this machine and no -tokens file is given: every caller would be an admin and could read movement data. Give -tokens (see `flowd token -h`), listen on 127.0.0.1, or pass -insecure", listen)
		}
		log.Printf("flowd: WARNING: -insecure: listening on %s WITHOUT AUTHENTICATION; anyone who can reach it can read and change everything", listen)
	}
	if c.conns, err = connLimits(c.conns); err != nil {
		return nil, err
	}
	if c.limits, err = queryLimits(c.limits); err != nil {
		return nil, err
	}
	s := &security{c: c}
	srv.Conns = api.NewConns(c.conns, log.Printf)
	s.conns = srv.Conns
	s.guard = api.NewGuard(c.limits)
	s.guard.Logf = log.Printf
	for _, h := range strings.Split(c.allowHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			s.guard.AllowedHosts = append(s.guard.AllowedHosts, h)
		}
	}
	if c.tokens != "" {
		ts, err := api.LoadTokens(c.tokens)
		if err != nil {
			return nil, err
		}
		if ts.Len() == 0 {
			return nil, fmt.Errorf("-tokens %s holds no token", c.tokens)
		}
		s.guard.SetTokens(ts)
		log.Printf("flowd: %d tokens loaded from %s", ts.Len(), c.tokens)
	}
	if c.tlsCert != "" {
		if s.certs, err = newCertReloader(c.tlsCert, c.tlsKey); err != nil {
			return nil, err
		}
	}
	if s.audit, err = api.OpenAudit(filepath.Join(dataDir, "audit.log")); err != nil {
		return nil, err
	}
	s.guard.Audit = s.audit
	ih.MaxLine = c.maxLine
	ih.MaxDecompressed = c.maxDecompressed
	ih.MaxEvents = c.maxEvents
	srv.Guard = s.guard
	s.record("flowd", "start", map[string]any{"auth": s.guard.AuthOn(), "tls": s.certs != nil, "listen": listen})
	return s, nil
}

// DemoToken returns a token for the -demo feed: empty without
// authentication, else a random admin token known only to this process.
func (s *security) DemoToken() string {
	if !s.guard.AuthOn() {
		return ""
	}
	if s.demoToken == "" {
		var b [24]byte
		rand.Read(b[:])
		s.demoToken = hex.EncodeToString(b[:])
		s.guard.AddToken(s.demoToken, api.RoleAdmin, "demo-feed")
	}
	return s.demoToken
}

// ExportToken returns the token -export-dir reads with: a random read
// token named "export", known only to this process, so that the export
// passes the privacy layer and spends a budget of its own as any read
// token does. Authentication must be on.
func (s *security) ExportToken() string {
	if !s.guard.AuthOn() {
		panic("BUG: an export token without authentication")
	}
	if s.exportToken == "" {
		var b [24]byte
		rand.Read(b[:])
		s.exportToken = hex.EncodeToString(b[:])
		s.guard.AddToken(s.exportToken, api.RoleRead, "export")
	}
	return s.exportToken
}

// Listen wraps ln so that its connections are held to the connection
// limits and the guard sees them close, and in TLS when a certificate is
// given. It returns the listener and the URL scheme.
func (s *security) Listen(ln net.Listener) (net.Listener, string) {
	ln = s.conns.Listen(ln)
	if s.certs == nil {
		return ln, "http"
	}
	return tls.NewListener(ln, s.certs.Config()), "https"
}

// reloadOnHUP reloads the token file and the certificate on every SIGHUP
// until ctx ends. A file that fails to load leaves the previous one in use.
func (s *security) reloadOnHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.Reload()
		}
	}
}

// rotateCardKey writes a new card key every interval until ctx ends,
// logging each rotation and recording it in the audit log.
func (s *security) rotateCardKey(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		details := map[string]any{"every": every.String()}
		if err := s.cards.Rotate(s.cardKeyFile); err != nil {
			log.Printf("flowd: card key rotation failed, the current key stays: %v", err)
			details["card_key_error"] = err.Error()
		} else {
			log.Printf("flowd: card key rotated (every %v); the previous key still matches trips opened before", every)
			details["card_key"] = "rotated"
		}
		s.record("flowd", "card key rotation", details)
	}
}

// Reload reloads the tokens and the certificate and records the outcome in
// the log and the audit log.
func (s *security) Reload() {
	details := map[string]any{}
	if s.c.tokens != "" {
		ts, err := api.LoadTokens(s.c.tokens)
		if err == nil && ts.Len() == 0 {
			err = fmt.Errorf("-tokens %s holds no token", s.c.tokens)
		}
		if err != nil {
			log.Printf("flowd: reload: keeping the previous tokens: %v", err)
			details["tokens_error"] = err.Error()
		} else {
			s.guard.SetTokens(ts)
			log.Printf("flowd: reload: %d tokens loaded from %s", ts.Len(), s.c.tokens)
			details["tokens"] = ts.Len()
		}
	}
	if s.certs != nil {
		if err := s.certs.Reload(); err != nil {
			log.Printf("flowd: reload: keeping the previous certificate: %v", err)
			details["tls_error"] = err.Error()
		} else {
			log.Printf("flowd: reload: certificate loaded from %s", s.c.tlsCert)
			details["tls"] = "reloaded"
		}
	}
	if s.cards != nil {
		rotated, err := s.cards.Reload(s.cardKeyFile)
		switch {
		case err != nil:
			log.Printf("flowd: reload: keeping the previous card key: %v", err)
			details["card_key_error"] = err.Error()
		case rotated:
			log.Printf("flowd: reload: card key rotated; the previous key still matches trips opened before")
			details["card_key"] = "rotated"
		}
	}
	s.record("flowd", "reload", details)
}

func (s *security) record(who, what string, details map[string]any) {
	if err := s.audit.Record(who, what, details); err != nil {
		log.Printf("flowd: %v", err)
	}
}

// Close closes the audit log.
func (s *security) Close() error { return s.audit.Close() }

// isLoopback reports whether a listen address reaches only this machine:
// a loopback IP or localhost. An empty host means every interface.
func isLoopback(listen string) (bool, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false, fmt.Errorf("-listen %q: %w", listen, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
