package geo

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/uber/h3-go/v4"
)

// MaxSiteCells bounds the cells of one site's area at the base resolution;
// a larger site needs a coarser base resolution or a smaller area.
const MaxSiteCells = 50000

// Registry holds the stations, sensors and sites events are located by.
// Readers, on the ingest hot path, load an immutable snapshot through an
// atomic pointer and take no lock; writers build a new snapshot and swap it.
type Registry struct {
	res  int
	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[snapshot]
}

// snapshot is one immutable state of a Registry; lists are sorted by id.
type snapshot struct {
	stations    map[string]Station
	sensors     map[string]Sensor
	sites       map[string]Site
	stationList []Station
	sensorList  []Sensor
	siteList    []Site
	// The places of stations and sensors by id, for the ingest hot path
	// (see placeIndex).
	stationCells *placeIndex
	sensorCells  *placeIndex
	sitePlaces   map[string]Place // a site's footfall, at its centroid
	// byLine lists the stations of each line, a transfer station under
	// each of its lines, in id order.
	byLine map[string][]Station
	// gen counts the snapshots, so that what is built from one (a metro
	// network) is rebuilt only when it changes.
	gen uint64
}

// New returns an empty Registry placing entries at base resolution res.
// It panics if res is not an H3 resolution: the caller configures it.
func New(res int) *Registry {
	if err := checkRes(res); err != nil {
		panic("BUG: geo.New: " + err.Error())
	}
	r := &Registry{res: res}
	r.snap.Store(&snapshot{})
	return r
}

// Generation numbers the registry's state; it changes with every change.
func (r *Registry) Generation() uint64 { return r.snap.Load().gen }

// StationsOnLine returns the stations of a line, in id order; callers
// must not change the slice.
func (r *Registry) StationsOnLine(line string) []Station { return r.snap.Load().byLine[line] }

// Res returns the base resolution at which entries' cells are computed.
func (r *Registry) Res() int { return r.res }

// Station returns the station with id.
func (r *Registry) Station(id string) (Station, bool) {
	s, ok := r.snap.Load().stations[id]
	return s, ok
}

// Sensor returns the sensor with id.
func (r *Registry) Sensor(id string) (Sensor, bool) {
	s, ok := r.snap.Load().sensors[id]
	return s, ok
}

// StationCell returns the cell of the station with id.
func (r *Registry) StationCell(id string) (h3.Cell, bool) {
	p, ok := r.snap.Load().stationCells.get(id)
	return p.Cell, ok
}

// SitePlace returns where the footfall of the site with id is kept: at
// its centroid's cell, and keyed by its centroid when another site's
// centroid shares the cell.
func (r *Registry) SitePlace(id string) (Place, bool) {
	p, ok := r.snap.Load().sitePlaces[id]
	return p, ok
}

// StationPlace returns where the taps of the station with id are kept.
func (r *Registry) StationPlace(id string) (Place, bool) {
	return r.snap.Load().stationCells.get(id)
}

// SensorCell returns the cell of the sensor with id.
func (r *Registry) SensorCell(id string) (h3.Cell, bool) {
	p, ok := r.snap.Load().sensorCells.get(id)
	return p.Cell, ok
}

// Place is where a sensor's counts or a station's taps are kept: its
// cell, and for one sharing its cell with another of its kind, a key of
// its own, under which its figures are kept apart too: its position's
// cell at resolution 15, a valid cell of about a square metre (two at one
// position share it).
type Place struct {
	Cell h3.Cell
	Key  h3.Cell // 0 for one alone in its cell
}

// SensorPlace returns where the counts of the sensor with id are kept.
func (r *Registry) SensorPlace(id string) (Place, bool) {
	return r.snap.Load().sensorCells.get(id)
}

