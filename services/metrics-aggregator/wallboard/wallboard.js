// wallboard.js: renders the live metrics snapshot (GET /v1/metrics/live, then the
// "snapshot" events of the SSE stream /v1/metrics/stream) into the wallboard page.
//
// The token comes from the page URL (?token=...) and goes to both endpoints as
// ?access_token=..., since EventSource cannot set an Authorization header. The
// service-level target (?target=<percent>, default 80) only colours the page:
// green at or above target, amber up to 10 points below, red under that.
// Oldest waits tick every second on the client from the last snapshot. Every
// value comes from the server as data and is written with textContent only.

const params = new URLSearchParams(window.location.search);
const token = params.get('token') || '';
const slTarget = parseTarget(params.get('target'));
const AMBER_BAND = 10; // points under target still amber
const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 30000;
const TICK_MS = 250; // a running wait never skips a second on screen

// The last snapshot and when it arrived (performance.now(), immune to clock changes).
let snapshot = null;
let receivedAt = 0;
let source = null;
let retryMs = RETRY_MIN_MS;
let retryTimer = 0;
let timeZone; // the service's "today" zone (snapshot tz): the clock shows its local time

function parseTarget(text) {
  const n = Number(text);
  return text !== null && Number.isFinite(n) && n > 0 && n <= 100 ? n : 80;
}

