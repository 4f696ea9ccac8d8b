package vocab

import (
	"math"
	"math/bits"
)

// HLLPrecision is the number of hash bits choosing a register: 2^14
// registers give a standard error of 1.04/√16384 ≈ 0.81 %, so 2 % is about
// 2.5 standard errors.
const HLLPrecision = 14

// HLLRegisters is the number of registers of a distinct-card sketch.
const HLLRegisters = 1 << HLLPrecision

// HLLStdError is the relative standard error of an estimate: 1.04/√registers.
const HLLStdError = 1.04 / 128

// HLLRegister splits a card hash into its register index and rank (the
// position of the first 1 bit after the index bits).
func HLLRegister(h uint64) (idx uint64, rank int64) {
	idx = h >> (64 - HLLPrecision)
	w := h<<HLLPrecision | 1<<(HLLPrecision-1)
	return idx, int64(bits.LeadingZeros64(w) + 1)
}

// EstimateDistinct estimates the number of distinct cards whose ranks are
// the maximum per register in regs (len HLLRegisters): the HyperLogLog
// estimate, with linear counting while many registers are still empty.
func EstimateDistinct(regs []uint8) float64 {
	if len(regs) != HLLRegisters {
		panic("BUG: EstimateDistinct needs HLLRegisters registers")
	}
	m := float64(HLLRegisters)
	var sum float64
	zeros := 0
	for _, r := range regs {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	alpha := 0.7213 / (1 + 1.079/m)
	e := alpha * m * m / sum
	if e <= 5*m/2 && zeros > 0 {
		return m * math.Log(m/float64(zeros))
	}
	return e
}
