package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/storage"
)

// riderGroups reads -rider-groups: "value=group,…" given inline, or the
// name of a file of such lines; nil when empty. The groups' metrics are
// made at once, so that a cap on metrics refuses flowd's start rather
// than a swipe.
func riderGroups(spec string, st *storage.Store) (*ingest.RiderGroups, error) {
	if spec == "" {
		return nil, nil
	}
	var g *ingest.RiderGroups
	var err error
	if strings.Contains(spec, "=") {
		g, err = ingest.ParseRiderGroups(strings.NewReader(spec))
	} else {
		f, ferr := os.Open(spec)
		if ferr != nil {
			return nil, fmt.Errorf("-rider-groups: %w", ferr)
		}
		defer f.Close()
		g, err = ingest.ParseRiderGroups(f)
	}
	if err != nil {
		return nil, fmt.Errorf("-rider-groups %q: %w", spec, err)
	}
	for _, name := range g.Names() {
		if _, err := st.MetricIDs(ingest.GroupMetrics(name)...); err != nil {
			return nil, fmt.Errorf("-rider-groups: group %q: %w (-max-metrics)", name, err)
		}
	}
	return g, nil
}
