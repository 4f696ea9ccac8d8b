package privacy

import (
	"cmp"
	"slices"

	"github.com/flowd/flowd/vocab"
)

// maxOverlap returns the most figures of figs that one event can be in
// together: the most that share a minute, a cell and, for trips, a
// destination cell. By parallel composition an answer whose figures are
// ε-private each is m·ε private when m is this number: a series' points,
// a density's cells, a corridor's loads are disjoint and cost ε together;
// a total over the same points would cost another ε, which is why totals
// are summed from released parts instead.
func maxOverlap(figs []figure) int {
	// Sweep time: the most overlap is at some figure's start, among the
	// figures running then.
	byFrom := slices.Clone(figs)
	slices.SortFunc(byFrom, func(a, b figure) int { return cmp.Compare(a.from, b.from) })
	best := 0
	var active []figure
	for i := 0; i < len(byFrom); {
		t := byFrom[i].from
		active = slices.DeleteFunc(active, func(f figure) bool { return f.to <= t })
		for ; i < len(byFrom) && byFrom[i].from == t; i++ {
			active = append(active, byFrom[i])
		}
		best = max(best, overlapInCells(active))
	}
	return best
}

// edge is where a figure's range starts or ends along one axis of cells.
type edge struct {
	at    uint64
	end   bool // ranges are inclusive: an end sorts after a start at the same id
	index int
}

// overlapInCells returns the most figures of figs sharing an origin cell
// and a destination cell. A figure without a destination is everywhere
// along that axis.
func overlapInCells(figs []figure) int {
	origins := edges(figs, func(f figure) []vocab.CellRange { return f.area.ranges })
	withDest := slices.ContainsFunc(figs, func(f figure) bool { return f.dest != nil })
	best, open := 0, 0
	inside := map[int]bool{}
	for i, e := range origins {
		if e.end {
			open--
			delete(inside, e.index)
			continue
		}
		open++
		inside[e.index] = true
		if i+1 < len(origins) && !origins[i+1].end && origins[i+1].at == e.at {
			continue // more starts at this id
		}
		if !withDest {
			best = max(best, open)
			continue
		}
		var here []figure
		for j := range inside {
			here = append(here, figs[j])
		}
		best = max(best, overlapAlong(edges(here, func(f figure) []vocab.CellRange {
			if f.dest == nil {
				return vocab.Everywhere
			}
			return f.dest.ranges
		})))
	}
	return best
}

// overlapAlong returns the most ranges open at once along one axis.
func overlapAlong(es []edge) int {
	best, open := 0, 0
	for _, e := range es {
		if e.end {
			open--
		} else {
			open++
			best = max(best, open)
		}
	}
	return best
}

// edges returns the starts and ends of the ranges of each figure, sorted.
// One figure's ranges are disjoint, so it is counted at most once at an id.
func edges(figs []figure, ranges func(figure) []vocab.CellRange) []edge {
	var es []edge
	for i, f := range figs {
		for _, r := range ranges(f) {
			es = append(es, edge{r.Lo, false, i}, edge{r.Hi, true, i})
		}
	}
	slices.SortFunc(es, func(a, b edge) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmpBool(a.end, b.end)
	})
	return es
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
