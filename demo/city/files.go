package city

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// WriteFiles writes the events of the simulated minutes [from, to) (from
// zero: the city's Start) into dir as swipes, counts and footfall files in
// format "ndjson" or "csv" (with header rows), next to the registry files
// stations.csv, sensors.csv and sites.geojson.
func (c *City) WriteFiles(dir string, from, to time.Time, format string) error {
	var appendEvent func([]byte, *Event) []byte
	switch format {
	case "ndjson":
		appendEvent = AppendNDJSON
	case "csv":
		appendEvent = AppendCSV
	default:
		return fmt.Errorf("city: unknown file format %q (want ndjson or csv)", format)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, body := range map[string][]byte{
		"stations.csv":  c.StationsCSV(),
		"sensors.csv":   c.SensorsCSV(),
		"sites.geojson": c.SitesGeoJSON(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return err
		}
	}
	var files [KindFootfall + 1]*os.File
	var ws [KindFootfall + 1]*bufio.Writer
	closeAll := func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}
	for _, k := range Kinds {
		f, err := os.Create(filepath.Join(dir, k.String()+"."+format))
		if err != nil {
			closeAll()
			return err
		}
		files[k], ws[k] = f, bufio.NewWriterSize(f, 1<<20)
		if format == "csv" {
			ws[k].WriteString(CSVHeader(k))
		}
	}
	if from.IsZero() {
		from = c.cfg.Start
	}
	var buf []byte
	var werr error
	for t := from.Truncate(time.Minute); t.Before(to) && werr == nil; t = t.Add(time.Minute) {
		c.Minute(t, func(e *Event) {
			buf = appendEvent(buf[:0], e)
			if _, err := ws[e.Kind].Write(buf); err != nil && werr == nil {
				werr = err
			}
		})
	}
	for _, k := range Kinds {
		if err := ws[k].Flush(); err != nil && werr == nil {
			werr = err
		}
		if err := files[k].Close(); err != nil && werr == nil {
			werr = err
		}
	}
	return werr
}
