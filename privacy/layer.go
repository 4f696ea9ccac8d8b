package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/flowd/flowd/vocab"
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

// Terms are the layer's parameters as a caller may read them: what an
// export's manifest states, and what GET /api/v1/privacy answers. They
// hold no secret: the noise key is named by KeyID only.
type Terms struct {
	// Exact is set for a caller who sees exact figures (an admin).
	Exact      bool    `json:"exact"`
	Noise      string  `json:"noise"`
	Epsilon    float64 `json:"epsilon"`
	K          int64   `json:"k"`
	PeopleStep string  `json:"people_step"`
	LinkedStep string  `json:"linked_step"`
	FinestRes  int     `json:"finest_res"`
	// PyramidRes are the resolutions whose one-cell, one-bin figures
	// cost no budget.
	PyramidRes   []int  `json:"pyramid_res"`
	ReleaseDelay string `json:"release_delay"`
	TripWindow   string `json:"trip_window"`
	// InferWindow is how much later inferred legs and trips, and
	// unmatched tap-ins, settle where destinations are inferred; absent
	// where they are not.
	InferWindow string  `json:"infer_window,omitempty"`
	Budget      float64 `json:"budget"`
	// NoiseKeyID names the noise key: the same id, the same noise for
	// the same figure.
	NoiseKeyID string `json:"noise_key_id"`
	// Spent is what the caller has spent today; PeopleUntil and
	// LinkedUntil end the last bins of People and Linked figures that are
	// released now.
	Spent       float64   `json:"spent"`
	PeopleUntil time.Time `json:"people_released_until"`
	LinkedUntil time.Time `json:"linked_released_until"`
}

// Mechanism names the noise, as notes and terms give it.
const Mechanism = "two-sided geometric, the same for the same figure"

// Terms returns the layer's terms for caller at now; exact says the caller
// sees exact figures.
func (l *Layer) Terms(caller string, now time.Time, exact bool) Terms {
	p := l.p
	mins := func(m int64) string { return (time.Duration(m) * time.Minute).String() }
	t := Terms{Exact: exact, Noise: Mechanism, Epsilon: p.Epsilon, K: p.K,
		PeopleStep: mins(p.PeopleStep), LinkedStep: mins(p.LinkedStep), FinestRes: p.FinestRes,
		ReleaseDelay: mins(p.Delay), TripWindow: mins(p.TripWindow), Budget: p.Budget, NoiseKeyID: l.KeyID()}
	if p.InferWindow > 0 {
		t.InferWindow = mins(p.InferWindow)
	}
	finest := min(p.FinestRes, p.BaseRes)
	for res := finest; res > finest-PyramidLevels && res >= 0; res-- {
		t.PyramidRes = append(t.PyramidRes, res)
	}
	m := now.Unix() / 60
	people, linked := p.treat(vocab.SwipesIn), p.treat(vocab.Trips)
	t.PeopleUntil = time.Unix(floorTo(m-people.settle, people.step)*60, 0).UTC()
	t.LinkedUntil = time.Unix(floorTo(m-linked.settle, linked.step)*60, 0).UTC()
	if !exact {
		t.Spent = round3(l.ledger.spentBy(caller, m/1440))
	}
	return t
}

// KeyID names the noise key without revealing it: 8 bytes of a keyed hash
// of a fixed label, in hex.
func (l *Layer) KeyID() string {
	mac := hmac.New(sha256.New, l.secret)
	mac.Write([]byte("flowd privacy key id"))
	return hex.EncodeToString(mac.Sum(nil)[:8])
}
