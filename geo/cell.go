package geo

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// MaxRes is the finest H3 resolution.
const MaxRes = 15

// H3 index layout: bits 52–55 hold the resolution, bits 45–51 the base cell,
// then 15 digits of 3 bits, digit 1 at bits 42–44 … digit 15 at bits 0–2.
const (
	resOffset      = 52
	resMask        = uint64(0xf) << resOffset
	baseCellOffset = 45
	digitBits      = 3
	digitMask      = uint64(7)
)

// CellOf returns the H3 cell holding (lat, lng) at res, or an error naming
// the coordinate or resolution that is out of range.
func CellOf(lat, lng float64, res int) (h3.Cell, error) {
	if err := checkLatLng(lat, lng); err != nil {
		return 0, err
	}
	if err := checkRes(res); err != nil {
		return 0, err
	}
	return h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, res), nil
}

func checkLat(lat float64) error {
	if math.IsNaN(lat) || lat < -90 || lat > 90 {
		return fmt.Errorf("latitude %v out of range [-90, 90]", lat)
	}
	return nil
}

func checkLng(lng float64) error {
	if math.IsNaN(lng) || lng < -180 || lng > 180 {
		return fmt.Errorf("longitude %v out of range [-180, 180]", lng)
	}
	return nil
}

func checkLatLng(lat, lng float64) error {
	if err := checkLat(lat); err != nil {
		return err
	}
	return checkLng(lng)
}

func checkRes(res int) error {
	if res < 0 || res > MaxRes {
		return fmt.Errorf("resolution %d out of range [0, %d]", res, MaxRes)
	}
	return nil
}

// ChildRange returns the range of ids holding every descendant of c at res.
// It panics if res is coarser than c or finer than MaxRes: callers pick res.
func ChildRange(c h3.Cell, res int) vocab.CellRange {
	cr := resOf(c)
	if res < cr || res > MaxRes {
		panic(fmt.Sprintf("BUG: ChildRange of a res %d cell at res %d", cr, res))
	}
	// The digits cr+1..res: zeros for the first child, sixes for the last.
	shift := uint(MaxRes-res) * digitBits
	digits := (uint64(1)<<(uint(res-cr)*digitBits) - 1) << shift
	lo := uint64(c)&^resMask&^digits | uint64(res)<<resOffset
	hi := lo | digits&(0o666666666666666<<shift)
	return vocab.CellRange{Lo: lo, Hi: hi}
}

// pentagonBase marks the 12 base cells that are pentagons; their
// descendants skip every id whose first non-zero digit is 1.
var pentagonBase = func() (m [122]bool) {
	for _, c := range h3.Pentagons(0) {
		m[c.BaseCellNumber()] = true
	}
	return m
}()

// resOf is c.Resolution() read from the bits, without a cgo call.
func resOf(c h3.Cell) int { return int(uint64(c) & resMask >> resOffset) }

// successor returns the next valid res-level id after the res-level id h in
// id order (digits 0–6 counting upward, carrying into the base cell), so that
// ranges with no cell of that resolution between them can be joined.
func successor(h uint64, res int) uint64 {
	s := h + 1<<baseCellOffset
	for d := res; d >= 1; d-- {
		shift := uint(MaxRes-d) * digitBits
		if digit := h >> shift & digitMask; digit < 6 {
			s = h + 1<<shift
			break
		}
		h &^= digitMask << shift
	}
	bc := s >> baseCellOffset & 0x7f
	if bc >= uint64(len(pentagonBase)) || !pentagonBase[bc] {
		return s
	}
	for d := 1; d <= res; d++ {
		shift := uint(MaxRes-d) * digitBits
		digit := s >> shift & digitMask
		if digit == 0 {
			continue
		}
		if digit == 1 {
			// Jump over the deleted subsequence to the first id under digit 2.
			s = s&^(digitMask<<shift) | 2<<shift
			for e := d + 1; e <= res; e++ {
				s &^= digitMask << (uint(MaxRes-e) * digitBits)
			}
		}
		break
	}
	return s
}

// Ranges returns the sorted, merged ranges of baseRes ids covering cells.
// Ranges with no baseRes id between them are joined, so the store does one
// scan per contiguous area. A cell finer than baseRes is an error.
func Ranges(cells []h3.Cell, baseRes int) ([]vocab.CellRange, error) {
	if err := checkRes(baseRes); err != nil {
		return nil, err
	}
	rs := make([]vocab.CellRange, 0, len(cells))
	for _, c := range cells {
		if !c.IsValid() {
			return nil, fmt.Errorf("cell %s is not a valid H3 cell", c)
		}
		if r := resOf(c); r > baseRes {
			return nil, fmt.Errorf("cell %s has resolution %d, finer than the base resolution %d", c, r, baseRes)
		}
		rs = append(rs, ChildRange(c, baseRes))
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Lo < rs[j].Lo })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && r.Lo <= successor(out[n-1].Hi, baseRes) {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseCells parses comma-separated hex H3 ids ("8928308280fffff,…"; a 0x
// prefix is allowed). An empty list or an invalid id is an error naming it.
func ParseCells(s string) ([]h3.Cell, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no cells given")
	}
	tokens := strings.Split(s, ",")
	cells := make([]h3.Cell, 0, len(tokens))
	for i, tok := range tokens {
		tok = strings.TrimSpace(tok)
		hex := strings.TrimPrefix(strings.TrimPrefix(tok, "0x"), "0X")
		v, err := strconv.ParseUint(hex, 16, 64)
		c := h3.Cell(v)
		if err != nil || !c.IsValid() {
			return nil, fmt.Errorf("cell %d %q is not a valid H3 cell id", i+1, tok)
		}
		cells = append(cells, c)
	}
	return cells, nil
}

// Parent returns the ancestor of the cell c at res, read from the bits
// without a cgo call (c.Parent(res) in h3-go). res must not be finer than
// c's resolution.
func Parent(c uint64, res int) uint64 {
	cr := resOf(h3.Cell(c))
	if res > cr || res < 0 {
		panic(fmt.Sprintf("BUG: the res %d parent of a res %d cell", res, cr))
	}
	unused := uint64(1)<<(uint(MaxRes-res)*digitBits) - 1 // digits res+1..15 read 7
	return c&^resMask | uint64(res)<<resOffset | unused
}
