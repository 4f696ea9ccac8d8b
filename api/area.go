package api

import (
	"fmt"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
	"github.com/valyala/fasthttp"
)

// area is the set of cells a query covers: the cells at the query's
// resolution, and the base-resolution id ranges to scan.
type area struct {
	res    int
	cells  []h3.Cell
	ranges []vocab.CellRange
	// shape is the bbox or polygon the cells cover, if any: a finer
	// cover of it reads less past its edge (areaCost).
	shape cover
}

// maxAreaCells bounds the cells one query may name or cover.
const maxAreaCells = 200000

// areaParams are the parameters that name an area, one at a time.
var areaParams = [...]string{"cells", "site", "bbox", "polygon"}

// hasArea reports whether any area parameter with the prefix is given.
func (q *query) hasArea(prefix string) bool {
	for _, p := range areaParams {
		if q.str(prefix+p) != "" {
			return true
		}
	}
	return false
}

// prefixed returns a query whose area parameters are those named prefix+x
// here, with the same res.
func (q *query) prefixed(prefix string) *query {
	var args fasthttp.Args
	for _, p := range areaParams {
		if v := q.args.Peek(prefix + p); len(v) > 0 {
			args.SetBytesV(p, v)
		}
	}
	if v := q.args.Peek("res"); len(v) > 0 {
		args.SetBytesV("res", v)
	}
	return &query{args: &args, now: q.now, rel: q.rel, store: q.store, history: q.history}
}

// parseArea reads one of cells, site, bbox or polygon, at the resolution
// res (the base one by default; cells keep their own).
func (s *Server) parseArea(q *query) (*area, error) {
	res, err := q.intParam("res", s.Res, 0, s.Res)
	if err != nil {
		return nil, err
	}
	a := &area{res: res}
	switch {
	case q.str("cells") != "":
		err = s.areaOfCells(q, a)
	case q.str("site") != "":
		id := q.str("site")
		site, ok := s.Registry.Site(id)
		if !ok {
			return nil, &paramError{Param: "site", Value: id, Reason: "unknown site"}
		}
		a.res = s.Res
		a.cells = append([]h3.Cell{site.Cell}, site.Cells...)
	case q.str("bbox") != "":
		err = areaOfShape(q, a, "bbox", func(v string) (cover, error) { return geo.ParseBBox(v) })
	case q.str("polygon") != "":
		err = areaOfShape(q, a, "polygon", func(v string) (cover, error) {
			m, err := geo.ParseGeoJSONArea([]byte(v))
			if err == nil {
				err = s.checkVertices(m)
			}
			return m, err
		})
	default:
		return nil, &paramError{Param: "cells", Reason: "give one of cells, site, bbox or polygon"}
	}
	if err != nil {
		return nil, err
	}
	if len(a.cells) > maxAreaCells {
		return nil, &paramError{Param: "cells", Value: fmt.Sprint(len(a.cells), " cells"), Reason: fmt.Sprintf("at most %d cells per query", maxAreaCells)}
	}
	if a.ranges, err = geo.Ranges(a.cells, s.Res); err != nil {
		return nil, &paramError{Param: "cells", Reason: err.Error()}
	}
	return a, nil
}

// areaOfCells reads the cells parameter: cells no finer than the base
// resolution, at their own resolution unless res is given.
func (s *Server) areaOfCells(q *query, a *area) error {
	v := q.str("cells")
	cells, err := geo.ParseCells(v)
	if err != nil {
		return &paramError{Param: "cells", Value: v, Reason: err.Error()}
	}
	for _, c := range cells {
		if c.Resolution() > s.Res {
			return &paramError{Param: "cells", Value: c.String(), Reason: fmt.Sprintf("resolution %d is finer than the base resolution %d", c.Resolution(), s.Res)}
		}
	}
	a.cells = cells
	if q.str("res") == "" && len(cells) > 0 {
		a.res = cells[0].Resolution()
	}
	return nil
}

// cover is a shape that cells can cover: a bounding box or a polygon.
type cover interface {
	Cells(res, max int) ([]h3.Cell, error)
}

// areaOfShape reads a bbox or polygon parameter and covers it with cells
// at the area's resolution.
func areaOfShape(q *query, a *area, param string, parse func(string) (cover, error)) error {
	v := q.str(param)
	shape, err := parse(v)
	if err != nil {
		return &paramError{Param: param, Value: v, Reason: err.Error()}
	}
	if a.cells, err = shape.Cells(a.res, maxAreaCells); err != nil {
		return &paramError{Param: param, Value: v, Reason: err.Error()}
	}
	a.shape = shape
	return nil
}

// checkVertices refuses a polygon with more vertices than the limit:
// covering it with cells costs time in proportion to its vertices.
func (s *Server) checkVertices(m geo.MultiPolygon) error {
	limit := DefaultMaxPolygonVertices
	if s.Guard != nil && s.Guard.Limits.MaxPolygonVertices > 0 {
		limit = s.Guard.Limits.MaxPolygonVertices
	}
	n := 0
	for _, p := range m {
		n += len(p.Outer)
		for _, h := range p.Holes {
			n += len(h)
		}
	}
	if n > limit {
		return fmt.Errorf("%d vertices; at most %d (-max-polygon-vertices): simplify the polygon", n, limit)
	}
	return nil
}
