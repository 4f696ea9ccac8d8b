package vocab

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestEstimateDistinctWithinDocumentedError(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for _, n := range []int{10, 1000, 20000, 100000, 1000000} {
		regs := make([]uint8, HLLRegisters)
		for range n {
			idx, rank := HLLRegister(rng.Uint64())
			regs[idx] = max(regs[idx], uint8(rank))
		}
		got := EstimateDistinct(regs)
		if rel := math.Abs(got-float64(n)) / float64(n); rel > 0.02 {
			t.Errorf("%d distinct: estimate %.0f, error %.2f %% > 2 %%", n, got, 100*rel)
		}
	}
}

func TestHLLStdErrorMatchesPrecision(t *testing.T) {
	if want := 1.04 / math.Sqrt(HLLRegisters); math.Abs(HLLStdError-want) > 1e-12 {
		t.Errorf("HLLStdError = %g, want 1.04/√%d = %g", HLLStdError, HLLRegisters, want)
	}
}
