// flowd's live crowd map: hexagons from the live WebSocket feed (or a
// replayed past window), site outlines and a site panel, and a corridor tool.
import * as maplibregl from './vendor/maplibre-gl.mjs';
import { LEVEL_COLORS, makeSites } from './sites.js';
import { addContext, baseStyle } from './basemap.js';
import { makeReplay } from './replay.js';

const h3 = window.h3;
const params = new URLSearchParams(location.search);

// flowdStats is read by the browser test and handy in the console.
// applyMs is the page script's time for the last live frame, from its
// arrival to the map's values updated; applyCells is how many cells it
// changed; applied keeps both for the last 20 frames.
const stats = window.flowdStats = {
  frames: 0, cellsReceived: 0, hexagons: 0, total: 0, applies: 0, applyMs: 0, applyCells: 0, applied: [],
  snapshotMs: 0, resyncs: 0, siteMessages: 0, sitesShown: 0, sitesOccupied: 0, siteDaysShown: 0, context: {}, replayAt: 0, replayCells: 0, connected: false, mode: 'live',
};

// The hexagons' shapes are a GeoJSON source whose features change only
// when cells appear or go; their values are feature state, updated in
// place, and the colour scale is global state, so a frame that changes
// thousands of values costs the page no new geometry.
const state = {
  cfg: null, map: null, ws: null, metric: '', res: 9, sub: '', seq: -1,
  live: new Map(), total: 0, replay: new Map(), replayAt: 0, replayTier: '', liveMode: true,
  shown: new Set(), scale: 1, scaleCounts: new Int32Array(1 + 64 * 8),
  boundaries: new Map(), sites: null, status: new Map(),
};

const $ = (id) => document.getElementById(id);

