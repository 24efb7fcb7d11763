/* pushbench log viewer: watch one build step's log stream in. No framework, no build step.
 *
 * Each transport is the browser's own, so what the tests check is what a browser really does:
 * - SSE: `EventSource`. Its own reconnect (after the server's `retry:` hint) sends
 *   `Last-Event-ID`, and the server resumes after that line; the page adds nothing to it.
 *   `event: end` makes the page call close(), so the browser never reconnects to a finished
 *   step (and a 204 answering a reconnect stops it too).
 * - WebSocket: reconnects with `?after=<last seq seen>`, exponential backoff with jitter.
 *   Close 1000 means the step finished, 4008 that the viewer fell behind the server's history.
 * - Polling: `fetch ?after=<next>` every interval; long-poll: the same with `wait=25s`,
 *   re-issued at once. A failed request is retried with the same cursor.
 * Every line is checked by seq: duplicates are counted and dropped, gaps counted and marked.
 *
 * URL parameters: `server` (feed server base URL; default this page's origin), `token` (sent
 * as `?token=` to EventSource and WebSocket, which cannot set headers, and as
 * `Authorization: Bearer` to fetch), `topic` (org/repo/builds/B/steps/S; given, the page
 * connects at once), `transport` (sse, ws, poll, longpoll), `interval` (poll period: 1s, 250ms).
 *
 * `window.viewerState` holds what the page counted (seqs received, state, gaps, duplicates,
 * reconnects, bytes, latency), for tests and the curious.
 */
'use strict';

