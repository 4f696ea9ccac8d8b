// Replay: any past time the store holds (the hourly tier's retention back),
// played at 1× to 600×, with the same hexagons, site levels and legend as
// live. The URL keeps the metric, the view and the time, so a link shows
// the same picture.
export function makeReplay({ state, stats, getJSON, setStatus, showAll, viewBBox, sites }) {
  const $ = (id) => document.getElementById(id);
  let timer = 0;
  let inflight = false;
  let urlTimer = 0;

  const pad = (n) => String(n).padStart(2, '0');
  const dateValue = (t) => { const d = new Date(t * 1000); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`; };
  const midnight = (t) => { const d = new Date(t * 1000); d.setHours(0, 0, 0, 0); return d.getTime() / 1000; };
  const label = (t) => new Date(t * 1000).toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

  function showControls() {
    const t = state.liveMode ? Date.now() / 1000 : state.replayAt;
    $('day').value = dateValue(t);
    $('time').value = String(Math.floor((t - midnight(t)) / 60));
    $('time-label').textContent = state.liveMode ? 'live' : label(state.replayAt);
    $('live-btn').classList.toggle('on', state.liveMode);
  }

  // load shows the hexagons and the sites at the replayed time.
  async function load() {
    if (inflight) return;
    inflight = true;
    const at = state.replayAt;
    const minutes = Math.round(state.cfg.window_seconds / 60);
    const q = new URLSearchParams({ metric: state.metric, res: String(state.res), bbox: viewBBox().join(','), at: String(Math.floor(at)), window: `${minutes}m` });
    try {
      const [d] = await Promise.all([getJSON(`/api/v1/density?${q}`), sites.load()]);
      if (state.liveMode) return;
      state.replay = new Map(d.cells.map((c) => [c.cell, c.value]));
      state.replayTier = d.tier;
      stats.replayAt = at;
      stats.replayCells = d.cells.length;
      setStatus(`replay · ${label(at)} · ${d.cells.length} cells${d.tier === 'hour' ? ' · hourly' : ''}`);
      showAll(state.replay);
    } catch (e) {
      setStatus(`replay failed: ${e.message}`, true);
    } finally {
      inflight = false;
    }
  }

  function goTo(at) {
    if (at >= Date.now() / 1000 - 60) {
      goLive();
      return;
    }
    state.liveMode = false;
    stats.mode = 'replay';
    state.replayAt = Math.max(at, state.cfg.oldest || 0);
    showControls();
    keepURL();
    load();
  }

  function goLive() {
    stop();
    state.liveMode = true;
    stats.mode = 'live';
    showControls();
    keepURL();
    setStatus(`live · ${state.live.size} cells`);
    showAll(state.live);
    sites.load();
  }

  function onControls() {
    if (!$('day').value) return;
    const [y, m, d] = $('day').value.split('-').map(Number);
    goTo(new Date(y, m - 1, d, 0, Number($('time').value)).getTime() / 1000);
  }

  // play moves the replayed time on by the speed each second; it starts
  // an hour ago when asked from live, and ends in live.
  function play() {
    if (timer) {
      stop();
      return;
    }
    if (state.liveMode) goTo(Date.now() / 1000 - 3600);
    $('play').textContent = '❚❚';
    let last = performance.now();
    timer = setInterval(() => {
      const now = performance.now();
      const next = state.replayAt + (Number($('speed').value) * (now - last)) / 1000;
      last = now;
      goTo(next);
    }, 1000);
  }

  function stop() {
    clearInterval(timer);
    timer = 0;
    $('play').textContent = '▶';
  }

  // keepURL writes the metric, the view, the replayed time and the speed
  // into the address, a moment after they stop changing.
  function keepURL() {
    clearTimeout(urlTimer);
    urlTimer = setTimeout(() => {
      const p = new URLSearchParams(location.search);
      p.set('metric', state.metric);
      if (state.map) {
        const c = state.map.getCenter();
        p.set('view', `${c.lng.toFixed(5)},${c.lat.toFixed(5)},${state.map.getZoom().toFixed(2)}`);
      }
      if (state.liveMode) p.delete('at');
      else p.set('at', new Date(Math.floor(state.replayAt) * 1000).toISOString().replace('.000Z', 'Z'));
      p.set('speed', $('speed').value);
      history.replaceState(null, '', `${location.pathname}?${p}`);
    }, 300);
  }

  function init(params) {
    $('day').min = dateValue(state.cfg.oldest || Date.now() / 1000);
    $('day').max = dateValue(Date.now() / 1000);
    const speed = params.get('speed');
    if (speed && [...$('speed').options].some((o) => o.value === speed)) $('speed').value = speed;
    $('day').onchange = onControls;
    $('time').oninput = onControls;
    $('play').onclick = play;
    $('live-btn').onclick = goLive;
    $('speed').onchange = keepURL;
    const at = params.get('at');
    const t = at && (/^\d+$/.test(at) ? Number(at) : Date.parse(at) / 1000);
    if (t) goTo(t);
    else showControls();
  }

  return { init, keepURL, reload: () => { if (!state.liveMode) load(); } };
}
