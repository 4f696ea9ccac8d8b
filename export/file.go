package export

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// writeDay writes a day's tables and then its manifest into dir.
func writeDay(dir string, f *fetch, m *Manifest) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	files := map[string][]byte{}
	var order []string
	for _, t := range []*table{f.cellTable(), f.stationTable(), f.odTable()} {
		csvName, geoName := t.name+".csv", t.name+".geojson"
		files[csvName], files[geoName] = t.csv(), t.geoJSON()
		order = append(order, csvName, geoName)
		m.addTable(t, files, csvName, geoName)
	}
	for _, name := range order {
		if err := writeFile(dir, name, files[name]); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic("BUG: a manifest that does not marshal: " + err.Error())
	}
	if err := writeFile(dir, ManifestName, append(data, '\n')); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeFile writes data to dir/name through a temporary file that is
// fsynced and renamed into place, so that a reader sees the old file or
// the new one, never half of one.
func writeFile(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		return fmt.Errorf("export: writing %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("export: syncing %s: %w", dir, err)
	}
	return nil
}
