// The site panel: each scenic site's occupancy against its capacity and
// its level, today's entries against the daily capacity and their level,
// a sparkline of the last hour, and how many of the last 30 days reached
// each level; and the sites' outlines on the map, coloured by level.
export const LEVEL_COLORS = { normal: '#2b8a3e', yellow: '#e6b800', orange: '#f08c00', red: '#e03131' };

// DAYS_EVERY is how often the days' counts are read again: they change
// once a day, and today's only as its levels move.
const DAYS_EVERY = 10 * 60e3;

export function makeSites({ state, stats, getJSON, setStatus, maplibregl }) {
  const $ = (id) => document.getElementById(id);
  const days = new Map(); // site id -> the days endpoint's answer
  let daysAt = 0;
  let daysLoading = false, daysAgain = false;

  // loadDays reads every known site's days. Before the sites' status is
  // known there is nothing to ask for, and the time is not taken: a level
  // message that arrives before the first status would otherwise put the
  // first reading off by DAYS_EVERY. A call while a reading runs asks for
  // one more after it, so a day's change is never missed.
  async function loadDays() {
    if (state.status.size === 0) return;
    if (daysLoading) { daysAgain = true; return; }
    daysLoading = true;
    try {
      do {
        daysAgain = false;
        daysAt = Date.now();
        for (const id of [...state.status.keys()]) {
          try {
            days.set(id, await getJSON(`/api/v1/sites/${encodeURIComponent(id)}/days`));
          } catch { /* an older server without the endpoint: no counts */ }
        }
        draw();
      } while (daysAgain);
    } finally {
      daysLoading = false;
    }
  }

  // load reads the sites' status now, or at the replayed time.
  async function load() {
    const q = state.liveMode ? '' : `?at=${Math.floor(state.replayAt)}`;
    try {
      const d = await getJSON(`/api/v1/sites/status${q}`);
      if (q && state.liveMode) return; // back to live meanwhile
      for (const s of d.sites) state.status.set(s.id, s);
      draw();
      if (Date.now() - daysAt > DAYS_EVERY) loadDays();
    } catch (e) {
      setStatus(`site status: ${e.message}`, true);
    }
  }

  // onMessage takes a level change pushed on the live socket.
  function onMessage(msg) {
    stats.siteMessages++;
    if (!state.liveMode) return; // a replay shows its own time's levels
    const s = state.status.get(msg.site);
    if (s && msg.kind === 'daily') {
      s.daily_level = msg.to;
      s.entries_today = msg.entries;
    } else if (s) {
      s.level = msg.to;
      s.occupancy = msg.occupancy;
      s.ratio = msg.ratio;
    }
    draw(msg.site);
    load();
    if (msg.kind === 'daily') loadDays();
  }

  function sparkline(canvas, trend, capacity) {
    const ctx = canvas.getContext('2d');
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    if (trend.length < 2) return;
    const top = Math.max(capacity, ...trend.map((p) => p.occupancy)) || 1;
    ctx.strokeStyle = '#1c7ed6';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    trend.forEach((p, i) => {
      const x = (i / (trend.length - 1)) * (w - 2) + 1;
      const y = h - 1 - (p.occupancy / top) * (h - 2);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
  }

  // daysLine says how many listed days reached each level, by occupancy
  // and by daily entries, at the site's own thresholds.
  function daysLine(s) {
    const d = days.get(s.id);
    if (!d) return '';
    const th = { yellow: s.yellow, orange: s.orange, red: s.red };
    const chips = (c, what) => ['yellow', 'orange', 'red'].map((l) =>
      `<b class="n-${l}" title="days whose ${what} reached ${l} (${Math.round(th[l] * 100)} %)">${c[l]}</b>`).join('');
    const n = d.days.length;
    let line = `${n} day${n === 1 ? '' : 's'}: reached ${chips(d.crossed.occupancy, 'peak occupancy')}`;
    if (d.daily_capacity) line += ` · daily ${chips(d.crossed.daily, 'entries')}`;
    return line;
  }

  function item(s, flashID) {
    const li = document.createElement('li');
    li.dataset.site = s.id;
    li.className = s.id === flashID ? 'flash' : '';
    const pct = Math.round(s.ratio * 1000) / 10;
    const dpct = Math.round(s.daily_ratio * 1000) / 10;
    const daily = s.daily_capacity ? ` · today ${s.entries_today.toLocaleString()} / ${s.daily_capacity.toLocaleString()} (${dpct}%)` : '';
    const dailyBadge = s.daily_level && s.daily_level !== 'normal'
      ? `<span class="daily-tag">daily</span><span class="level level-${s.daily_level}">${s.daily_level}</span>` : '';
    li.innerHTML = `<div class="site-head"><span class="site-name"></span><span class="badges">${dailyBadge}<span class="level level-${s.level}">${s.level}</span></span></div>
      <div class="bar"><div style="width:${Math.min(pct, 100)}%;background:${LEVEL_COLORS[s.level]}"></div></div>
      <div class="site-occ"><span>${s.occupancy.toLocaleString()} / ${s.capacity.toLocaleString()} (${pct}%)${daily}</span><canvas width="80" height="24"></canvas></div>
      <div class="site-days">${daysLine(s)}</div>`;
    li.querySelector('.site-name').textContent = s.name;
    sparkline(li.querySelector('canvas'), s.trend || [], s.capacity);
    li.onclick = () => zoomTo(s.id);
    return li;
  }

  function draw(flashID) {
    const items = [];
    for (const s of state.status.values()) items.push(item(s, flashID));
    $('sites').replaceChildren(...items);
    stats.sitesShown = items.length;
    stats.sitesOccupied = [...state.status.values()].filter((s) => s.occupancy > 0).length;
    stats.siteDaysShown = days.size;
    if (state.sites && state.map && state.map.getSource('sites')) {
      for (const f of state.sites.features) {
        const s = state.status.get(f.properties.id);
        f.properties.level = s ? s.level : 'normal';
      }
      state.map.getSource('sites').setData(state.sites);
    }
  }

  function zoomTo(id) {
    const f = state.sites && state.sites.features.find((x) => x.properties.id === id);
    if (!f) return;
    const b = new maplibregl.LngLatBounds();
    const polys = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
    for (const p of polys) for (const pt of p[0]) b.extend(pt);
    state.map.fitBounds(b, { padding: 60, maxZoom: 15 });
  }

  return { load, onMessage };
}
