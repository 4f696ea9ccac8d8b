// Package geo holds flowd's geometry: H3 cells and the integer ranges their
// descendants occupy, bounding boxes and polygons turned into cell sets, and
// the registries (stations, sensors, sites) that place events on the map,
// and the metro network built from the stations (network.go: each line in
// order, transfers, shortest paths) that section loads are assigned on.
//
// geo knows nothing of storage or HTTP: it turns what people send (a bbox, a
// GeoJSON area, a stops.txt) into cells and cell ranges that the store scans.
package geo