// A server with tokens needs one: open the page as /#token=<read token>.
// It is kept in this browser's session storage and sent as a bearer token
// (and as ?token= on the WebSocket, which cannot carry headers).
const token = (() => {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem('flowd-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem('flowd-token') || '';
})();
const authHeaders = token ? { Authorization: `Bearer ${token}` } : {};

async function getJSON(url) {
  const r = await fetch(url, { headers: authHeaders });
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

function setStatus(text, off) {
  $('status').textContent = text;
  $('status').classList.toggle('off', !!off);
}

const sites = makeSites({ state, stats, getJSON, setStatus, maplibregl });
const replay = makeReplay({ state, stats, getJSON, setStatus, showAll, viewBBox, sites });

// resForZoom keeps a viewport to a few tens of thousands of hexagons.
function resForZoom(z) {
  const r = z < 9 ? 7 : z < 11 ? 8 : 9;
  return Math.min(r, state.cfg.res);
}

function boundary(cell) {
  let b = state.boundaries.get(cell);
  if (!b) {
    if (state.boundaries.size > 300000) state.boundaries.clear();
    b = h3.cellToBoundary(cell, true);
    state.boundaries.set(cell, b);
  }
  return b;
}

function viewBBox() {
  const b = state.map.getBounds();
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const r6 = (v) => Math.round(v * 1e6) / 1e6;
  return [r6(clamp(b.getWest(), -180, 179.9)), r6(clamp(b.getSouth(), -85, 84.9)),
    r6(clamp(b.getEast(), -179.9, 180)), r6(clamp(b.getNorth(), -84.9, 85))];
}

function subscribe() {
  if (!state.map) return;
  const sub = { type: 'subscribe', bbox: viewBBox(), res: resForZoom(state.map.getZoom()), metric: state.metric };
  const key = JSON.stringify(sub);
  if (key === state.sub) return;
  state.sub = key;
  state.res = sub.res;
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(key);
  if (!state.liveMode) replay.reload();
}

function connect() {
  const q = token ? `?token=${encodeURIComponent(token)}` : '';
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/live${q}`);
  state.ws = ws;
  ws.onopen = () => {
    stats.connected = true;
    state.seq = -1;
    setStatus('live');
    if (state.sub) ws.send(state.sub);
  };
  ws.onmessage = (ev) => {
    const t0 = performance.now();
    const msg = JSON.parse(ev.data);
    if (msg.type === 'cells') onCells(msg, t0);
    else if (msg.type === 'site') sites.onMessage(msg);
    else if (msg.type === 'error') setStatus(`server: ${msg.error}`, true);
  };
  ws.onclose = () => {
    stats.connected = false;
    setStatus('disconnected; retrying…', true);
    setTimeout(connect, 2000);
  };
}

function onCells(msg, t0) {
  const want = JSON.parse(state.sub || '{}');
  if (msg.metric !== want.metric || msg.res !== want.res) return; // a frame of the previous subscription
  if (!msg.full && msg.seq !== state.seq + 1) {
    // A diff that does not follow the last frame: ask again for a snapshot.
    stats.resyncs++;
    state.seq = -1;
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(state.sub);
    return;
  }
  state.seq = msg.seq;
  if (msg.full) {
    state.live = new Map(msg.set);
    state.total = msg.set.reduce((a, [, v]) => a + v, 0);
    if (state.liveMode) showAll(state.live);
  } else {
    applyDiff(msg.set, msg.del);
  }
  stats.frames++;
  stats.cellsReceived += msg.set.length + msg.del.length;
  if (!state.liveMode) return;
  setStatus(`live · ${state.live.size} cells · ${new Date(msg.t * 1000).toLocaleTimeString()}`);
  stats.total = state.total;
  stats.hexagons = state.shown.size;
  stats.applies++;
  stats.applyCells = msg.set.length + msg.del.length;
  stats.applyMs = performance.now() - t0;
  stats.applied.push([stats.applyCells, stats.applyMs]);
  if (stats.applied.length > 20) stats.applied.shift();
  if (msg.full) stats.snapshotMs = stats.applyMs;
}

function hexFeature(cell) {
  return { type: 'Feature', properties: { cell }, geometry: { type: 'Polygon', coordinates: [boundary(cell)] } };
}

// applyDiff folds a diff into the live values and, when they are on the
// map, updates the hexagons' values in place; only cells that appear or
// go change the source's features.
function applyDiff(set, del) {
  const { live, map } = state;
  const show = state.liveMode;
  const add = [];
  const remove = [];
  for (const [cell, v] of set) {
    const old = live.get(cell);
    live.set(cell, v);
    state.total += v - (old || 0);
    if (!show) continue;
    if (old === undefined) {
      state.shown.add(cell);
      add.push(hexFeature(cell));
    } else {
      countForScale(old, -1);
    }
    countForScale(v, 1);
    map.setFeatureState({ source: 'hex', id: cell }, { v });
  }
  for (const cell of del) {
    const old = live.get(cell);
    if (old === undefined) continue;
    live.delete(cell);
    state.total -= old;
    if (!show) continue;
    state.shown.delete(cell);
    countForScale(old, -1);
    map.removeFeatureState({ source: 'hex', id: cell });
    remove.push(cell);
  }
  if (add.length || remove.length) map.getSource('hex').updateData({ add, remove });
  if (show) rescale();
}

// showAll puts values on the map in place of what it shows (a snapshot,
// a replay, a change of mode): the hexagons both show keep their shapes.
function showAll(values) {
  const { map, shown } = state;
  const add = [];
  const remove = [];
  for (const cell of shown) {
    if (values.has(cell)) continue;
    shown.delete(cell);
    map.removeFeatureState({ source: 'hex', id: cell });
    remove.push(cell);
  }
  state.scaleCounts.fill(0);
  let total = 0;
  for (const [cell, v] of values) {
    if (!shown.has(cell)) {
      shown.add(cell);
      add.push(hexFeature(cell));
    }
    map.setFeatureState({ source: 'hex', id: cell }, { v });
    countForScale(v, 1);
    total += v;
  }
  if (add.length || remove.length) map.getSource('hex').updateData({ add, remove });
  stats.total = total;
  stats.hexagons = shown.size;
  rescale();
}

// The colour scale tops out at the 95th percentile of the values shown, so
// one hot cell does not wash out the rest. The values are counted in
// buckets an eighth of a power of two wide, kept up to date cell by cell,
// so finding the percentile costs the buckets, not the cells.
const SCALE_STEPS = 8;

function countForScale(v, d) {
  const b = v < 1 ? 0 : Math.min(1 + Math.floor(Math.log2(v) * SCALE_STEPS), state.scaleCounts.length - 1);
  state.scaleCounts[b] += d;
}

// rescale moves the scale only when the percentile leaves a band around
// it, since a new scale recolours every hexagon.
function rescale() {
  const counts = state.scaleCounts;
  let n = 0;
  for (const c of counts) n += c;
  let p95 = 1;
  for (let b = 0, seen = 0; b < counts.length; b++) {
    seen += counts[b];
    if (seen > (n - 1) * 0.95) {
      p95 = b === 0 ? 1 : 2 ** (b / SCALE_STEPS);
      break;
    }
  }
  if (p95 < state.scale * 0.85 || p95 > state.scale * 1.15) {
    state.scale = p95;
    state.map.setGlobalStateProperty('scale', p95);
  }
  const minutes = Math.round(state.cfg.window_seconds / 60);
  const span = state.liveMode ? `last ${minutes} min`
    : `${state.replayTier === 'hour' ? 'hour' : `${minutes} min`} to ${new Date(state.replayAt * 1000).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}`;
  $('legend-title').textContent = `${state.metric} · ${span} · res ${state.res}`;
  $('legend-max').textContent = `≥ ${Math.round(state.scale)}`;
}

// flowdShowLayers shows or hides map layers and resolves once the map has
// drawn the change: the browser test compares screenshots with and without
// a layer to see that it draws.
window.flowdShowLayers = (ids, visible) => new Promise((resolve) => {
  for (const id of ids) state.map.setLayoutProperty(id, 'visibility', visible ? 'visible' : 'none');
  state.map.once('idle', () => resolve(true));
  state.map.triggerRepaint();
});

// flowdMapIdle resolves once the map has drawn what it has and is idle:
// the browser test times a frame's script against an idle page, as a
// page with a GPU would be (here the software renderer shares the cores).
window.flowdMapIdle = () => new Promise((resolve) => {
  state.map.once('idle', () => resolve(true));
  state.map.triggerRepaint();
});

// drawnHexagons counts the distinct hexagons the map has on screen.
window.flowdDrawnHexagons = () => {
  const seen = new Set();
  if (!state.map || !state.map.getLayer('hex-fill')) return 0;
  for (const f of state.map.queryRenderedFeatures({ layers: ['hex-fill'] })) seen.add(f.properties.cell);
  return seen.size;
};

// Corridor tool: click points, double-click to finish; the load comes from
// POST /api/v1/corridor when the server has it.
const corridor = { drawing: false, path: [] };

function corridorData() {
  const coords = corridor.path.map(([lat, lng]) => [lng, lat]);
  return { type: 'FeatureCollection', features: coords.length > 1 ? [{ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: coords } }] : [] };
}

function toggleCorridor() {
  corridor.drawing = !corridor.drawing;
  $('corridor-btn').classList.toggle('on', corridor.drawing);
  if (corridor.drawing) {
    corridor.path = [];
    state.map.doubleClickZoom.disable();
    state.map.getSource('corridor').setData(corridorData());
    setStatus('corridor: click points, double-click to finish');
  } else {
    state.map.doubleClickZoom.enable();
  }
}

async function finishCorridor() {
  toggleCorridor();
  if (corridor.path.length < 2) return;
  const now = Date.now();
  const body = {
    path: corridor.path, width: 200, metric: state.metric,
    from: new Date(now - 3 * 3600e3).toISOString(), to: new Date(now).toISOString(), step: '5m',
  };
  const out = $('corridor-out');
  $('corridor-box').hidden = false;
  out.textContent = 'loading…';
  try {
    const r = await fetch('/api/v1/corridor', { method: 'POST', headers: { 'Content-Type': 'application/json', ...authHeaders }, body: JSON.stringify(body) });
    if (r.status === 404) {
      out.textContent = 'corridor API not available';
      return;
    }
    const d = await r.json();
    const pre = document.createElement('pre');
    pre.textContent = r.ok ? JSON.stringify(d, null, 1).slice(0, 4000) : `error ${r.status}: ${d.error || ''}`;
    out.replaceChildren(pre);
  } catch (e) {
    out.textContent = `corridor request failed: ${e.message}`;
  }
}

async function initialView() {
  const v = params.get('view');
  if (v) {
    const [lng, lat, z] = v.split(',').map(Number);
    return { center: [lng, lat], zoom: z };
  }
  const b = new maplibregl.LngLatBounds();
  for (const f of state.sites.features) {
    const polys = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
    for (const p of polys) for (const pt of p[0]) b.extend(pt);
  }
  try {
    for (const s of await getJSON('/api/v1/stations')) b.extend([s.lng, s.lat]);
  } catch { /* no stations: the sites alone frame the view */ }
  if (b.isEmpty()) return { center: [0, 20], zoom: 1.5 };
  return { bounds: b, fitBoundsOptions: { padding: 40 } };
}

async function main() {
  state.cfg = await getJSON('/api/v1/dashboard/config');
  const metrics = (await getJSON('/api/v1/metrics')).metrics || [];
  const pick = params.get('metric') || ['swipes_in', 'count_person', 'count_car'].find((m) => metrics.includes(m)) || metrics[0] || 'swipes_in';
  if (!metrics.includes(pick)) metrics.unshift(pick);
  $('metric').replaceChildren(...metrics.map((m) => new Option(m, m, m === pick, m === pick)));
  state.metric = pick;
  state.sites = await getJSON('/api/v1/sites');

  const style = baseStyle(state.cfg);
  const map = new maplibregl.Map({ container: 'map', style, ...(await initialView()), attributionControl: false, preserveDrawingBuffer: true });
  state.map = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  await map.once('load');
  map.addSource('hex', { type: 'geojson', data: { type: 'FeatureCollection', features: [] }, promoteId: 'cell' });
  map.setGlobalStateProperty('scale', state.scale);
  const share = ['/', ['coalesce', ['feature-state', 'v'], 0], ['global-state', 'scale']];
  map.addLayer({
    id: 'hex-fill', type: 'fill', source: 'hex',
    paint: {
      'fill-color': ['interpolate', ['linear'], share, 0, '#ffffb2', 0.25, '#fecc5c', 0.5, '#fd8d3c', 0.75, '#f03b20', 1, '#bd0026'],
      'fill-opacity': 0.75,
    },
  });
  map.addSource('sites', { type: 'geojson', data: state.sites });
  map.addLayer({
    id: 'sites-fill', type: 'fill', source: 'sites',
    paint: { 'fill-color': ['match', ['get', 'level'], 'yellow', LEVEL_COLORS.yellow, 'orange', LEVEL_COLORS.orange, 'red', LEVEL_COLORS.red, LEVEL_COLORS.normal], 'fill-opacity': 0.08 },
  });
  map.addLayer({
    id: 'sites-line', type: 'line', source: 'sites',
    paint: { 'line-color': ['match', ['get', 'level'], 'yellow', LEVEL_COLORS.yellow, 'orange', LEVEL_COLORS.orange, 'red', LEVEL_COLORS.red, LEVEL_COLORS.normal], 'line-width': 2 },
  });
  Object.assign(stats.context, await addContext(map, getJSON, 'hex-fill'));
  map.moveLayer('sites-line');
  map.addSource('corridor', { type: 'geojson', data: corridorData() });
  map.addLayer({ id: 'corridor-line', type: 'line', source: 'corridor', paint: { 'line-color': '#1c7ed6', 'line-width': 4, 'line-opacity': 0.8 } });
  if (state.cfg.forecasts) import('./forecast.js').then((m) => m.startForecasts({ map, getJSON, stats }));

  const tip = $('tooltip');
  map.on('mousemove', 'hex-fill', (e) => {
    const cell = e.features[0].properties.cell;
    const v = (state.liveMode ? state.live : state.replay).get(cell) || 0;
    tip.hidden = false;
    tip.textContent = `${cell}: ${v.toLocaleString()}`;
    tip.style.left = `${e.point.x + 12}px`;
    tip.style.top = `${e.point.y + 12}px`;
  });
  map.on('mouseleave', 'hex-fill', () => { tip.hidden = true; });
  map.on('click', (e) => {
    if (!corridor.drawing) return;
    corridor.path.push([Math.round(e.lngLat.lat * 1e6) / 1e6, Math.round(e.lngLat.lng * 1e6) / 1e6]);
    map.getSource('corridor').setData(corridorData());
  });
  map.on('dblclick', (e) => {
    if (!corridor.drawing) return;
    e.preventDefault();
    finishCorridor();
  });
  let moveTimer = 0;
  map.on('moveend', () => { clearTimeout(moveTimer); moveTimer = setTimeout(subscribe, 200); replay.keepURL(); });

  $('metric').onchange = () => { state.metric = $('metric').value; state.live.clear(); subscribe(); showAll(state.live); replay.keepURL(); };
  $('corridor-btn').onclick = toggleCorridor;
  $('corridor-close').onclick = () => { $('corridor-box').hidden = true; };

  subscribe();
  connect();
  replay.init(params);
  await sites.load();
  setInterval(() => { if (state.liveMode) sites.load(); }, 5000);
}

main().catch((e) => setStatus(`failed to start: ${e.message}`, true));
