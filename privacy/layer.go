package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"time"
)

// Layer is the privacy layer of one server: its policy, the secret its
// noise is keyed with, and the callers' budgets.
type Layer struct {
	p      Policy
	secret []byte
	ledger ledger
}

// New returns a layer with policy p whose noise is keyed with secret. The
// secret must outlive restarts (LoadOrCreateSecret): a new secret draws
// new noise for every figure, and two draws of one figure average.
func New(p Policy, secret []byte) *Layer {
	if err := p.Check(); err != nil {
		panic("BUG: " + err.Error())
	}
	if len(secret) < 16 {
		panic("BUG: a privacy secret of fewer than 16 bytes")
	}
	return &Layer{p: p, secret: secret}
}

// Policy returns the layer's parameters.
func (l *Layer) Policy() Policy { return l.p }

// Exact returns the release of a caller who sees exact figures: an admin,
// or every caller of a server without authentication.
func (l *Layer) Exact() *Release { return &Release{l: l, exact: true} }

// For returns the release of one answer to the caller named caller (a
// token's stable name for the budget), at the server's time now.
func (l *Layer) For(caller string, now time.Time) *Release {
	return &Release{l: l, caller: caller, now: now.Unix() / 60, mac: hmac.New(sha256.New, l.secret)}
}
