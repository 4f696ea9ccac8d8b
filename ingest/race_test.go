//go:build race

package ingest

// The race detector makes sync.Pool drop items at random, so pooled paths
// allocate under it.
func init() { raceEnabled = true }
