package ingest

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/flowd/flowd/vocab"
)

// RiderGroups maps the card categories fare systems write (the AFC
// exports' payType: adult, student, senior, concession…) to a small fixed
// set of rider groups, so that swipes and matched trips are counted per
// group too. A category the map does not name counts in no group.
type RiderGroups struct {
	byValue map[string]*riderGroup
	names   []string
	list    []*riderGroup // by id, from 1
}

// riderGroup is one group, its id and the names of its metric families.
type riderGroup struct {
	id                              uint8
	name                            string
	swipesIn, swipesOut, trips, sec string
	legs, tripsInferred             string
}

// GroupMetrics lists the names of the metric families of rider group name:
// swipes, matched trips and their seconds, inferred legs and trips.
func GroupMetrics(name string) []string {
	return []string{vocab.InGroup(vocab.SwipesIn, name), vocab.InGroup(vocab.SwipesOut, name), vocab.InGroup(vocab.Trips, name),
		vocab.InGroup(vocab.TripSeconds, name), vocab.InGroup(vocab.LegsInferred, name), vocab.InGroup(vocab.TripsInferred, name)}
}

// MaxRiderGroups bounds the groups: each takes six metrics.
const MaxRiderGroups = 8

// ParseRiderGroups reads a map of categories to groups, "value=group"
// pairs separated by commas or new lines (a file of such lines; # starts
// a comment). A group is 1 to 32 lower-case letters, digits or _.
func ParseRiderGroups(r io.Reader) (*RiderGroups, error) {
	g := &RiderGroups{byValue: map[string]*riderGroup{}, list: []*riderGroup{nil}}
	groups := map[string]*riderGroup{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		for _, pair := range strings.Split(text, ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			value, name, ok := strings.Cut(pair, "=")
			value, name = strings.TrimSpace(value), strings.TrimSpace(name)
			switch {
			case !ok || value == "":
				return nil, fmt.Errorf("rider groups, line %d: %q: want value=group", line, pair)
			case !validClass(name):
				return nil, fmt.Errorf("rider groups, line %d: group %q: want 1 to 32 lower-case letters, digits or _", line, name)
			case g.byValue[value] != nil:
				return nil, fmt.Errorf("rider groups, line %d: value %q given twice", line, value)
			}
			rg := groups[name]
			if rg == nil {
				if len(groups) == MaxRiderGroups {
					return nil, fmt.Errorf("rider groups, line %d: group %q: at most %d groups", line, name, MaxRiderGroups)
				}
				rg = &riderGroup{id: uint8(len(g.list)), name: name, swipesIn: vocab.InGroup(vocab.SwipesIn, name), swipesOut: vocab.InGroup(vocab.SwipesOut, name),
					trips: vocab.InGroup(vocab.Trips, name), sec: vocab.InGroup(vocab.TripSeconds, name),
					legs: vocab.InGroup(vocab.LegsInferred, name), tripsInferred: vocab.InGroup(vocab.TripsInferred, name)}
				groups[name] = rg
				g.names = append(g.names, name)
				g.list = append(g.list, rg)
			}
			g.byValue[value] = rg
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(g.byValue) == 0 {
		return nil, fmt.Errorf("rider groups: no value=group pair")
	}
	slices.Sort(g.names)
	return g, nil
}

// Names lists the groups, sorted.
func (g *RiderGroups) Names() []string { return slices.Clone(g.names) }

// named returns the group of a name, nil when there is none: an open leg
// of a group the map no longer names counts in no group.
func (g *RiderGroups) named(name string) *riderGroup {
	if g == nil || name == "" {
		return nil
	}
	for _, rg := range g.list[1:] {
		if rg.name == name {
			return rg
		}
	}
	return nil
}

// byID returns the group of an id, nil for 0.
func (g *RiderGroups) byID(id uint8) *riderGroup {
	if g == nil || id == 0 {
		return nil
	}
	return g.list[id]
}

// of returns the group of a category, nil for none.
func (g *RiderGroups) of(value string) *riderGroup {
	if g == nil || value == "" {
		return nil
	}
	return g.byValue[value]
}
