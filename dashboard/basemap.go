package dashboard

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// Basemap is what the page draws under the hexagons besides its offline
// context, which it always draws: the embedded land and water of
// static/basemap/land.geojson and the registries' metro lines, sensors
// and site outlines. Over the land, when -basemap says so, go a local
// PMTiles archive that flowd serves at BasemapTilePath, a raster tile URL
// template, or a MapLibre style URL (which replaces the embedded land).
type Basemap struct {
	Kind string // "offline", "pmtiles", "tiles" or "style"
	URL  string // the tile template or style URL the page loads
	pm   *PMTiles
}

// BasemapTilePath is where flowd serves the tiles of a local archive.
const BasemapTilePath = "/basemap/{z}/{x}/{y}"

// ParseBasemap reads -basemap: empty for the offline layer alone, a
// .pmtiles file, an http(s) URL template with {z}, {x} and {y} for raster
// tiles, or another http(s) URL for a style.
func ParseBasemap(spec string) (*Basemap, error) {
	switch {
	case spec == "":
		return &Basemap{Kind: "offline"}, nil
	case strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://"):
		if strings.Contains(spec, "{z}") {
			if !strings.Contains(spec, "{x}") || !strings.Contains(spec, "{y}") {
				return nil, fmt.Errorf("-basemap %q: a tile URL needs {z}, {x} and {y}", spec)
			}
			return &Basemap{Kind: "tiles", URL: spec}, nil
		}
		return &Basemap{Kind: "style", URL: spec}, nil
	}
	if _, err := os.Stat(spec); err != nil {
		return nil, fmt.Errorf("-basemap %q: want a .pmtiles file, a tile URL with {z}/{x}/{y} or a style URL: %w", spec, err)
	}
	pm, err := OpenPMTiles(spec)
	if err != nil {
		return nil, fmt.Errorf("-basemap: %w", err)
	}
	return &Basemap{Kind: "pmtiles", URL: BasemapTilePath, pm: pm}, nil
}

// Close closes a local archive.
func (b *Basemap) Close() error {
	if b == nil || b.pm == nil {
		return nil
	}
	return b.pm.Close()
}

// config is the base map as GET /api/v1/dashboard/config tells the page.
func (b *Basemap) config() map[string]any {
	c := map[string]any{"kind": b.Kind, "url": b.URL}
	if b.pm != nil {
		h := b.pm.hdr
		c["type"], c["minzoom"], c["maxzoom"] = b.pm.TileType(), h.minZoom, h.maxZoom
		if b := h.bounds; b[0] < b[2] && b[1] < b[3] {
			c["bounds"] = b // an archive without bounds leaves them out
		}
		var meta struct {
			VectorLayers json.RawMessage `json:"vector_layers"`
			Attribution  string          `json:"attribution"`
		}
		if json.Unmarshal(b.pm.Metadata, &meta) == nil {
			c["vector_layers"], c["attribution"] = meta.VectorLayers, meta.Attribution
		}
	}
	return c
}

var tileContentTypes = map[string]string{
	"mvt": "application/vnd.mapbox-vector-tile", "png": "image/png", "jpg": "image/jpeg",
	"webp": "image/webp", "avif": "image/avif",
}

// serveTile serves GET /basemap/{z}/{x}/{y} from the local archive: 204
// where it holds no tile, as MapLibre expects of an empty one.
func (b *Basemap) serveTile(ctx *fasthttp.RequestCtx) {
	var zxy [3]uint64
	for i, name := range []string{"z", "x", "y"} {
		v, _ := ctx.UserValue(name).(string)
		n, err := strconv.ParseUint(strings.TrimSuffix(v, "."+b.pm.TileType()), 10, 32)
		if err != nil || (i == 0 && n > 26) {
			ctx.Error(fmt.Sprintf("tile %s %q: want a zoom from 0 to 26 and tile numbers", name, v), fasthttp.StatusBadRequest)
			return
		}
		zxy[i] = n
	}
	data, err := b.pm.Tile(uint8(zxy[0]), uint32(zxy[1]), uint32(zxy[2]))
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	ctx.Response.Header.Set("Cache-Control", "public, max-age=3600")
	if data == nil {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	switch b.pm.hdr.tileComp {
	case pmCompGzip:
		ctx.Response.Header.Set("Content-Encoding", "gzip")
	case pmCompZstd:
		// Not every browser takes zstd: send the tile plain.
		if data, err = decompress(pmCompZstd, data); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return
		}
	}
	ctx.SetContentType(tileContentTypes[b.pm.TileType()])
	ctx.SetBody(data)
}