// SensorPlaces is SensorPlace of up to 16 sensor ids at once (places[i]
// and found[i] for ids[i]), their lookups made together so that their
// cache misses overlap (see placeIndex.getMany): a feed that names
// another sensor on every line then waits for memory once a group rather
// than once a line.
func (r *Registry) SensorPlaces(ids []string, places []Place, found []bool) {
	r.snap.Load().sensorCells.getMany(ids, places, found)
}

// Site returns the site with id. Its Area and Cells are shared: read only.
func (r *Registry) Site(id string) (Site, bool) {
	s, ok := r.snap.Load().sites[id]
	return s, ok
}

// Stations returns all stations sorted by id.
func (r *Registry) Stations() []Station { return slices.Clone(r.snap.Load().stationList) }

// Sensors returns all sensors sorted by id.
func (r *Registry) Sensors() []Sensor { return slices.Clone(r.snap.Load().sensorList) }

// Sites returns all sites sorted by id. Their Areas and Cells are shared:
// read only.
func (r *Registry) Sites() []Site { return slices.Clone(r.snap.Load().siteList) }

// PutStations replaces the whole station set, computing each Cell. On error
// the registry is unchanged.
func (r *Registry) PutStations(stations []Station) error {
	m, list, err := r.stations(stations)
	if err != nil {
		return err
	}
	r.update(func(s *snapshot) { s.stations, s.stationList = m, list })
	return nil
}

// PutSensors replaces the whole sensor set, computing each Cell. On error
// the registry is unchanged.
func (r *Registry) PutSensors(sensors []Sensor) error {
	m, list, err := r.sensors(sensors)
	if err != nil {
		return err
	}
	r.update(func(s *snapshot) { s.sensors, s.sensorList = m, list })
	return nil
}

// PutSites replaces the whole site set, computing each Cell and Cells. On
// error the registry is unchanged.
func (r *Registry) PutSites(sites []Site) error {
	m, list, err := r.sites(sites)
	if err != nil {
		return err
	}
	r.update(func(s *snapshot) { s.sites, s.siteList = m, list })
	return nil
}

// The sets of a registry, as the API and its files name them.
const (
	SetStations = "stations"
	SetSensors  = "sensors"
	SetSites    = "sites"
)

// PutFile reads a file of one set in whichever format it has (see
// ReadStations, ReadSensors, ReadSitesGeoJSON) and replaces the set with
// it; name is used for sniffing and in errors. It returns the number of
// entries read. A file with no entry is refused (ErrNoEntries) and the set
// kept: see Clear.
func (r *Registry) PutFile(set, name string, rd io.Reader) (int, error) {
	n, _, err := r.PutFileNoted(set, name, rd)
	return n, err
}

// PutFileNoted is PutFile that also returns what the reader did that the
// file's author may not expect: the rows of one name merged into one
// station.
func (r *Registry) PutFileNoted(set, name string, rd io.Reader) (n int, notes []string, err error) {
	note := func(s string) { notes = append(notes, name+": "+s) }
	br := bufio.NewReader(rd)
	if blank(br) {
		return 0, nil, fmt.Errorf("%s is empty: it %w", name, ErrNoEntries)
	}
	rd = br
	switch set {
	case SetStations:
		var st []Station
		if st, err = readStations(name, rd, note); err == nil && len(st) > 0 {
			err = r.PutStations(st)
		}
		n = len(st)
	case SetSensors:
		var ss []Sensor
		if ss, err = ReadSensors(name, rd); err == nil && len(ss) > 0 {
			err = r.PutSensors(ss)
		}
		n = len(ss)
	case SetSites:
		var ss []Site
		if ss, err = ReadSitesGeoJSON(rd); err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		} else if len(ss) > 0 {
			err = r.PutSites(ss)
		}
		n = len(ss)
	default:
		panic("BUG: no registry set " + set)
	}
	if err == nil && n == 0 {
		err = fmt.Errorf("%s %w", name, ErrNoEntries)
	}
	if err != nil {
		return 0, nil, err
	}
	return n, notes, nil
}