(() => {
  const LONG_POLL_WAIT = '25s';
  const LATENCY_WINDOW = 1000;
  const MAX_DOM_LINES = 50000;
  const BACKOFF_MIN_MS = 250;
  const BACKOFF_MAX_MS = 10000;
  // The step list (running/finished, line counts) is refreshed this often while visible.
  const TOPICS_REFRESH_MS = 30000;
  const TRANSPORT_LABELS = { sse: 'SSE', ws: 'WebSocket', poll: 'polling', longpoll: 'long-poll' };
  const TOPIC_SHAPE = /^[^/]+\/[^/]+\/builds\/[^/]+\/steps\/[^/]+$/;
  // Colour and cursor escapes (CSI sequences) would show as garbage in a web page.
  const ANSI_CSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
  // A line that starts (after an optional [timestamp]) with one of these is marked.
  const ERROR_LINE = /^\s*(\[[^\]]*\]\s*)?(error|ERROR|FAIL|FAILED|panicked)\b/;
  const WARNING_LINE = /^\s*(\[[^\]]*\]\s*)?(warning|WARN)\b/i;

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const token = params.get('token') || '';

  // What every new connection starts from; topic, transport and state are set beside it.
  function freshCounters() {
    return {
      finished: false,
      lastSeq: null,
      lines: [],
      gaps: 0,
      dups: 0,
      reconnects: 0,
      bytes: 0,
      requests: 0,
      notModified: 0,
      latencyP50Ms: null,
      latencyMaxMs: null,
      latencySamples: 0,
      readyState: null,
      errors: [],
    };
  }

  const viewerState = {
    topic: null,
    transport: null,
    state: 'idle',
    detail: '',
    ...freshCounters(),
  };
  window.viewerState = viewerState;

  let serverBase = location.origin;
  try {
    serverBase = feedBase(params.get('server'));
  } catch (e) {
    viewerState.errors.push(e.message);
  }
  // A 304 needs If-None-Match, which makes a cross-origin fetch preflighted: only same-origin
  // polls send it (cross-origin ones are answered in full; the bytes are counted either way).
  const conditionalPolls = new URL(serverBase).origin === location.origin;

  /** The feed server's base URL from `?server=`, checked. */
  function feedBase(raw) {
    if (!raw) return location.origin;
    let u;
    try {
      u = new URL(raw, location.href);
    } catch (_) {
      throw new Error(`?server=${raw} is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new Error(`?server= must be an http(s) URL, got ${raw}`);
    }
    return u.origin + u.pathname.replace(/\/+$/, '');
  }

  function feedUrl(path, query) {
    const u = new URL(serverBase + path);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
    }
    return u;
  }

  function logsPath(topic) {
    return '/' + topic.split('/').map(encodeURIComponent).join('/') + '/logs';
  }

  function authHeaders() {
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  /** Wall-clock milliseconds with sub-millisecond resolution (Date.now() has 1 ms). */
  function wallMs() {
    return performance.timeOrigin + performance.now();
  }

  const utf8 = new TextEncoder();
  function byteLength(text) {
    // ASCII is the common case and needs no encoding.
    return /^[\x00-\x7f]*$/.test(text) ? text.length : utf8.encode(text).length;
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (_) {
      return null;
    }
  }

  /** The `error` of a JSON error answer, or the text itself. */
  function errorOf(text) {
    const v = parseJson(text);
    return (v && typeof v.error === 'string' ? v.error : text).slice(0, 300);
  }

  // ---- rendering --------------------------------------------------------------------------

  const log = $('log');
  let follow = true;
  let pendingRows = [];
  let flushQueued = false;
  let unseen = 0;

  log.addEventListener('scroll', () => {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
    follow = atBottom;
    if (atBottom) {
      unseen = 0;
      $('follow').hidden = true;
    }
  });
  $('follow').addEventListener('click', () => {
    follow = true;
    log.scrollTop = log.scrollHeight;
  });

  /** What a terminal would show: escapes removed, and each CR-separated redraw (progress
   * bars) written over the start of the one before, as a carriage return does. */
  function displayText(raw) {
    const text = raw.replace(ANSI_CSI, '');
    if (!text.includes('\r')) return text;
    let shown = '';
    for (const redraw of text.split('\r')) shown = redraw + shown.slice(redraw.length);
    return shown;
  }

  function lineRow(line) {
    const row = document.createElement('div');
    row.className = 'ln';
    row.id = `L${line.seq}`;
    const no = document.createElement('span');
    no.className = 'no';
    no.textContent = String(line.seq);
    const tx = document.createElement('span');
    tx.className = 'tx';
    const text = displayText(line.line);
    // Log text is data, never markup: textContent only.
    tx.textContent = text;
    if (ERROR_LINE.test(text)) row.classList.add('err');
    else if (WARNING_LINE.test(text)) row.classList.add('warn');
    row.append(no, tx);
    return row;
  }

  function addRow(row) {
    pendingRows.push(row);
    if (!flushQueued) {
      flushQueued = true;
      // One DOM update per task, however many lines it delivered.
      queueMicrotask(flushRows);
    }
  }

  function addNote(text, kind) {
    const note = document.createElement('div');
    note.className = `note ${kind || ''}`;
    note.textContent = text;
    addRow(note);
  }

  function flushRows() {
    flushQueued = false;
    if (!pendingRows.length) return;
    const fragment = document.createDocumentFragment();
    fragment.append(...pendingRows);
    const added = pendingRows.length;
    pendingRows = [];
    log.append(fragment);
    let excess = log.childElementCount - MAX_DOM_LINES;
    while (excess-- > 0) log.firstElementChild.remove();
    if (follow) {
      log.scrollTop = log.scrollHeight;
    } else {
      unseen += added;
      const button = $('follow');
      button.textContent = `↓ ${unseen} new — follow`;
      button.hidden = false;
    }
    queueStats();
  }

  let statsQueued = false;
  function queueStats() {
    if (statsQueued) return;
    statsQueued = true;
    setTimeout(renderStats, 100);
  }

  const latencyWindow = [];
  let latencyNext = 0;

  function recordLatency(ms) {
    if (latencyWindow.length < LATENCY_WINDOW) latencyWindow.push(ms);
    else latencyWindow[latencyNext] = ms;
    latencyNext = (latencyNext + 1) % LATENCY_WINDOW;
    viewerState.latencySamples++;
    viewerState.latencyMaxMs = Math.max(viewerState.latencyMaxMs ?? ms, ms);
  }

  function formatMs(ms) {
    return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`;
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function renderStats() {
    statsQueued = false;
    const st = viewerState;
    if (latencyWindow.length) {
      const sorted = latencyWindow.slice().sort((a, b) => a - b);
      st.latencyP50Ms = sorted[Math.floor((sorted.length - 1) / 2)];
    }
    $('s-lines').textContent = st.lines.length.toLocaleString('en');
    $('s-seq').textContent = st.lastSeq === null ? '–' : String(st.lastSeq);
    setCount('s-gaps', st.gaps);
    setCount('s-dups', st.dups);
    $('s-reconnects').textContent = String(st.reconnects);
    $('s-latency').textContent =
      st.latencyP50Ms === null ? '–' : `p50 ${formatMs(st.latencyP50Ms)} · max ${formatMs(st.latencyMaxMs)}`;
    $('s-bytes').textContent = formatBytes(st.bytes);
    const parts = [];
    if (st.transport) parts.push(TRANSPORT_LABELS[st.transport]);
    if (st.requests) parts.push(`${st.requests} requests${st.notModified ? `, ${st.notModified} not modified` : ''}`);
    if (st.detail) parts.push(st.detail);
    $('s-detail').textContent = parts.join(' · ');
    $('s-detail').title = parts.join(' · ');
  }

  function setCount(id, n) {
    const el = $(id);
    el.textContent = String(n);
    el.classList.toggle('bad', n > 0);
  }

  function showState(name, detail) {
    viewerState.state = name;
    viewerState.detail = detail || '';
    const pill = $('state');
    pill.textContent = name;
    pill.className = `pill ${name}`;
    const button = $('connect');
    const live = session !== null && session.alive;
    button.textContent = live ? 'Disconnect' : 'Connect';
    button.classList.toggle('stop', live);
    document.title = `${name === 'finished' ? '✔ ' : name === 'error' ? '✘ ' : ''}${
      viewerState.topic ? shortTopic(viewerState.topic) : 'Step log'
    } · pushbench`;
    queueStats();
  }

  function shortTopic(topic) {
    const [org, repo, , build, , step] = topic.split('/');
    return `${org}/${repo} · build ${build} · step ${step}`;
  }

  // ---- one connection session -------------------------------------------------------------

  /** @type {null | {topic:string, transport:string, intervalMs:number, alive:boolean,
   *   startedMs:number, backoff:number, timer:any, es:EventSource|null, ws:WebSocket|null,
   *   abort:AbortController|null}} */
  let session = null;

  function setState(s, name, detail) {
    if (s !== session) return;
    showState(name, detail);
  }

  /** Takes one received line: checks its seq, renders it, measures its latency. */
  function receive(s, line) {
    if (!s.alive) return;
    const st = viewerState;
    if (!line || !Number.isSafeInteger(line.seq) || typeof line.line !== 'string') {
      st.errors.push('malformed line payload');
      addNote('a malformed line payload was ignored', 'error');
      return;
    }
    if (st.lastSeq !== null && line.seq <= st.lastSeq) {
      st.dups++;
      queueStats();
      return;
    }
    if (st.lastSeq === null) {
      if (line.seq > 1) addNote(`history starts at line ${line.seq}: earlier lines are no longer held`);
    } else if (line.seq > st.lastSeq + 1) {
      const missing = line.seq - st.lastSeq - 1;
      st.gaps += missing;
      addNote(`${missing} line(s) missing: seq ${st.lastSeq + 1}–${line.seq - 1}`, 'gap');
    }
    st.lastSeq = line.seq;
    st.lines.push(line.seq);
    // Live latency only: lines published before Connect were history, not delivery.
    if (typeof line.ts === 'number' && line.ts / 1e6 >= s.startedMs) {
      recordLatency(wallMs() - line.ts / 1e6);
    }
    addRow(lineRow(line));
  }

  function countBytes(text) {
    viewerState.bytes += byteLength(text);
  }

  function stopSession(s) {
    s.alive = false;
    clearTimeout(s.timer);
    if (s.es) {
      s.es.close();
      viewerState.readyState = s.es.readyState;
    }
    if (s.ws) {
      s.ws.onclose = null;
      s.ws.close(1000, 'viewer closed');
    }
    if (s.abort) s.abort.abort();
  }

  function finished(s, lastSeq) {
    if (!s.alive) return;
    const st = viewerState;
    if (Number.isSafeInteger(lastSeq) && lastSeq > (st.lastSeq ?? 0)) {
      // The server says more lines existed than arrived: count them as lost.
      st.gaps += lastSeq - (st.lastSeq ?? 0);
      addNote(`${lastSeq - (st.lastSeq ?? 0)} line(s) missing at the end`, 'gap');
    }
    st.finished = true;
    stopSession(s);
    addNote(`✔ Step finished · ${st.lines.length.toLocaleString('en')} lines · last seq ${st.lastSeq ?? 0}`, 'finished');
    setState(s, 'finished', 'step finished');
    loadTopics();
  }

  function failed(s, message) {
    if (!s.alive) return;
    viewerState.errors.push(message);
    stopSession(s);
    addNote(message, 'error');
    setState(s, 'error', message);
  }

  function lagged(s, message) {
    if (!s.alive) return;
    viewerState.errors.push(message);
    stopSession(s);
    addNote(`fell behind the server's history: ${message}. Reconnect to read the rest.`, 'error');
    setState(s, 'lagged', message);
  }

  /** Schedules `retry` after the session's backoff (doubled each time, with jitter). */
  function retryLater(s, why, retry) {
    const delay = s.backoff * (0.8 + Math.random() * 0.4);
    s.backoff = Math.min(s.backoff * 2, BACKOFF_MAX_MS);
    addNote(`${why}; reconnecting in ${formatMs(delay)}`, 'reconnect');
    setState(s, 'reconnecting', why);
    s.timer = setTimeout(() => s.alive && retry(), delay);
  }

  function sleep(s, ms) {
    return new Promise((resolve) => {
      s.timer = setTimeout(resolve, ms);
    });
  }

  // SSE: the browser's EventSource, reconnecting and resuming by itself.
  function startSse(s) {
    const query = { token };
    // Only when this page opens a new EventSource after the browser gave up (see below); the
    // browser's own reconnects send Last-Event-ID, which the server prefers.
    if (viewerState.lastSeq !== null) query.lastEventId = viewerState.lastSeq;
    const es = new EventSource(feedUrl(logsPath(s.topic) + '/events', query));
    s.es = es;
    const sync = () => {
      viewerState.readyState = es.readyState;
    };
    sync();
    es.onopen = () => {
      if (!s.alive) return;
      sync();
      setState(s, 'open', 'EventSource open');
    };
    es.onmessage = (ev) => {
      if (!s.alive) return;
      countBytes(ev.data);
      receive(s, parseJson(ev.data));
    };
    es.addEventListener('end', (ev) => {
      es.close();
      sync();
      countBytes(ev.data);
      const end = parseJson(ev.data);
      finished(s, end && end.last_seq);
    });
    es.addEventListener('lagged', (ev) => {
      es.close();
      sync();
      const d = parseJson(ev.data) || {};
      lagged(s, `line ${d.missing_from} is gone, the oldest held is ${d.oldest_seq}`);
    });
    es.onerror = () => {
      if (!s.alive) return;
      sync();
      if (es.readyState === EventSource.CONNECTING) {
        viewerState.reconnects++;
        const from = viewerState.lastSeq === null ? 'the start' : `after line ${viewerState.lastSeq}`;
        addNote(`connection lost; the browser reconnects and resumes ${from}`, 'reconnect');
        setState(s, 'reconnecting', `EventSource resumes ${from}`);
      } else {
        explainClosedEventSource(s);
      }
    };
  }

  /** EventSource gave up without `end` (an HTTP error, a 204, a wrong type): ask why. */
  async function explainClosedEventSource(s) {
    const query = { token };
    if (viewerState.lastSeq !== null) query.lastEventId = viewerState.lastSeq;
    const abort = new AbortController();
    let res;
    try {
      res = await fetch(feedUrl(logsPath(s.topic) + '/events', query), {
        cache: 'no-store',
        signal: abort.signal,
      });
    } catch (e) {
      if (!s.alive) return;
      viewerState.reconnects++;
      return retryLater(s, `the event stream is unreachable (${e.message})`, () => startSse(s));
    }
    if (!s.alive) return abort.abort();
    if (res.status === 204) return finished(s, viewerState.lastSeq);
    if (res.ok) {
      abort.abort();
      return failed(s, 'the event stream failed: the server answers but the browser would not read it');
    }
    const why = `HTTP ${res.status}: ${errorOf(await res.text())}`;
    // A step not created yet, a full server or a failing one may recover; a bad token will not.
    if (res.status === 404 || res.status === 429 || res.status >= 500) {
      viewerState.reconnects++;
      return retryLater(s, `the server refused the event stream (${why})`, () => startSse(s));
    }
    failed(s, `the server refused the event stream: ${why}`);
  }

  // WebSocket: reconnects in this page, resuming with ?after=.
  function startWs(s) {
    const query = { token };
    if (viewerState.lastSeq !== null) query.after = viewerState.lastSeq;
    const u = feedUrl(logsPath(s.topic) + '/ws', query);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(u);
    } catch (e) {
      return failed(s, `cannot open a WebSocket to ${u.origin}: ${e.message}`);
    }
    s.ws = ws;
    ws.onopen = () => {
      if (!s.alive) return;
      s.backoff = BACKOFF_MIN_MS;
      setState(s, 'open', 'WebSocket open');
    };
    ws.onmessage = (ev) => {
      if (!s.alive || typeof ev.data !== 'string') return;
      countBytes(ev.data);
      receive(s, parseJson(ev.data));
    };
    ws.onclose = (ev) => {
      if (!s.alive) return;
      s.ws = null;
      if (ev.code === 1000) {
        const m = /seq (\d+)/.exec(ev.reason || '');
        return finished(s, m ? Number(m[1]) : viewerState.lastSeq);
      }
      if (ev.code === 4008) return lagged(s, ev.reason || 'lagged');
      viewerState.reconnects++;
      retryLater(s, `WebSocket closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`, () => startWs(s));
    };
  }

  // Polling and long-polling with fetch, resuming with ?after=.
  async function pollLoop(s, long) {
    let after = viewerState.lastSeq;
    let etag = null;
    while (s.alive) {
      const query = {};
      if (after !== null) query.after = after;
      if (long) query.wait = LONG_POLL_WAIT;
      const headers = authHeaders();
      if (etag && conditionalPolls) headers['If-None-Match'] = etag;
      let body = null;
      try {
        s.abort = new AbortController();
        const res = await fetch(feedUrl(logsPath(s.topic), query), {
          headers,
          cache: 'no-store',
          signal: s.abort.signal,
        });
        const text = await res.text();
        if (!s.alive) return;
        viewerState.requests++;
        if (res.status === 410) return lagged(s, errorOf(text));
        if (res.status === 304) {
          viewerState.notModified++;
        } else if (!res.ok) {
          const err = new Error(`HTTP ${res.status}: ${errorOf(text)}`);
          // These will not fix themselves; 404 may (a step not created yet), 5xx may.
          err.final = [400, 401, 403].includes(res.status);
          throw err;
        } else {
          countBytes(text);
          body = JSON.parse(text);
          etag = res.headers.get('ETag');
        }
      } catch (e) {
        if (!s.alive) return;
        if (e.final) return failed(s, `the server refused the poll: ${e.message}`);
        viewerState.reconnects++;
        const delay = s.backoff * (0.8 + Math.random() * 0.4);
        s.backoff = Math.min(s.backoff * 2, BACKOFF_MAX_MS);
        addNote(`poll failed (${e.message}); retrying after line ${after ?? 0} in ${formatMs(delay)}`, 'reconnect');
        setState(s, 'reconnecting', e.message);
        await sleep(s, delay);
        continue;
      }
      s.backoff = BACKOFF_MIN_MS;
      if (viewerState.state !== 'open') setState(s, 'open', long ? `long-poll, wait ${LONG_POLL_WAIT}` : `every ${formatMs(s.intervalMs)}`);
      if (body) {
        for (const line of body.lines) receive(s, line);
        after = body.next;
        if (body.finished && body.next >= body.last_seq) return finished(s, body.last_seq);
      }
      queueStats();
      if (!long) await sleep(s, s.intervalMs);
    }
  }

  function connect(topic, transport, intervalMs) {
    disconnect();
    log.replaceChildren();
    latencyWindow.length = 0;
    latencyNext = 0;
    unseen = 0;
    follow = true;
    $('follow').hidden = true;
    Object.assign(viewerState, { topic, transport, ...freshCounters() });
    const s = {
      topic,
      transport,
      intervalMs,
      alive: true,
      startedMs: wallMs(),
      backoff: BACKOFF_MIN_MS,
      timer: null,
      es: null,
      ws: null,
      abort: null,
    };
    session = s;
    $('title').textContent = shortTopic(topic);
    setState(s, 'connecting', `to ${serverBase}`);
    if (transport === 'sse') startSse(s);
    else if (transport === 'ws') startWs(s);
    else pollLoop(s, transport === 'longpoll');
  }

  function disconnect() {
    if (session && session.alive) {
      const s = session;
      stopSession(s);
      addNote('disconnected by you', '');
      setState(s, 'closed', '');
    }
  }

  // ---- controls ---------------------------------------------------------------------------

  const topicSelect = $('topic');
  const transportSelect = $('transport');
  const intervalSelect = $('interval');

  function ensureTopicOption(topic, label) {
    let option = [...topicSelect.options].find((o) => o.value === topic);
    if (!option) {
      option = new Option(label || topic, topic);
      topicSelect.add(option);
    } else if (label) {
      option.textContent = label;
    }
    return option;
  }

  async function loadTopics() {
    const chosen = topicSelect.value;
    try {
      const res = await fetch(feedUrl('/topics'), { headers: authHeaders(), cache: 'no-store' });
      const text = await res.text();
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${errorOf(text)}`);
      const list = JSON.parse(text).topics;
      topicSelect.replaceChildren();
      if (!list.length) topicSelect.add(new Option('no steps yet', ''));
      for (const t of list) {
        const status = t.finished ? '✔ finished' : '● running';
        ensureTopicOption(t.topic, `${t.topic}   ${status}, ${t.last_seq} lines`);
      }
    } catch (e) {
      topicSelect.replaceChildren(new Option(`cannot list steps: ${e.message}`, ''));
    }
    if (chosen) ensureTopicOption(chosen).selected = true;
  }

  function parseInterval(raw) {
    const m = /^(\d+)(ms|s)?$/.exec(raw || '');
    if (!m) return null;
    return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  }

  function chosen() {
    return {
      topic: topicSelect.value,
      transport: transportSelect.value,
      intervalMs: Number(intervalSelect.value),
    };
  }

  function start() {
    const { topic, transport, intervalMs } = chosen();
    if (!TOPIC_SHAPE.test(topic)) {
      showState('error', 'choose a step');
      return;
    }
    const next = new URLSearchParams(location.search);
    next.set('topic', topic);
    next.set('transport', transport);
    if (transport === 'poll') next.set('interval', `${intervalMs}ms`);
    else next.delete('interval');
    history.replaceState(null, '', `?${next}`);
    connect(topic, transport, intervalMs);
  }

  function showIntervalFor(transport) {
    $('interval-label').hidden = transport !== 'poll';
  }

  $('controls').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (session && session.alive) disconnect();
    else start();
  });
  $('refresh').addEventListener('click', loadTopics);
  setInterval(() => {
    if (document.visibilityState === 'visible') loadTopics();
  }, TOPICS_REFRESH_MS);
  for (const select of [topicSelect, transportSelect, intervalSelect]) {
    select.addEventListener('change', () => {
      showIntervalFor(transportSelect.value);
      // Switching step or transport while watching restarts the view with the new choice.
      if (session && session.alive) start();
    });
  }

  // ---- start ------------------------------------------------------------------------------

  $('server').textContent = serverBase === location.origin ? '' : `feed: ${serverBase}`;
  const wantTransport = params.get('transport');
  if (wantTransport && TRANSPORT_LABELS[wantTransport]) transportSelect.value = wantTransport;
  const wantInterval = parseInterval(params.get('interval'));
  if (wantInterval) {
    const label = wantInterval < 1000 ? `${wantInterval} ms` : `${wantInterval / 1000} s`;
    if (![...intervalSelect.options].some((o) => Number(o.value) === wantInterval)) {
      intervalSelect.add(new Option(label, String(wantInterval)));
    }
    intervalSelect.value = String(wantInterval);
  }
  showIntervalFor(transportSelect.value);
  const wantTopic = params.get('topic');
  if (viewerState.errors.length) {
    showState('error', viewerState.errors[0]);
    addNote(viewerState.errors[0], 'error');
    flushRows();
  } else if (wantTopic && TOPIC_SHAPE.test(wantTopic)) {
    ensureTopicOption(wantTopic).selected = true;
    start();
    loadTopics();
  } else {
    loadTopics().then(() => {
      if (!topicSelect.value && topicSelect.options.length) topicSelect.selectedIndex = 0;
    });
    showState('idle', 'choose a step and a transport, then Connect');
  }
})();
