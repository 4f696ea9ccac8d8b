package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/remote"
	"github.com/flowd/flowd/storage"
)

// remoteConfig holds the flags of the remote tier (docs/remote.md).
type remoteConfig struct {
	url         string
	node        string
	lateness    time.Duration
	parents     string
	maxBackoff  time.Duration
	read        string
	historyMode string
	peers       string
	peerToken   string
	sketches    string
	backfill    bool
}

// remoteFlags registers the remote tier's flags on fs.
func remoteFlags(fs *flag.FlagSet, c *remoteConfig) {
	host, _ := os.Hostname()
	fs.StringVar(&c.url, "remote", "", "`URL` of VictoriaMetrics to ship every finished minute bucket and hourly rollup to: a single node (http://host:8428) or vminsert with its tenant (http://host:8480/insert/0); it must run with -dedup.minScrapeInterval (e.g. 1ms) and a -retentionPeriod covering the history (default: no remote tier)")
	fs.StringVar(&c.node, "node", host, "this flowd's name in the node label of the series it ships")
	fs.DurationVar(&c.lateness, "remote-lateness", 5*time.Minute, "how long after its end a minute is finished and shipped; later events ship the bucket's new total again")
	fs.StringVar(&c.parents, "remote-parents", "7,8", "comma-separated H3 resolutions of the parent cells each shipped series is labelled with (r7, r8, …), besides its cell")
	fs.DurationVar(&c.maxBackoff, "remote-max-backoff", time.Minute, "longest wait between attempts while VictoriaMetrics does not take a segment")
	fs.StringVar(&c.read, "remote-read", "", "`URL` of VictoriaMetrics to read history from with MetricsQL: a single node, or vmselect with its tenant (http://host:8481/select/0/prometheus) (default: -remote, when it is a single node)")
	fs.StringVar(&c.sketches, "remote-sketches", "minute", "which tiers of the distinct-card sketches' registers are shipped: \"minute\" (both), \"hour\" (the hourly rollups only: a sixtieth of the samples) or \"off\"; each register is a series in VictoriaMetrics")
	fs.BoolVar(&c.backfill, "remote-backfill", true, "ship, once, the buckets the store held before -remote was first given (from its parts, oldest first, with the progress in /readyz); false leaves them local")
	fs.StringVar(&c.peers, "peers", "", "comma-separated `URLs` of the ingest nodes whose stores answer, besides this one's, the series steps VictoriaMetrics does not hold yet (on a query node); replicas of one stream as a|b, the first that answers counting")
	fs.StringVar(&c.peerToken, "peer-token-file", "", "`FILE` holding an admin token of the peers, for their exact figures (default: none, for peers without tokens)")
	fs.StringVar(&c.historyMode, "remote-history", "retention", "which steps of a series query VictoriaMetrics answers: \"retention\", those older than the local tier keeps; \"all\", every step it holds whole")
}

// history returns what answers series queries' old steps from
// VictoriaMetrics, or nil when flowd reads none; rt is the remote tier
// shipping there, if any.
func (c remoteConfig) history(rt *remote.Tier, res int) (*api.History, error) {
	if c.historyMode != "retention" && c.historyMode != "all" {
		return nil, fmt.Errorf("-remote-history %q: want retention or all", c.historyMode)
	}
	base := c.read
	if base == "" && !strings.Contains(c.url, "/insert/") {
		base = strings.TrimSuffix(strings.TrimSuffix(c.url, "/"), "/api/v1/import")
	}
	peers, err := c.peerList()
	if err != nil {
		return nil, err
	}
	if base == "" && len(peers) == 0 {
		return nil, nil
	}
	h := &api.History{All: c.historyMode == "all", Peers: peers, Logf: log.Printf}
	if base != "" {
		parents, err := c.parentList()
		if err != nil {
			return nil, err
		}
		if h.Reader, err = remote.NewReader(base, parents, res, nil); err != nil {
			return nil, err
		}
	}
	switch {
	case rt != nil:
		h.Shipped, h.First = rt.Shipped, rt.First
	case len(peers) > 0:
		// A query node: what every peer that ships has shipped.
		h.Shipped = func() int64 { return shippedByPeers(peers, time.Now().Add(-c.lateness).Unix()/60) }
	default:
		// A flowd that ships nothing reads every finished minute there.
		h.Shipped = func() int64 { return time.Now().Add(-c.lateness).Unix() / 60 }
	}
	return h, nil
}