// blank reports whether br holds nothing but white space, leaving what it
// does hold to be read.
func blank(br *bufio.Reader) bool {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return err == io.EOF // another error is for the reader to meet
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			br.UnreadByte()
			return false
		}
	}
}

// Clear empties one set.
func (r *Registry) Clear(set string) {
	r.update(func(s *snapshot) {
		switch set {
		case SetStations:
			s.stations, s.stationList = map[string]Station{}, nil
		case SetSensors:
			s.sensors, s.sensorList = map[string]Sensor{}, nil
		case SetSites:
			s.sites, s.siteList = map[string]Site{}, nil
		default:
			panic("BUG: no registry set " + set)
		}
	})
}

// update swaps in a copy of the current snapshot changed by f.
func (r *Registry) update(f func(*snapshot)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := *r.snap.Load()
	next.gen++
	f(&next)
	places := make(map[string]Place, len(next.stationList))
	perCell := map[h3.Cell]int{}
	for _, st := range next.stationList {
		perCell[st.Cell]++
	}
	for _, st := range next.stationList {
		places[st.ID] = placeOf(st.Cell, st.Lat, st.Lng, perCell)
	}
	next.stationCells = newPlaceIndex(places)
	next.byLine = map[string][]Station{}
	for _, st := range next.stationList {
		for _, l := range st.Lines() {
			next.byLine[l] = append(next.byLine[l], st)
		}
	}
	places = make(map[string]Place, len(next.sensorList))
	clear(perCell)
	for _, sn := range next.sensorList {
		perCell[sn.Cell]++
	}
	for _, sn := range next.sensorList {
		places[sn.ID] = placeOf(sn.Cell, sn.Lat, sn.Lng, perCell)
	}
	next.sensorCells = newPlaceIndex(places)
	next.sitePlaces = make(map[string]Place, len(next.siteList))
	clear(perCell)
	for _, st := range next.siteList {
		perCell[st.Cell]++
	}
	for _, st := range next.siteList {
		if perCell[st.Cell] > 1 {
			c := st.Area.Centroid()
			next.sitePlaces[st.ID] = placeOf(st.Cell, c.Lat, c.Lng, perCell)
		} else {
			next.sitePlaces[st.ID] = Place{Cell: st.Cell}
		}
	}
	r.snap.Store(&next)
}

// placeOf is the Place of an entry at cell and a position, keyed when
// perCell counts more than one entry of its kind in the cell.
func placeOf(cell h3.Cell, lat, lng float64, perCell map[h3.Cell]int) Place {
	p := Place{Cell: cell}
	if perCell[cell] > 1 {
		p.Key = h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, 15)
	}
	return p
}

func (r *Registry) stations(in []Station) (map[string]Station, []Station, error) {
	return indexPoints("station", in, r.res, func(s *Station) (string, float64, float64, *h3.Cell) { return s.ID, s.Lat, s.Lng, &s.Cell })
}

func (r *Registry) sensors(in []Sensor) (map[string]Sensor, []Sensor, error) {
	return indexPoints("sensor", in, r.res, func(s *Sensor) (string, float64, float64, *h3.Cell) { return s.ID, s.Lat, s.Lng, &s.Cell })
}

// indexPoints keys entries located by one position (stations, sensors) by
// id, setting each one's cell at res, and lists them sorted by id. fields
// returns an entry's id, position and cell.
func indexPoints[T any](what string, in []T, res int, fields func(*T) (string, float64, float64, *h3.Cell)) (map[string]T, []T, error) {
	m := make(map[string]T, len(in))
	for i := range in {
		v := in[i]
		id, lat, lng, cell := fields(&v)
		if err := CheckID(id); err != nil {
			return nil, nil, fmt.Errorf("%s %d: %w", what, i+1, err)
		}
		if _, dup := m[id]; dup {
			return nil, nil, fmt.Errorf("%s %q: id given twice", what, id)
		}
		c, err := CellOf(lat, lng, res)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %q: %w", what, id, err)
		}
		*cell = c
		m[id] = v
	}
	return m, sortedValues(m, func(v T) string { id, _, _, _ := fields(&v); return id }), nil
}

