// The base map: the context the page draws with no network at all — land
// and water embedded in flowd (Natural Earth, /basemap/land.geojson), the
// registries' metro lines, sensors and site outlines — and, over the land,
// what -basemap adds: a local PMTiles archive flowd serves, raster tiles or
// a style of its own.
export const LAND = '#f1eee6';
export const WATER = '#a9cbe0';
const METRO_COLORS = ['#c2255c', '#1971c2', '#2f9e44', '#e8590c', '#7048e8', '#0c8599', '#5c940d', '#862e9c', '#d6336c', '#364fc7'];

// baseStyle is the map's style before flowd's own layers: a style URL as
// it is, or the embedded land and water with any tiles over them.
export function baseStyle(cfg) {
  const bm = cfg.basemap || { kind: 'offline' };
  if (bm.kind === 'style') return bm.url;
  const style = {
    version: 8,
    sources: { land: { type: 'geojson', data: `${location.origin}/basemap/land.geojson` } },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': WATER } },
      { id: 'land', type: 'fill', source: 'land', paint: { 'fill-color': LAND } },
    ],
  };
  if (bm.kind === 'tiles') {
    style.sources.base = { type: 'raster', tiles: [bm.url], tileSize: 256 };
    style.layers.push({ id: 'base', type: 'raster', source: 'base' });
  } else if (bm.kind === 'pmtiles') {
    addArchive(style, bm);
  }
  return style;
}

// addArchive draws flowd's local archive: raster tiles as they are, vector
// tiles as plain fills and lines, one pair per layer the archive lists.
function addArchive(style, bm) {
  const src = { tiles: [location.origin + bm.url], minzoom: bm.minzoom, maxzoom: bm.maxzoom, ...(bm.bounds ? { bounds: bm.bounds } : {}) };
  if (bm.type !== 'mvt') {
    style.sources.base = { type: 'raster', tileSize: 256, ...src };
    style.layers.push({ id: 'base', type: 'raster', source: 'base' });
    return;
  }
  style.sources.base = { type: 'vector', ...src };
  for (const l of bm.vector_layers || []) {
    const geom = (g) => ['==', ['geometry-type'], g];
    const water = /water|ocean|sea|lake|river/i.test(l.id);
    style.layers.push(
      { id: `base-${l.id}-fill`, type: 'fill', source: 'base', 'source-layer': l.id, filter: geom('Polygon'), paint: { 'fill-color': water ? WATER : '#e4e0d8', 'fill-opacity': 0.8 } },
      { id: `base-${l.id}-line`, type: 'line', source: 'base', 'source-layer': l.id, filter: geom('LineString'), paint: { 'line-color': water ? WATER : '#b8b2a7', 'line-width': 1 } },
    );
  }
}

// metroLines joins each line's stations: the shortest network that links
// them (a minimum spanning tree), which for a line without loops is its
// stations in line order, branches included. A transfer station lists
// its lines as "1,2".
export function metroLines(stations) {
  const byLine = new Map();
  for (const s of stations) {
    for (const l of (s.line || '').split(',').map((x) => x.trim()).filter(Boolean)) {
      if (!byLine.has(l)) byLine.set(l, []);
      byLine.get(l).push([s.lng, s.lat]);
    }
  }
  const names = [...byLine.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const features = names.filter((l) => byLine.get(l).length > 1).map((l, i) => ({
    type: 'Feature',
    properties: { line: l, color: METRO_COLORS[i % METRO_COLORS.length] },
    geometry: { type: 'MultiLineString', coordinates: spanningEdges(byLine.get(l)) },
  }));
  return { type: 'FeatureCollection', features };
}

// spanningEdges is Prim's tree over points, distances measured on the
// ground (longitude shrunk by the cosine of the latitude).
function spanningEdges(pts) {
  const k = Math.cos((pts[0][1] * Math.PI) / 180);
  const d = (a, b) => Math.hypot((a[0] - b[0]) * k, a[1] - b[1]);
  const best = pts.map((p) => d(p, pts[0]));
  const from = pts.map(() => 0);
  const done = pts.map((_, i) => i === 0);
  const edges = [];
  for (let n = 1; n < pts.length; n++) {
    let j = -1;
    for (let i = 0; i < pts.length; i++) if (!done[i] && (j < 0 || best[i] < best[j])) j = i;
    done[j] = true;
    edges.push([pts[from[j]], pts[j]]);
    for (let i = 0; i < pts.length; i++) {
      if (!done[i] && d(pts[i], pts[j]) < best[i]) { best[i] = d(pts[i], pts[j]); from[i] = j; }
    }
  }
  return edges;
}

// addContext draws the registries: sensors under the hexagons (before the
// layer hexID), metro lines and their stations over them.
export async function addContext(map, getJSON, hexID) {
  const get = async (url) => { try { return (await getJSON(url)) || []; } catch { return []; } };
  const [stations, sensors] = await Promise.all([get('/api/v1/stations'), get('/api/v1/sensors')]);
  const points = (list) => ({ type: 'FeatureCollection', features: list.map((s) => ({ type: 'Feature', properties: { id: s.id }, geometry: { type: 'Point', coordinates: [s.lng, s.lat] } })) });
  map.addSource('sensors', { type: 'geojson', data: points(sensors) });
  map.addLayer({ id: 'sensors', type: 'circle', source: 'sensors', paint: { 'circle-radius': 1.6, 'circle-color': '#6c7a89', 'circle-opacity': 0.7 } }, hexID);
  map.addSource('metro', { type: 'geojson', data: metroLines(stations) });
  map.addLayer({ id: 'metro-lines', type: 'line', source: 'metro', layout: { 'line-cap': 'round', 'line-join': 'round' }, paint: { 'line-color': ['get', 'color'], 'line-width': 3 } });
  map.addSource('stations', { type: 'geojson', data: points(stations) });
  map.addLayer({ id: 'metro-stations', type: 'circle', source: 'stations', minzoom: 10, paint: { 'circle-radius': 2.5, 'circle-color': '#fff', 'circle-stroke-color': '#343a40', 'circle-stroke-width': 1 } });
  return { stations: stations.length, sensors: sensors.length, lines: metroLines(stations).features.length };
}
