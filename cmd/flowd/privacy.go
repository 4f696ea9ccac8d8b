package main

import (
	"flag"
	"path/filepath"
	"time"

	"github.com/flowd/flowd/privacy"
)

// privacyConfig holds the flags of the privacy layer; docs/privacy.md
// explains each.
type privacyConfig struct {
	epsilon    float64
	k          int64
	budget     float64
	peopleStep time.Duration
	linkedStep time.Duration
	finestRes  int
	delay      time.Duration
	secretFile string
}

// privacyFlags registers the privacy layer's flags on fs.
func privacyFlags(fs *flag.FlagSet, c *privacyConfig) {
	fs.Float64Var(&c.epsilon, "privacy-epsilon", privacy.DefaultEpsilon, "privacy loss ε of one released card-derived figure for one tap or trip: the scale of its noise")
	fs.Int64Var(&c.k, "privacy-k", privacy.DefaultK, "card-derived figures whose noisy value is under k people are withheld from non-admin callers")
	fs.Float64Var(&c.budget, "privacy-budget", privacy.DefaultBudget, "ε one token may spend a day (UTC) on card-derived figures beyond one cell over one aligned bin; beyond it 429 (0 = no limit)")
	fs.DurationVar(&c.peopleStep, "privacy-people-step", privacy.DefaultPeopleStep, "finest time bin of swipe and unmatched-tap figures for non-admin callers")
	fs.DurationVar(&c.linkedStep, "privacy-linked-step", privacy.DefaultLinkedStep, "finest time bin of trip, travel-time and distinct-card figures for non-admin callers")
	fs.IntVar(&c.finestRes, "privacy-finest-res", privacy.DefaultFinestRes, "finest H3 resolution of card-derived figures for non-admin callers")
	fs.DurationVar(&c.delay, "privacy-delay", privacy.DefaultDelay, "how long after a time bin ends its card-derived figures are released to non-admin callers (trips wait -trip-window more)")
	fs.StringVar(&c.secretFile, "privacy-secret-file", "", "`FILE` holding the key of the privacy noise, created with mode 0600 if absent (default <data>/privacy.key); keep it: a new key draws new noise")
}

// layer builds the privacy layer of a store at baseRes whose trips are
// matched within tripWindow and whose legs' destinations are inferred
// within inferWindow (0: not inferred), its budgets kept in the data
// directory so that a restart does not renew them.
func (c privacyConfig) layer(dataDir string, baseRes int, tripWindow, inferWindow time.Duration) (*privacy.Layer, error) {
	p := privacy.DefaultPolicy(baseRes, tripWindow)
	p.InferWindow = int64(inferWindow / time.Minute)
	p.Epsilon, p.K, p.Budget, p.FinestRes = c.epsilon, c.k, c.budget, c.finestRes
	p.PeopleStep, p.LinkedStep, p.Delay = int64(c.peopleStep/time.Minute), int64(c.linkedStep/time.Minute), int64(c.delay/time.Minute)
	if err := p.Check(); err != nil {
		return nil, err
	}
	path := c.secretFile
	if path == "" {
		path = filepath.Join(dataDir, "privacy.key")
	}
	secret, err := privacy.LoadOrCreateSecret(path)
	if err != nil {
		return nil, err
	}
	l := privacy.New(p, secret)
	if err := l.KeepBudgets(filepath.Join(dataDir, "privacy-budgets.log")); err != nil {
		return nil, err
	}
	return l, nil
}
