package vocab

import "math"

// CellRange is an inclusive range of H3 cell ids at one resolution. The
// children of a coarser cell at a finer resolution form one such range, so
// a store sorted by cell id answers "everything inside this cell" with one
// scan.
type CellRange struct {
	Lo, Hi uint64
}

// Everywhere is every cell id: the area of a query that names none.
var Everywhere = []CellRange{{Lo: 0, Hi: math.MaxUint64}}

// Contains reports whether the cell id c lies within r.
func (r CellRange) Contains(c uint64) bool {
	return c >= r.Lo && c <= r.Hi
}
