package geo

import (
	"cmp"
	"container/heap"
	"math"
	"slices"

	"github.com/uber/h3-go/v4"
)

// Network is the metro network built from the station registry, which
// holds no order of a line's stations: each line's stations are linked by
// the shortest tree that joins them (Prim's, as the dashboard draws them),
// which is the line in order with its branches; a station of several lines
// is on each. A node is a station on one line. Nodes of different lines
// at one station, at stations of one name, or at stations within
// TransferWalkKm, are joined by transfers.
type Network struct {
	Stations []Station
	Nodes    []Node
	// Links are the links of every line, each once, its A before its B
	// in the line's order; Lines lists each line's links in order.
	Links []Link
	Lines map[string][]int
	adj   [][]arc
	// atCell lists the nodes of the station at each cell.
	atCell map[h3.Cell][]int
}

// Node is a station on one line.
type Node struct {
	Station int // index into Stations
	Line    string
}

// Link joins two consecutive nodes of a line.
type Link struct {
	A, B int // nodes
	Km   float64
}

// arc is one way along a link (link ≥ 0) or a transfer (link -1).
type arc struct {
	to   int
	link int
	km   float64
}

// Defaults of the network: how far apart two stations may be for a
// transfer between them (as far as rows of one name are merged into one
// station), and what a transfer costs in the shortest path, as km of
// riding (a change of platform, a walk and the wait for the next train:
// about 4 minutes at a metro's 30 km/h).
const (
	TransferWalkKm = sameStationKm
	TransferKm     = 2.0
)

// NewNetwork builds the network of the stations that have a line.
func NewNetwork(stations []Station) *Network {
	n := &Network{Lines: map[string][]int{}, atCell: map[h3.Cell][]int{}}
	byLine := map[string][]int{}
	for _, st := range stations {
		if len(st.Lines()) == 0 {
			continue
		}
		si := len(n.Stations)
		n.Stations = append(n.Stations, st)
		for _, l := range st.Lines() {
			node := len(n.Nodes)
			n.Nodes = append(n.Nodes, Node{Station: si, Line: l})
			byLine[l] = append(byLine[l], node)
			n.atCell[st.Cell] = append(n.atCell[st.Cell], node)
		}
	}
	n.adj = make([][]arc, len(n.Nodes))
	for _, l := range slices.Sorted(func(yield func(string) bool) {
		for l := range byLine {
			if !yield(l) {
				return
			}
		}
	}) {
		n.Lines[l] = []int{}
		for _, lk := range n.lineLinks(byLine[l]) {
			li := len(n.Links)
			n.Links = append(n.Links, lk)
			n.Lines[l] = append(n.Lines[l], li)
			n.adj[lk.A] = append(n.adj[lk.A], arc{lk.B, li, lk.Km})
			n.adj[lk.B] = append(n.adj[lk.B], arc{lk.A, li, lk.Km})
		}
	}
	for a := range n.Nodes {
		for b := a + 1; b < len(n.Nodes); b++ {
			na, nb := n.Nodes[a], n.Nodes[b]
			if na.Line == nb.Line {
				continue
			}
			sa, sb := n.Stations[na.Station], n.Stations[nb.Station]
			km := n.km(a, b)
			if na.Station == nb.Station || sa.Name == sb.Name || km <= TransferWalkKm {
				n.adj[a] = append(n.adj[a], arc{b, -1, km + TransferKm})
				n.adj[b] = append(n.adj[b], arc{a, -1, km + TransferKm})
			}
		}
	}
	return n
}

func (n *Network) km(a, b int) float64 {
	sa, sb := n.Stations[n.Nodes[a].Station], n.Stations[n.Nodes[b].Station]
	return DistanceKm(sa.Lat, sa.Lng, sb.Lat, sb.Lng)
}