// shippedByPeers returns the first minute some group of peers may not
// have shipped yet (the most any replica of it shipped), or def when no
// peer says: a peer that does not answer has shipped what it shipped,
// and VictoriaMetrics holds that.
func shippedByPeers(peers [][]*remote.Peer, def int64) int64 {
	first, found := int64(0), false
	for _, group := range peers {
		most, some := int64(0), false
		for _, p := range group {
			if m, ok, err := p.Shipped(); err == nil && ok && (!some || m > most) {
				most, some = m, true
			}
		}
		if some && (!found || most < first) {
			first, found = most, true
		}
	}
	if !found {
		return def
	}
	return first
}

// peerList reads -peers and -peer-token-file.
func (c remoteConfig) peerList() ([][]*remote.Peer, error) {
	if c.peers == "" {
		return nil, nil
	}
	token := ""
	if c.peerToken != "" {
		data, err := os.ReadFile(c.peerToken)
		if err != nil {
			return nil, fmt.Errorf("-peer-token-file: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	var peers [][]*remote.Peer
	for _, g := range strings.Split(c.peers, ",") {
		var group []*remote.Peer
		for _, u := range strings.Split(g, "|") {
			if u = strings.TrimSpace(u); u == "" {
				continue
			}
			p, err := remote.NewPeer(u, token, nil)
			if err != nil {
				return nil, err
			}
			group = append(group, p)
		}
		if len(group) > 0 {
			peers = append(peers, group)
		}
	}
	return peers, nil
}

// parentList parses -remote-parents.
func (c remoteConfig) parentList() ([]int, error) {
	var parents []int
	for _, f := range strings.Split(c.parents, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.Atoi(f)
		if err != nil || r < 0 || r > 15 {
			return nil, fmt.Errorf("-remote-parents %q: %q is not an H3 resolution (0-15)", c.parents, f)
		}
		parents = append(parents, r)
	}
	return parents, nil
}

// outbox opens the remote tier's outbox in the data directory, or
// returns nil without -remote.
func (c remoteConfig) outbox(dataDir string, now time.Time) (*remote.Outbox, error) {
	if c.url == "" {
		return nil, nil
	}
	if _, err := remote.ImportURL(c.url); err != nil {
		return nil, err
	}
	// A new outbox ships from the first minute not finished yet: what the
	// store held before -remote was given stays local.
	first := now.Add(-c.lateness).Unix() / 60
	sk, err := remote.ParseSketches(c.sketches)
	if err != nil {
		return nil, err
	}
	o, err := remote.OpenOutbox(filepath.Join(dataDir, "remote"), first)
	if err != nil {
		return nil, err
	}
	o.ShipSketches(sk)
	return o, nil
}

// tier starts the remote tier over outbox o and store st.
func (c remoteConfig) tier(o *remote.Outbox, st *storage.Store, res int, failpoint func(string)) (*remote.Tier, error) {
	parents, err := c.parentList()
	if err != nil {
		return nil, err
	}
	t, err := remote.New(remote.Config{
		URL: c.url, Node: c.node, Lateness: c.lateness, Parents: parents, Res: res, MaxBackoff: c.maxBackoff,
		Failpoint: failpoint, Backfill: c.backfill,
	}, o, st)
	if err != nil {
		return nil, err
	}
	t.Start()
	return t, nil
}
