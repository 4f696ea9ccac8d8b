package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/flowd/flowd/privacy"
)

// Manifest describes one day's export: what each file holds and how its
// figures were released. It holds nothing that changes when the export is
// run again (no time of writing, no budget spent), so that a re-run gives
// the same bytes, and no secret: the noise key is named by its id only.
type Manifest struct {
	Format string `json:"format"`
	Day    string `json:"day"`
	From   string `json:"from"`
	To     string `json:"to"`
	// Privacy is the layer the figures passed, as the server stated it.
	Privacy ManifestPrivacy `json:"privacy"`
	Area    ManifestArea    `json:"area"`
	Tables  []ManifestTable `json:"tables"`
	// UnmatchedIn and UnmatchedOut are the day's taps with no partner,
	// city-wide, as the OD answer released them.
	UnmatchedIn  int64    `json:"unmatched_in"`
	UnmatchedOut int64    `json:"unmatched_out"`
	Notes        []string `json:"notes"`
}

// ManifestPrivacy states the mechanism and its parameters.
type ManifestPrivacy struct {
	Mechanism string  `json:"mechanism"`
	Epsilon   float64 `json:"epsilon"`
	K         int64   `json:"k"`
	// The granularity floors: the finest time bins and resolution any
	// caller below admin is given.
	PeopleStep   string  `json:"people_step"`
	LinkedStep   string  `json:"linked_step"`
	FinestRes    int     `json:"finest_res"`
	PyramidRes   []int   `json:"pyramid_res"`
	ReleaseDelay string  `json:"release_delay"`
	TripWindow   string  `json:"trip_window"`
	BudgetPerDay float64 `json:"budget_per_token_day"`
	NoiseKeyID   string  `json:"noise_key_id"`
	Guarantee    string  `json:"guarantee"`
}

// ManifestArea is where the cell tables cover.
type ManifestArea struct {
	BBox    string   `json:"bbox"`
	Res     int      `json:"res"`
	Metrics []string `json:"metrics"`
}

// ManifestTable is one table and its files.
type ManifestTable struct {
	Name        string         `json:"name"`
	What        string         `json:"what"`
	Granularity string         `json:"granularity"`
	Columns     []string       `json:"columns"`
	Rows        int            `json:"rows"`
	Files       []ManifestFile `json:"files"`
}

// ManifestFile names a file and its SHA-256.
type ManifestFile struct {
	Name   string `json:"name"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// ManifestName is the manifest's file name in a day's directory; it is
// written last, so a directory with one is complete.
const ManifestName = "manifest.json"

func newManifest(c Config, day time.Time, t privacy.Terms, f *fetch) *Manifest {
	return &Manifest{
		Format: "flowd open data 1",
		Day:    day.Format(time.DateOnly), From: day.Format(time.RFC3339), To: day.Add(24 * time.Hour).Format(time.RFC3339),
		Privacy: ManifestPrivacy{
			Mechanism: t.Noise, Epsilon: t.Epsilon, K: t.K,
			PeopleStep: t.PeopleStep, LinkedStep: t.LinkedStep, FinestRes: t.FinestRes, PyramidRes: t.PyramidRes,
			ReleaseDelay: t.ReleaseDelay, TripWindow: t.TripWindow, BudgetPerDay: t.Budget, NoiseKeyID: t.NoiseKeyID,
			Guarantee: "each card-derived figure is epsilon-differentially private for one tap or trip; figures under k after noise are withheld; see docs/privacy.md",
		},
		Area:         ManifestArea{BBox: f.bbox, Res: c.Res, Metrics: f.metrics},
		UnmatchedIn:  f.unmatched[0],
		UnmatchedOut: f.unmatched[1],
		Notes: []string{
			"Every figure is one a read token of this server is answered: cells by GET /api/v1/density, stations by GET /api/v1/series, pairs by GET /api/v1/od?by=station.",
			"A card-derived figure of 0 means nothing, or a figure under k after noise, withheld; the files do not say which. Detector and footfall counts are exact.",
			"An OD pair withheld is not listed; mean_minutes is empty where the pair's travel time was withheld.",
			"Hours and days are UTC.",
		},
	}
}

// addTable records a table's files in the manifest.
func (m *Manifest) addTable(t *table, files map[string][]byte, names ...string) {
	mt := ManifestTable{Name: t.name, What: t.what, Granularity: t.granularity, Columns: t.header, Rows: len(t.rows)}
	for _, n := range names {
		sum := sha256.Sum256(files[n])
		mt.Files = append(mt.Files, ManifestFile{Name: n, Bytes: len(files[n]), SHA256: hex.EncodeToString(sum[:])})
	}
	m.Tables = append(m.Tables, mt)
}

func jsonMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}
