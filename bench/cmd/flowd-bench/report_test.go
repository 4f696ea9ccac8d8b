package main

import (
	"math"
	"testing"
	"time"

	"github.com/flowd/flowd/bench"
)

// TestRoundRatioPairsRounds reads the ratio against the peer round by
// round: with flowd's fast round beside the peer's slow one (the 16:28 run
// of 3 Dec 2026), the medians taken apart read 3.27× and met the 3× goal,
// while the rounds' own ratios, 2.84×, 2.79× and 3.76×, have their median
// below it.
func TestRoundRatioPairsRounds(t *testing.T) {
	perCPU := func(rates ...float64) []bench.SendResult {
		var rs []bench.SendResult
		for _, r := range rates {
			rs = append(rs, bench.SendResult{Events: int64(r * 1e6), ServerCPU: time.Second})
		}
		return rs
	}
	flowd := perCPU(1.2747, 1.4978, 1.4679)
	peer := perCPU(0.4489, 0.5366, 0.3901)
	x, text := roundRatio(flowd, peer)
	if math.Abs(x-2.84) > 0.005 || text != "2.84× (by round 2.84, 2.79, 3.76)" {
		t.Errorf("roundRatio = %.3f, %q; want 2.84 and the three rounds", x, text)
	}
	if apart := medianOf(flowd, bench.SendResult.PerCPU) / medianOf(peer, bench.SendResult.PerCPU); apart < 3 {
		t.Errorf("the medians taken apart read %.2f×; the case is one where they pass 3×", apart)
	}
	// Rounds that do not pair fall back to the medians' ratio.
	if x, _ := roundRatio(flowd, peer[:2]); math.Abs(x-1.4679/((0.4489+0.5366)/2)) > 1e-9 {
		t.Errorf("unpaired rounds: %.3f", x)
	}
}
