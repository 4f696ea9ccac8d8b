package storage

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding"
)

// TestMarshalPlainIsLibEncodingWithoutZSTD checks that marshalPlain writes
// what lib/encoding's MarshalValues writes once its zstd stage is undone,
// and that UnmarshalValues reads it back.
func TestMarshalPlainIsLibEncodingWithoutZSTD(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := map[string]func(i int) int64{
		"const":       func(int) int64 { return 7 },
		"zeros":       func(int) int64 { return 0 },
		"delta const": func(i int) int64 { return 1000 + 60*int64(i) },
		"counter":     func(i int) int64 { return int64(i*i) + rng.Int64N(3) },
		"gauge":       func(int) int64 { return rng.Int64N(100) },
		"negative":    func(int) int64 { return -rng.Int64N(1 << 40) },
		"few resets":  func(i int) int64 { return int64(i % 500) },
	}
	for name, f := range shapes {
		for _, n := range []int{1, 2, 3, 64, 1000, 8192} {
			vals := make([]int64, n)
			for i := range vals {
				vals[i] = f(i)
			}
			got, mt, first := marshalPlain(nil, vals)
			want, wmt, wfirst := encoding.MarshalValues(nil, vals, 64)
			switch wmt {
			case encoding.MarshalTypeZSTDNearestDelta, encoding.MarshalTypeZSTDNearestDelta2:
				var err error
				if want, err = encoding.DecompressZSTD(nil, want); err != nil {
					t.Fatal(err)
				}
				wmt = map[encoding.MarshalType]encoding.MarshalType{
					encoding.MarshalTypeZSTDNearestDelta:  encoding.MarshalTypeNearestDelta,
					encoding.MarshalTypeZSTDNearestDelta2: encoding.MarshalTypeNearestDelta2,
				}[wmt]
			}
			if mt != wmt || first != wfirst || !bytes.Equal(got, want) {
				t.Errorf("%s, %d values: type %d first %d, %d bytes; lib/encoding: type %d first %d, %d bytes", name, n, mt, first, len(got), wmt, wfirst, len(want))
				continue
			}
			back, err := encoding.UnmarshalValues(nil, got, mt, first, n)
			if err != nil || !slices.Equal(back, vals) {
				t.Errorf("%s, %d values: read back %v, %v", name, n, err, back[:min(len(back), 5)])
			}
		}
	}
}
