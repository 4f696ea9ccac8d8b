package api

import (
	"fmt"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/remote"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// maxRecentMinutes bounds how far back GET /api/v1/live/recent reads: it
// serves a query node's live map, whose window is a few minutes.
const maxRecentMinutes = 120

// recentQuery asks for this node's minute buckets of every metric from a
// minute on.
type recentQuery struct{ from, to int64 }

// recentAnswer lists the buckets: each row is the index of its metric in
// Metrics, the cell in hex, the unix minute and the value.
type recentAnswer struct {
	released
	Metrics []string `json:"metrics"`
	Rows    [][4]any `json:"rows"`
	From    int64    `json:"from"`
	answer.Took
}

func (s *Server) parseRecent(q *query) (recentQuery, error) {
	now := q.now.Unix() / 60
	from, err := q.minute("from", q.now.Add(-10*time.Minute))
	if err != nil {
		return recentQuery{}, err
	}
	if from < now-maxRecentMinutes {
		return recentQuery{}, &paramError{Param: "from", Value: q.str("from"), Reason: fmt.Sprintf("at most %d minutes ago: the live feed's recent minutes, not history", maxRecentMinutes)}
	}
	return recentQuery{from: from, to: now + maxAheadMinutes + 1}, nil
}

// maxAheadMinutes is how far past the clock a bucket may lie and still be
// given to a live map (as the dashboard's hub keeps it).
const maxAheadMinutes = 5

// recent answers GET /api/v1/live/recent: this node's own minute buckets
// of every summed metric from from on, exact (an admin's route), which a
// query node's live map polls (remote.LiveFeed). Sketch registers are
// left out: they are not on the live map.
func (s *Server) recent(q recentQuery, _ *privacy.Release) (*recentAnswer, error) {
	ans := &recentAnswer{Metrics: []string{}, Rows: [][4]any{}, From: q.from * 60}
	all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
	for _, name := range s.Store.Metrics() {
		if vocab.KindOf(name) == vocab.Sketch {
			continue
		}
		idx := len(ans.Metrics)
		found := false
		err := s.Store.Scan(storage.TierMinute, name, all, q.from, q.to, func(cell uint64, minute, v int64) {
			found = true
			ans.Rows = append(ans.Rows, [4]any{idx, remote.CellHex(cell), minute, v})
		})
		if err != nil {
			return nil, err
		}
		if found {
			ans.Metrics = append(ans.Metrics, name)
		}
	}
	return ans, nil
}
