package main

import (
	"flag"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/flowd/flowd/dashboard"
	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// forecastConfig holds the flags of the forecasts, predictive warnings
// and anomalies; docs/forecast.md explains them.
type forecastConfig struct {
	history     time.Duration
	warnHorizon time.Duration
	metrics     string
	margin      float64
	minExcess   float64
}

// forecastFlags registers the forecasts' flags on fs.
func forecastFlags(fs *flag.FlagSet, c *forecastConfig) {
	fs.DurationVar(&c.history, "forecast-history", 28*24*time.Hour, "stored history the forecast models learn from at start (the minute tier's)")
	fs.DurationVar(&c.warnHorizon, "forecast-warn-horizon", dashboard.DefaultWarnHorizon, "how far ahead a site's occupancy forecast is watched for a level it will reach (a forecast alert)")
	fs.StringVar(&c.metrics, "anomaly-metrics", vocab.CountPrefix+"person", "comma-separated metrics whose every cell is watched for anomalies (stations and sites always are)")
	fs.Float64Var(&c.margin, "anomaly-margin", 4, "score (differences from the baseline in units of its usual variation) past which a series is an anomaly")
	fs.Float64Var(&c.minExcess, "anomaly-min-excess", 20, "least difference from the baseline, in people or vehicles over 5 minutes, that is an anomaly")
}

// tracker builds the forecast tracker over st and reg, with card-derived
// series forecast for non-admins from what layer releases, and makes it
// an observer of b's durable batches. Start it with Run once the
// dashboard has added its sites.
func (c forecastConfig) tracker(st *storage.Store, reg *geo.Registry, layer *privacy.Layer, b *ingest.Bucketer) (*forecast.Tracker, error) {
	if c.warnHorizon < time.Minute || c.warnHorizon > 24*time.Hour {
		return nil, fmt.Errorf("-forecast-warn-horizon %v: want 1m to 24h", c.warnHorizon)
	}
	if c.margin <= 0 || c.minExcess <= 0 {
		return nil, fmt.Errorf("-anomaly-margin %v and -anomaly-min-excess %v: want more than 0", c.margin, c.minExcess)
	}
	metrics := []string{}
	for _, m := range strings.Split(c.metrics, ",") {
		if m = strings.TrimSpace(m); m != "" {
			metrics = append(metrics, m)
		}
	}
	history := c.history
	if history <= 0 {
		history = -1
	}
	t := forecast.NewTracker(st, reg, forecast.Options{CellMetrics: metrics, Margin: c.margin, MinExcess: c.minExcess,
		History: history, Privacy: layer, Logf: log.Printf})
	b.Deltas = append(b.Deltas, t)
	return t, nil
}