function $(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

function el(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

function apiUrl(path) {
  return `${path}?access_token=${encodeURIComponent(token)}`;
}

// ---- formatting ---------------------------------------------------------------------------

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

// A clock reading (a wait that is still running): whole seconds, truncated.
function fmtClock(ms) {
  if (!isNum(ms) || ms < 0) return '—';
  return fmtSeconds(Math.floor(ms / 1000));
}

// An average duration: nearest second.
function fmtAvg(ms) {
  if (!isNum(ms) || ms < 0) return '—';
  return fmtSeconds(Math.round(ms / 1000));
}

function fmtSeconds(s) {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

// A ratio 0..1 as a whole percentage (the colour uses the same rounded figure).
function pct(ratio) {
  return isNum(ratio) ? Math.round(ratio * 100) : null;
}

function fmtPct(ratio) {
  const p = pct(ratio);
  return p === null ? '—' : `${p}%`;
}

function fmtCount(n) {
  return isNum(n) ? n.toLocaleString('en-US') : '—';
}

function fmtNps(v) {
  if (!isNum(v)) return '—';
  const n = Math.round(v);
  return n > 0 ? `+${n}` : `${n}`;
}

function slLevel(ratio) {
  const p = pct(ratio);
  if (p === null) return 'none';
  if (p >= slTarget) return 'good';
  return p >= slTarget - AMBER_BAND ? 'warn' : 'bad';
}

// A running wait against the queue's SL threshold: over it the contact already misses SL.
function waitLevel(ms, thresholdS) {
  if (!isNum(ms) || !isNum(thresholdS) || thresholdS <= 0) return 'none';
  if (ms > thresholdS * 1000) return 'bad';
  return ms > thresholdS * 500 ? 'warn' : 'none';
}

function setText(node, text, level) {
  if (!node) return;
  if (node.textContent !== text) node.textContent = text;
  if (level !== undefined) node.dataset.level = level;
}

// ---- rendering ----------------------------------------------------------------------------

function onContact(a) {
  // ringing (reserved) and talking (busy) agents are both taken by a contact
  return isNum(a?.busy) || isNum(a?.reserved) ? (a.busy || 0) + (a.reserved || 0) : null;
}

function elapsed() {
  return performance.now() - receivedAt;
}

function oldestNow(q) {
  return q.waiting > 0 && isNum(q.oldest_wait_ms) ? q.oldest_wait_ms + elapsed() : null;
}

function renderTiles(s) {
  const t = s.today || {};
  const queues = Array.isArray(s.queues) ? s.queues : [];
  const waiting = queues.reduce((n, q) => n + (isNum(q.waiting) ? q.waiting : 0), 0);

  setText($('kpi-waiting'), fmtCount(waiting), waiting > 0 ? 'active' : 'none');
  setText($('kpi-service-level'), fmtPct(t.service_level), slLevel(t.service_level));
  setText($('kpi-answered'), fmtCount(t.answered));
  setText($('kpi-handled'), fmtCount(t.handled));
  setText($('kpi-abandoned'), fmtCount(t.abandoned));
  setText($('kpi-abandon-rate'), fmtPct(t.abandon_rate));
  setText($('kpi-asa'), fmtAvg(t.asa_ms));
  setText($('kpi-aht'), fmtAvg(t.aht_ms));
  setText($('kpi-csat'), fmtPct(t.csat));
  setText($('kpi-nps'), fmtNps(t.nps));
}

function agentCells(prefix) {
  return [
    ['available', 'Available', (a) => a.available],
    ['on-contact', 'On contact', onContact],
    ['wrap-up', 'Wrap-up', (a) => a.wrap_up],
    ['not-ready', 'Not ready', (a) => a.not_ready],
  ].map(([key, title, get]) => ({ key, title, get, testid: `${prefix}-agents-${key}` }));
}

function queueRow(q) {
  const id = String(q.queue_id ?? '');
  const p = `queue-${id}`;
  const tr = el('tr', { 'data-queue': id });
  const sl = el('td', { class: 'slcol' });
  const slBox = el('div', { class: 'slbox' });
  const agents = el('td', { class: 'agents-mini' });

  tr.append(el('td', { class: 'name', 'data-testid': `${p}-name` }, id));
  tr.append(el('td', { class: 'num big', 'data-testid': `${p}-waiting` }));
  tr.append(el('td', { class: 'num big', 'data-testid': `${p}-oldest-wait` }));
  slBox.append(el('span', { class: 'num big', 'data-testid': `${p}-service-level` }));
  slBox.append(el('span', { class: 'sub', 'data-testid': `${p}-sl-threshold` }));
  sl.append(slBox, el('div', { class: 'meter' }, null));
  sl.lastChild.append(el('span', { class: 'fill' }), el('span', { class: 'mark' }));
  tr.append(sl);
  tr.append(el('td', { class: 'num', 'data-testid': `${p}-answered` }));
  tr.append(el('td', { class: 'num', 'data-testid': `${p}-abandoned` }));
  tr.append(el('td', { class: 'num', 'data-testid': `${p}-estimated-wait` }));
  for (const c of agentCells(p))
    agents.append(el('span', { class: `chip st-${c.key}`, title: c.title, 'data-testid': c.testid }));
  tr.append(agents);
  tr.append(el('td', { class: 'num muted', 'data-testid': `${p}-agents-logged-in` }));
  return tr;
}

function fillQueueRow(tr, q) {
  const p = `queue-${tr.dataset.queue}`;
  const t = q.today || {};
  const a = q.agents || {};
  const level = slLevel(t.service_level);
  const fill = tr.querySelector('.fill');
  const mark = tr.querySelector('.mark');

  setText($(`${p}-waiting`, tr), fmtCount(q.waiting), q.waiting > 0 ? 'active' : 'none');
  setText($(`${p}-service-level`, tr), fmtPct(t.service_level), level);
  setText($(`${p}-sl-threshold`, tr), isNum(q.sl_threshold_s) ? `in ${q.sl_threshold_s} s` : '');
  fill.style.width = `${pct(t.service_level) ?? 0}%`;
  fill.dataset.level = level;
  mark.style.left = `${slTarget}%`;
  setText($(`${p}-answered`, tr), fmtCount(t.answered));
  setText($(`${p}-abandoned`, tr), fmtCount(t.abandoned));
  setText($(`${p}-estimated-wait`, tr), fmtAvg(q.estimated_wait_ms));
  for (const c of agentCells(p)) setText($(c.testid, tr), fmtCount(c.get(a)));
  setText($(`${p}-agents-logged-in`, tr), fmtCount(a.logged_in));
  tickQueueRow(tr, q);
}

function tickQueueRow(tr, q) {
  const ms = oldestNow(q);
  setText($(`queue-${tr.dataset.queue}-oldest-wait`, tr), fmtClock(ms),
    waitLevel(ms, q.sl_threshold_s));
}

function renderQueues(s) {
  const body = $('queues');
  const queues = Array.isArray(s.queues) ? [...s.queues] : [];
  const rows = new Map([...body.children].map((tr) => [tr.dataset.queue, tr]));

  queues.sort((x, y) => String(x.queue_id).localeCompare(String(y.queue_id)));
  queues.forEach((q, i) => {
    const id = String(q.queue_id ?? '');
    let tr = rows.get(id);
    if (!tr) tr = queueRow(q);
    rows.delete(id);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    fillQueueRow(tr, q);
  });
  for (const tr of rows.values()) tr.remove();
  $('queues-empty').hidden = queues.length > 0;
}

function renderAgents(s) {
  const a = s.agents || {};
  const reasons = a.not_ready_by_reason && typeof a.not_ready_by_reason === 'object'
    ? Object.entries(a.not_ready_by_reason).filter(([, n]) => isNum(n) && n > 0) : [];
  const list = $('agents-not-ready-reasons');
  const bar = $('agents-bar');
  const parts = agentCells('x').map((c) => [c.key, c.get(a)]);
  const total = parts.reduce((n, [, v]) => n + (isNum(v) ? v : 0), 0);

  setText($('agents-logged-in'), fmtCount(a.logged_in));
  for (const c of agentCells('x')) setText($(`agents-${c.key}`), fmtCount(c.get(a)));

  bar.replaceChildren(...parts.filter(([, v]) => isNum(v) && v > 0).map(([key, v]) => {
    const seg = el('span', { class: `st-${key}` });
    seg.style.flexGrow = String(v / Math.max(1, total));
    return seg;
  }));

  reasons.sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
  list.replaceChildren(...reasons.map(([reason, n]) => {
    const li = el('li', {}, reason || 'no reason');
    li.append(el('span', { class: 'n', 'data-testid': `agents-not-ready-${reason}` },
      fmtCount(n)));
    return li;
  }));
}

function render(s) {
  snapshot = s;
  receivedAt = performance.now();
  renderTiles(s);
  renderQueues(s);
  renderAgents(s);
  tick();
  timeZone = validZone(s.tz);
  const at = s.time ? new Date(s.time) : new Date();
  setText($('updated-at'), `updated ${timeOf(at)}${timeZone ? ` ${timeZone}` : ''}`);
}

function validZone(tz) {
  try {
    return tz ? Intl.DateTimeFormat('en-GB', { timeZone: tz }).resolvedOptions().timeZone : undefined;
  } catch {
    return undefined; // a zone this browser does not know: local time
  }
}

function timeOf(date) {
  return date.toLocaleTimeString('en-GB', { timeZone });
}

// Every TICK_MS: the clock and every running wait, from the last snapshot.
function tick() {
  setText($('clock'), timeOf(new Date()));
  if (!snapshot) return;
  const queues = Array.isArray(snapshot.queues) ? snapshot.queues : [];
  let oldest = null;
  let thresholdS = null;
  for (const q of queues) {
    const tr = $('queues').querySelector(`tr[data-queue="${CSS.escape(String(q.queue_id ?? ''))}"]`);
    if (tr) tickQueueRow(tr, q);
    const ms = oldestNow(q);
    if (ms !== null && (oldest === null || ms > oldest)) {
      oldest = ms;
      thresholdS = q.sl_threshold_s;
    }
  }
  setText($('kpi-oldest-wait'), fmtClock(oldest), waitLevel(oldest, thresholdS));
}

// ---- connection ---------------------------------------------------------------------------

function setConnection(state, text) {
  const node = $('connection');
  node.dataset.state = state;
  setText(node, text);
  document.body.dataset.connection = state;
}

function notice(text) {
  const n = $('notice');
  n.hidden = !text;
  setText(n, text || '');
}

function onSnapshot(ev) {
  let s;
  try {
    s = JSON.parse(ev.data);
  } catch {
    return; // a broken frame: the next snapshot repairs the page
  }
  retryMs = RETRY_MIN_MS;
  setConnection('live', 'Live');
  notice('');
  render(s);
}

// The stream failed for good (EventSource gave up, e.g. on an HTTP error): find out why from the
// live endpoint, say it, and try again later.
async function streamClosed() {
  setConnection('reconnecting', 'Reconnecting');
  try {
    const r = await fetch(apiUrl('/v1/metrics/live'), { cache: 'no-store' });
    if (r.status === 401 || r.status === 403) {
      setConnection('offline', 'Token refused');
      notice('The token in this page\'s address was refused: open it with ?token=<a valid token>.');
    } else if (r.ok)
      render(await r.json());
  } catch {
    // the service is unreachable: keep the last figures, greyed, and retry
  }
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, retryMs);
  retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
}

function connect() {
  if (source) source.close();
  source = new EventSource(apiUrl('/v1/metrics/stream'));
  source.addEventListener('snapshot', onSnapshot);
  source.addEventListener('open', () => setConnection('live', 'Live'));
  source.addEventListener('error', () => {
    // CONNECTING: the browser reconnects by itself; CLOSED: it gave up, we retry
    if (source.readyState === EventSource.CLOSED) streamClosed();
    else setConnection('reconnecting', 'Reconnecting');
  });
}

async function start() {
  setText($('sl-target'), `${slTarget}%`);
  tick();
  setInterval(tick, TICK_MS);
  if (!token) {
    setConnection('offline', 'No token');
    notice('Open this page with ?token=<a read-only token> in its address.');
    return;
  }
  try {
    const r = await fetch(apiUrl('/v1/metrics/live'), { cache: 'no-store' });
    if (r.ok && !snapshot) render(await r.json());
  } catch {
    // the stream below reports the connection state
  }
  connect();
}

start();
