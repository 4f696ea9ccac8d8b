package geo

import (
	"fmt"
	"testing"

	"github.com/uber/h3-go/v4"
)

// The registry holds no order of a line's stations: the network links
// them along the line however their ids run, keeps a branch, and joins
// lines where stations share a name or lie a short walk apart.
func TestNetworkLinksLinesInOrder(t *testing.T) {
	r := New(9)
	err := r.PutStations([]Station{
		{ID: "c", Name: "C", Line: "A", Lat: 30.25, Lng: 120.12},
		{ID: "a", Name: "A", Line: "A", Lat: 30.25, Lng: 120.10},
		{ID: "d", Name: "D", Line: "A", Lat: 30.25, Lng: 120.13},
		{ID: "b", Name: "B", Line: "A", Lat: 30.25, Lng: 120.11},
		{ID: "e", Name: "E", Line: "A", Lat: 30.26, Lng: 120.12}, // a branch at c
		{ID: "x", Name: "C", Line: "B", Lat: 30.24, Lng: 120.12}, // C again: a transfer by name
		{ID: "y", Name: "Y", Line: "B", Lat: 30.23, Lng: 120.12},
		{ID: "z", Name: "Z", Line: "C", Lat: 30.2302, Lng: 120.1202}, // beside y: a transfer by walk
	})
	if err != nil {
		t.Fatal(err)
	}
	n := NewNetwork(r.Stations())
	var line string
	for _, l := range n.Lines["A"] {
		lk := n.Links[l]
		line += fmt.Sprintf("%s-%s ", n.Stations[n.Nodes[lk.A].Station].ID, n.Stations[n.Nodes[lk.B].Station].ID)
	}
	if line != "a-b b-c c-d c-e " {
		t.Errorf("line A: %s; want a-b b-c c-d c-e", line)
	}
	steps, ok := n.Path(cellOf(r, "a"), cellOf(r, "z"))
	var rode []string
	for _, st := range steps {
		lk := n.Links[st.Link]
		from, to := lk.A, lk.B
		if !st.Forward {
			from, to = to, from
		}
		rode = append(rode, n.Stations[n.Nodes[from].Station].ID+">"+n.Stations[n.Nodes[to].Station].ID)
	}
	if !ok || fmt.Sprint(rode) != "[a>b b>c x>y]" {
		t.Errorf("path a to z: %v %v; want a>b b>c, a transfer to x, x>y, a walk to z", rode, ok)
	}
}

func cellOf(r *Registry, station string) h3.Cell {
	c, _ := r.StationCell(station)
	return c
}
