// Forecasts on the page: under each site of the panel, its last hour of
// occupancy followed by the next hour's forecast band, and the level the
// forecast's upper end will reach and when ("red in 35 min"); on the map,
// the cells, stations and sites far outside their usual band outlined.
// The data comes from GET /api/v1/forecast and /api/v1/anomalies.

const LEVELS = ['yellow', 'orange', 'red'];
const COLORS = { yellow: '#e6b800', orange: '#f08c00', red: '#e03131' };
const fc = { status: new Map(), series: new Map() };

export function startForecasts({ map, getJSON, stats }) {
  const h3 = window.h3;
  stats.anomalies = 0;
  stats.siteForecasts = 0;
  map.addSource('anomalies', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 'anomalies-line', type: 'line', source: 'anomalies', paint: { 'line-color': '#ae3ec9', 'line-width': 3 } });

  const pollAnomalies = async () => {
    try {
      const d = await getJSON('/api/v1/anomalies');
      stats.anomalies = d.anomalies.length;
      map.getSource('anomalies').setData({
        type: 'FeatureCollection',
        features: d.anomalies.map((a) => ({
          type: 'Feature',
          properties: { id: a.id, score: a.score },
          geometry: { type: 'Polygon', coordinates: [ring(h3, a.cell)] },
        })),
      });
    } catch (e) {
      console.warn(`anomalies: ${e.message}`);
    }
  };
  const pollSites = async () => {
    try {
      const d = await getJSON('/api/v1/sites/status');
      for (const s of d.sites) {
        fc.status.set(s.id, s);
        const f = await getJSON(`/api/v1/forecast?site=${encodeURIComponent(s.id)}&horizon=1h&step=5m`);
        fc.series.set(s.id, f.series[0]);
      }
    } catch (e) {
      console.warn(`site forecasts: ${e.message}`);
    }
    decorate(stats);
  };
  // The panel is redrawn every few seconds; each redraw gets the forecasts back.
  new MutationObserver(() => decorate(stats)).observe(document.getElementById('sites'), { childList: true });
  pollAnomalies();
  pollSites();
  setInterval(pollAnomalies, 15000);
  setInterval(pollSites, 60000);
}

// ring is a cell's boundary as a closed GeoJSON ring.
function ring(h3, cell) {
  const b = h3.cellToBoundary(cell).map(([lat, lng]) => [lng, lat]);
  b.push(b[0]);
  return b;
}

// decorate adds each site's forecast under its item of the panel.
function decorate(stats) {
  let n = 0;
  for (const li of document.querySelectorAll('#sites li[data-site]')) {
    const s = fc.status.get(li.dataset.site), f = fc.series.get(li.dataset.site);
    if (!s || !f) continue;
    let box = li.querySelector('.site-forecast');
    if (!box) {
      box = document.createElement('div');
      box.className = 'site-forecast';
      box.style.cssText = 'display:flex;gap:6px;align-items:center;font-size:11px;color:#56636f';
      box.innerHTML = '<canvas width="120" height="26"></canvas><span></span>';
      li.append(box);
    }
    draw(box.querySelector('canvas'), s, f);
    box.querySelector('span').textContent = reach(s, f);
    n++;
  }
  stats.siteForecasts = n;
}

// reach says which levels above the site's current one the forecast's
// upper end reaches within the hour, and when each first does.
function reach(s, f) {
  const out = [];
  const now = f.points.length ? Date.parse(f.points[0].t) : 0; // the server's minute in progress
  for (const l of LEVELS.slice(LEVELS.indexOf(s.level) + 1)) {
    const p = f.points.find((x) => x.upper >= s[l] * s.capacity);
    if (p) out.push(`${l} in ${Math.max(0, Math.round((Date.parse(p.t) - now) / 60000))} min`);
  }
  return out.length ? `forecast: ${out.join(', ')}` : 'forecast: no level within the hour';
}

// draw plots the last hour's occupancy, then the forecast's band and
// expected line, against the site's thresholds.
function draw(canvas, s, f) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const trend = (s.trend || []).map((p) => [Date.parse(p.t), p.occupancy]);
  const pts = f.points.map((p) => [Date.parse(p.t), p.expected, p.lower, p.upper]);
  if (!pts.length) return;
  const t0 = trend.length ? trend[0][0] : pts[0][0], t1 = pts[pts.length - 1][0];
  const top = Math.max(s.capacity, ...pts.map((p) => p[3]), ...trend.map((p) => p[1])) || 1;
  const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * (w - 2) + 1;
  const y = (v) => h - 1 - (v / top) * (h - 2);
  for (const l of LEVELS) {
    ctx.fillStyle = COLORS[l];
    ctx.fillRect(0, y(s[l] * s.capacity), w, 1);
  }
  ctx.fillStyle = 'rgba(28,126,214,0.2)';
  ctx.beginPath();
  pts.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[3])) : ctx.moveTo(x(p[0]), y(p[3]))));
  for (let i = pts.length - 1; i >= 0; i--) ctx.lineTo(x(pts[i][0]), y(pts[i][2]));
  ctx.fill();
  line(ctx, trend, x, y, []);
  line(ctx, pts, x, y, [3, 2]);
}

function line(ctx, pts, x, y, dash) {
  if (pts.length < 2) return;
  ctx.strokeStyle = '#1c7ed6';
  ctx.lineWidth = 1.5;
  ctx.setLineDash(dash);
  ctx.beginPath();
  pts.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[1])) : ctx.moveTo(x(p[0]), y(p[1]))));
  ctx.stroke();
  ctx.setLineDash([]);
}
