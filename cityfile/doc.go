// Package cityfile reads the files cities publish as they are — wide
// tables with one column per sensor or site, AFC exports that name stations
// by a number joined to a coordinates file, GTFS-ride board_alight.txt,
// PeMS 5-minute station files — and writes each of their records as
// flowd's own CSV events, for `flowd import`. How a file maps is chosen by a
// layout name or a small JSON mapping file (docs/import.md), never by code:
// a new city's file needs a mapping, not a release.
//
// It knows nothing of HTTP or of the store: a Converter takes one record's
// fields and appends event lines, and says which cells were missing and
// which records it could not read, by line, field and value.
package cityfile