func (r *Registry) sites(in []Site) (map[string]Site, []Site, error) {
	m := make(map[string]Site, len(in))
	for _, s := range in {
		if err := s.check(); err != nil {
			return nil, nil, err
		}
		if _, dup := m[s.ID]; dup {
			return nil, nil, fmt.Errorf("site %q: id given twice", s.ID)
		}
		cells, err := s.Area.Cells(r.res, MaxSiteCells)
		if err != nil {
			return nil, nil, fmt.Errorf("site %q: %w", s.ID, err)
		}
		s.Cells = cells
		s.Cell = h3.LatLngToCell(s.Area.Centroid(), r.res)
		m[s.ID] = s
	}
	return m, sortedValues(m, func(s Site) string { return s.ID }), nil
}

func sortedValues[T any](m map[string]T, id func(T) string) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	return out
}

// Registry file names inside the directory given to Save and Load.
const (
	StationsFile = "stations.json"
	SensorsFile  = "sensors.json"
	SitesFile    = "sites.geojson"
)

// Save writes the three sets to dir, each file atomically (temp file, fsync,
// rename, fsync of dir), so a crash leaves the old or the new file whole.
func (r *Registry) Save(dir string) error {
	s := r.snap.Load()
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{StationsFile, func(w io.Writer) error { return writeJSONList(w, s.stationList) }},
		{SensorsFile, func(w io.Writer) error { return writeJSONList(w, s.sensorList) }},
		{SitesFile, func(w io.Writer) error { return WriteSitesGeoJSON(w, s.siteList) }},
	}
	for _, f := range files {
		if err := writeFileAtomic(dir, f.name, f.write); err != nil {
			return err
		}
	}
	return nil
}

// Load reads the files Save writes from dir and replaces the registry's
// sets with them; a missing file leaves its set empty. On error the registry
// is unchanged.
func (r *Registry) Load(dir string) error {
	var (
		next     snapshot
		stations []Station
		sensors  []Sensor
		sites    []Site
	)
	err := readFile(dir, StationsFile, func(name string, f io.Reader) (err error) {
		stations, err = ReadStations(name, f)
		return err
	})
	if err == nil {
		err = readFile(dir, SensorsFile, func(name string, f io.Reader) (err error) {
			sensors, err = ReadSensors(name, f)
			return err
		})
	}
	if err == nil {
		err = readFile(dir, SitesFile, func(name string, f io.Reader) (err error) {
			sites, err = ReadSites(name, f)
			return err
		})
	}
	if err != nil {
		return err
	}
	if next.stations, next.stationList, err = r.stations(stations); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, StationsFile), err)
	}
	if next.sensors, next.sensorList, err = r.sensors(sensors); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, SensorsFile), err)
	}
	if next.sites, next.siteList, err = r.sites(sites); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, SitesFile), err)
	}
	r.update(func(s *snapshot) { *s = next })
	return nil
}

func readFile(dir, name string, read func(string, io.Reader) error) error {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return read(path, f)
}

// writeJSONList writes one element per line, so the files diff well.
func writeJSONList[T any](w io.Writer, list []T) error {
	var buf []byte
	buf = append(buf, '[')
	for i := range list {
		if i > 0 {
			buf = append(buf, ',')
		}
		b, err := json.Marshal(list[i])
		if err != nil {
			return err
		}
		buf = append(buf, '\n')
		buf = append(buf, b...)
	}
	buf = append(buf, "\n]\n"...)
	_, err := w.Write(buf)
	return err
}

// writeFileAtomic writes dir/name through a temp file that is fsynced and
// renamed into place, then fsyncs dir so the rename itself is durable.
func writeFileAtomic(dir, name string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