// lineLinks links a line's nodes by Prim's tree from its first node by
// station id, then lists the links in line order: depth first from an end
// of the line (the end first by station id), each link from the node met
// first.
func (n *Network) lineLinks(nodes []int) []Link {
	slices.SortFunc(nodes, func(a, b int) int {
		return cmp.Compare(n.Stations[n.Nodes[a].Station].ID, n.Stations[n.Nodes[b].Station].ID)
	})
	if len(nodes) < 2 {
		return nil
	}
	in := map[int]bool{nodes[0]: true}
	tree := map[int][]int{}
	for len(in) < len(nodes) {
		best, bu, bv := math.Inf(1), -1, -1
		for u := range in {
			for _, v := range nodes {
				if !in[v] {
					if d := n.km(u, v); d < best || d == best && v < bv {
						best, bu, bv = d, u, v
					}
				}
			}
		}
		in[bv] = true
		tree[bu] = append(tree[bu], bv)
		tree[bv] = append(tree[bv], bu)
	}
	start := nodes[0]
	for _, v := range nodes {
		if len(tree[v]) == 1 {
			start = v
			break
		}
	}
	var links []Link
	seen := map[int]bool{start: true}
	var walk func(u int)
	walk = func(u int) {
		next := slices.Clone(tree[u])
		slices.SortFunc(next, func(a, b int) int { return cmp.Compare(n.km(u, a), n.km(u, b)) })
		for _, v := range next {
			if !seen[v] {
				seen[v] = true
				links = append(links, Link{A: u, B: v, Km: n.km(u, v)})
				walk(v)
			}
		}
	}
	walk(start)
	return links
}

// Arc is one way between two nodes: along a link of a line (Link ≥ 0)
// or a transfer (Link -1), with its cost in km.
type Arc struct {
	From, To, Link int
	Km             float64
}

// Arcs lists every arc of the network, for checks from outside.
func (n *Network) Arcs() []Arc {
	var arcs []Arc
	for from, as := range n.adj {
		for _, a := range as {
			arcs = append(arcs, Arc{from, a.to, a.link, a.km})
		}
	}
	return arcs
}

// NodesAt returns the nodes of the station at a cell, none when no
// station of a line is there.
func (n *Network) NodesAt(c h3.Cell) []int { return n.atCell[c] }

// Step is one link of a path, taken from A to B (Forward) or back.
type Step struct {
	Link    int
	Forward bool
}

// Path returns the links of the shortest path between the stations at two
// cells, riding km plus TransferKm a transfer, and false when either cell
// holds no station of a line or no path joins them. Ties go to the path
// found first from the lowest nodes, so that answers are stable.
func (n *Network) Path(from, to h3.Cell) ([]Step, bool) {
	srcs, dsts := n.atCell[from], n.atCell[to]
	if len(srcs) == 0 || len(dsts) == 0 {
		return nil, false
	}
	dist := make([]float64, len(n.Nodes))
	prev := make([]arc, len(n.Nodes)) // the arc that reached a node, to = the node it came from
	for i := range dist {
		dist[i] = math.Inf(1)
		prev[i] = arc{to: -1}
	}
	q := &nodeHeap{}
	for _, s := range srcs {
		dist[s] = 0
		heap.Push(q, nodeDist{s, 0})
	}
	for q.Len() > 0 {
		nd := heap.Pop(q).(nodeDist)
		if nd.d > dist[nd.node] {
			continue
		}
		for _, a := range n.adj[nd.node] {
			if d := nd.d + a.km; d < dist[a.to] {
				dist[a.to] = d
				prev[a.to] = arc{to: nd.node, link: a.link, km: a.km}
				heap.Push(q, nodeDist{a.to, d})
			}
		}
	}
	end := -1
	for _, d := range dsts {
		if !math.IsInf(dist[d], 1) && (end < 0 || dist[d] < dist[end]) {
			end = d
		}
	}
	if end < 0 {
		return nil, false
	}
	var steps []Step
	for v := end; prev[v].to >= 0; v = prev[v].to {
		if l := prev[v].link; l >= 0 {
			steps = append(steps, Step{Link: l, Forward: n.Links[l].B == v})
		}
	}
	slices.Reverse(steps)
	return steps, true
}

type nodeDist struct {
	node int
	d    float64
}

type nodeHeap []nodeDist

func (h nodeHeap) Len() int { return len(h) }
func (h nodeHeap) Less(i, j int) bool {
	return h[i].d < h[j].d || h[i].d == h[j].d && h[i].node < h[j].node
}
func (h nodeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *nodeHeap) Push(x any)   { *h = append(*h, x.(nodeDist)) }
func (h *nodeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// DistanceKm is the great-circle distance between two points in degrees.
func DistanceKm(lat1, lng1, lat2, lng2 float64) float64 {
	const earthKm = 6371.0088
	rad := math.Pi / 180
	dlat, dlng := (lat2-lat1)*rad, (lng2-lng1)*rad
	a := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlng/2)*math.Sin(dlng/2)
	return 2 * earthKm * math.Asin(math.Min(1, math.Sqrt(a)))
}
