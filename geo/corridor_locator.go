package geo

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/flowd/flowd/vocab"
)

// CorridorLocator finds which corridor cell, and so which segment, a cell
// of a finer base resolution lies in, by binary search over the corridor
// cells' child ranges: no H3 call per stored bucket.
type CorridorLocator struct {
	BaseRes int
	// Ranges are the merged base-resolution ranges of the whole corridor,
	// for one scan.
	Ranges []vocab.CellRange
	child  []vocab.CellRange // child range of each corridor cell, sorted
	cell   []int32           // index in Corridor.Cells of child[i]
	seg    []int32           // segment of child[i]
}

// Locator returns the corridor's locator for base-resolution cells,
// building it on first use. baseRes must not be coarser than c.Res.
func (c *Corridor) Locator(baseRes int) (*CorridorLocator, error) {
	if l := c.loc.Load(); l != nil && l.BaseRes == baseRes {
		return l, nil
	}
	if baseRes < c.Res || baseRes > MaxRes {
		return nil, &CorridorError{"res", strconv.Itoa(c.Res), fmt.Sprintf("corridor cells must not be finer than the base resolution %d", baseRes)}
	}
	l := &CorridorLocator{BaseRes: baseRes, child: make([]vocab.CellRange, len(c.Cells)), cell: make([]int32, len(c.Cells)), seg: make([]int32, len(c.Cells))}
	order := make([]int32, len(c.Cells))
	for i, cell := range c.Cells {
		l.child[i] = ChildRange(cell, baseRes)
		order[i] = int32(i)
	}
	sort.Slice(order, func(i, j int) bool { return l.child[order[i]].Lo < l.child[order[j]].Lo })
	sorted := make([]vocab.CellRange, len(order))
	for i, o := range order {
		sorted[i] = l.child[o]
		l.cell[i] = o
		l.seg[i] = c.cellSeg[o]
	}
	l.child = sorted
	var err error
	if l.Ranges, err = Ranges(c.Cells, baseRes); err != nil {
		return nil, err
	}
	c.loc.Store(l)
	return l, nil
}

// Find returns the index in the corridor's Cells of the cell holding the
// base-resolution id base, and its segment, or -1, -1 outside the corridor.
func (l *CorridorLocator) Find(base uint64) (cell, seg int) {
	i := sort.Search(len(l.child), func(i int) bool { return l.child[i].Lo > base }) - 1
	if i < 0 || base > l.child[i].Hi {
		return -1, -1
	}
	return int(l.cell[i]), int(l.seg[i])
}
