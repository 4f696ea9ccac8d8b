package geo

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestPackID: packID gives the words of the id's bytes copied into 16
// zeroed bytes with the length in the last, for every length it takes.
func TestPackID(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for n := 1; n <= maxInlineID; n++ {
		for range 200 {
			id := make([]byte, n)
			for i := range id {
				id[i] = byte(r.IntN(256))
			}
			var b [16]byte
			copy(b[:], id)
			b[15] = byte(n)
			want := [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
			if got := packID(string(id)); got != want {
				t.Fatalf("packID(%q) = %x, want %x", id, got, want)
			}
		}
	}
}
