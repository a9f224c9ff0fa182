// The live status page served at admin `GET /` (issue #5): one self-contained HTML document
// (inline CSS and JS, no external resources, no build step). It polls the admin JSON API with
// relative URLs (`report`, `mismatches`, `mismatches/<id>`), so it also works behind a path
// prefix, and builds every element with textContent/setAttribute: bodies come from models and
// are never parsed as HTML.
//
// Stable hooks for tests and scripts: #shadows, .shadow-card[data-shadow=<name>],
// .disagreement[data-level=requests|instances] .rate/.ci/.counts, .latency tr[data-upstream] .p50/.p99,
// .mirrored, .errors, .drops, #mismatches li[data-id], #detail, #primary-pane/#shadow-pane,
// .json-line[data-ptr], .diff-hit[data-path], #differences .diff-item[data-path].

import { STATUS_VIEWS } from './status-views.js'

const CSS = String.raw`
:root { color-scheme: light dark; --bg: #f6f7f9; --fg: #1c2330; --muted: #667085; --card: #fff; --line: #dde1e7;
  --accent: #3b5bdb; --bad: #c92a2a; --bad-bg: #fff0f0; --ok: #2b8a3e; --hit: #fff3bf; --hit-line: #f08c00; }
@media (prefers-color-scheme: dark) { :root { --bg: #12151b; --fg: #e6e9ef; --muted: #98a2b3; --card: #1b2029; --line: #2c3340;
  --accent: #7c94ff; --bad: #ff8787; --bad-bg: #3a1d1d; --ok: #69db7c; --hit: #4a3b10; --hit-line: #ffa94d; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .4rem 1rem; padding: .8rem 1.2rem; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 1.25rem; margin: 0; letter-spacing: .02em; }
header nav { margin-left: auto; display: flex; gap: .8rem; }
a { color: var(--accent); }
main { padding: 1rem 1.2rem 2rem; max-width: 1500px; margin: 0 auto; }
h2 { font-size: 1rem; margin: 1.2rem 0 .6rem; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
h3 { margin: 0; font-size: 1.1rem; }
.muted { color: var(--muted); }
.conn { font-size: .85rem; padding: .1rem .5rem; border-radius: 1rem; }
.conn.error { background: var(--bad-bg); color: var(--bad); }
.empty { color: var(--muted); font-style: italic; margin: .4rem 0; }
#shadows { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1rem; }
#shadows > .empty { grid-column: 1 / -1; }
.shadow-card, .panel { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .9rem 1rem; }
.card-head { display: flex; align-items: baseline; gap: .6rem; flex-wrap: wrap; }
.badge { font-size: .75rem; padding: .05rem .45rem; border-radius: 1rem; border: 1px solid var(--line); color: var(--muted); }
.badge.off { color: var(--bad); border-color: var(--bad); }
.stats { display: grid; grid-template-columns: repeat(4, 1fr); gap: .4rem; margin: .7rem 0; }
.stat { border: 1px solid var(--line); border-radius: 6px; padding: .3rem .5rem; }
.stat .label { display: block; font-size: .72rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.stat .value { font-size: 1.05rem; font-variant-numeric: tabular-nums; }
.stat.bad .value { color: var(--bad); }
.disagreements { display: grid; grid-template-columns: 1fr 1fr; gap: .6rem; }
.disagreement { border: 1px solid var(--line); border-radius: 6px; padding: .4rem .6rem; }
.disagreement .rate { font-size: 1.5rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.disagreement .ci, .disagreement .counts { font-size: .8rem; color: var(--muted); font-variant-numeric: tabular-nums; }
.cibar { position: relative; height: 6px; background: var(--line); border-radius: 3px; margin: .35rem 0 .2rem; }
.cibar .range { position: absolute; top: 0; bottom: 0; background: var(--accent); opacity: .35; border-radius: 3px; }
.cibar .point { position: absolute; top: -3px; width: 2px; height: 12px; background: var(--accent); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: .2rem .4rem; border-bottom: 1px solid var(--line); }
th:first-child, td:first-child { text-align: left; }
.latency { margin-top: .7rem; }
.top-paths { margin: .5rem 0 0; padding: 0; list-style: none; font-size: .85rem; }
.top-paths li { display: flex; justify-content: space-between; gap: 1rem; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.split { display: grid; grid-template-columns: minmax(280px, 1fr) 2.4fr; gap: 1rem; align-items: start; }
@media (max-width: 900px) { .split { grid-template-columns: 1fr; } .stats { grid-template-columns: repeat(2, 1fr); } }
.panel-head { display: flex; align-items: center; justify-content: space-between; gap: .5rem; }
#mismatches { list-style: none; margin: 0; padding: 0; max-height: 70vh; overflow: auto; }
#mismatches li { border-bottom: 1px solid var(--line); }
#mismatches li button { all: unset; box-sizing: border-box; display: block; width: 100%; padding: .4rem .3rem; cursor: pointer; }
#mismatches li button:focus-visible { outline: 2px solid var(--accent); }
#mismatches li:hover, #mismatches li.selected { background: var(--bg); }
#mismatches li.selected { box-shadow: inset 3px 0 0 var(--accent); }
.mm-top { display: flex; justify-content: space-between; gap: .5rem; }
.mm-path { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; overflow-wrap: anywhere; }
.mm-paths { font-size: .78rem; color: var(--muted); font-family: ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
.meta { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; font-size: .85rem; margin-bottom: .6rem; }
.meta b { font-weight: 600; }
#differences { list-style: none; margin: 0 0 .8rem; padding: 0; font-size: .85rem; }
#differences li { display: grid; grid-template-columns: 5.5rem minmax(8rem, 1fr) 1fr 1fr; gap: .5rem; padding: .2rem .3rem; border-bottom: 1px solid var(--line); cursor: pointer; }
#differences li:hover { background: var(--hit); }
#differences code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
.kind { font-size: .72rem; text-transform: uppercase; color: var(--muted); }
.panes { display: grid; grid-template-columns: 1fr 1fr; gap: .8rem; }
.pane h3 { font-size: .95rem; margin-bottom: .3rem; }
.pane pre { margin: 0; padding: .4rem 0; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; overflow: auto; max-height: 65vh;
  font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
.json-line { display: block; padding: 0 .6rem; white-space: pre; min-height: 1.45em; }
.json-line.diff-hit { background: var(--hit); box-shadow: inset 3px 0 0 var(--hit-line); }
.json-line.flash { outline: 2px solid var(--hit-line); }
.status-line { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; padding: .1rem .4rem; display: inline-block; border-radius: 4px; }
.status-line.diff-hit { background: var(--hit); box-shadow: inset 3px 0 0 var(--hit-line); }
details.headers { margin: .3rem 0; font-size: .85rem; }
.diff-absent { font-size: .8rem; color: var(--bad); margin: .2rem 0; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.view { margin-top: 1rem; }
footer { color: var(--muted); font-size: .8rem; padding: 0 1.2rem 1rem; }
`

// Client code. No template literals and no backslash escapes that the TypeScript raw string would
// change: it is emitted verbatim.
const JS = String.raw`
'use strict';
(function () {
  var REFRESH_MS = 2000;
  var MAX_LINES = 4000;
  var MISMATCH_LIMIT = 50;
  // Relative to the page, so /prefix and /prefix/ both work behind a reverse proxy.
  var path = location.pathname;
  var BASE = path.charAt(path.length - 1) === '/' ? path : path + '/';

  var state = { reportKey: null, listKey: null, selected: null, filter: '', shadowNames: [] };

  function $(id) { return document.getElementById(id); }

  // Builds an element; children are nodes or strings (always text, never HTML).
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        var v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') node.className = v;
        else if (k === 'text') node.textContent = String(v);
        else if (k === 'onclick') node.addEventListener('click', v);
        else node.setAttribute(k, String(v));
      }
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function pct(x) { return typeof x === 'number' && isFinite(x) ? (x * 100).toFixed(2) + '%' : '–'; }
  function ms(x) { return typeof x === 'number' && isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) + ' ms' : '–'; }
  function num(x) { return typeof x === 'number' && isFinite(x) ? String(x) : '0'; }
  function sumValues(o, keys) {
    var s = 0;
    if (!o) return 0;
    for (var k in o) {
      if (!Object.prototype.hasOwnProperty.call(o, k)) continue;
      if (keys && keys.indexOf(k) < 0) continue;
      if (typeof o[k] === 'number') s += o[k];
    }
    return s;
  }
  function timeOf(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso || '') : d.toLocaleTimeString();
  }

  // --- Admin token (admin.protectReads): asked once, kept in this tab's sessionStorage, sent as a
  // bearer header; never put in a URL (it would land in history and access logs).
  var TOKEN_KEY = 'penumbra.adminToken';
  var memToken = null;
  function savedToken() { try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; } }
  function askToken(message) {
    $('auth').hidden = false;
    $('auth-msg').textContent = message;
    $('auth-token').focus();
  }
  $('auth').addEventListener('submit', function (e) {
    e.preventDefault();
    var v = $('auth-token').value.trim();
    if (!v) return;
    try { sessionStorage.setItem(TOKEN_KEY, v); } catch (err) { /* private mode: kept for this page only */ }
    memToken = v;
    $('auth-token').value = '';
    $('auth').hidden = true;
    refresh();
  });

  function getJson(url) {
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, 8000) : null;
    var headers = { accept: 'application/json' };
    var tok = savedToken() || memToken;
    if (tok) headers.authorization = 'Bearer ' + tok;
    return fetch(BASE + url, { cache: 'no-store', headers: headers, signal: ctl ? ctl.signal : undefined })
      .then(function (res) {
        return res.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
          if (res.status === 401) askToken(tok ? 'That token was refused: enter the admin token.' : 'This penumbra needs its admin token to show data.');
          if (!res.ok) {
            var msg = body && body.message ? body.message : ('HTTP ' + res.status);
            var err = new Error(msg); err.status = res.status; throw err;
          }
          return body;
        });
      })
      .finally(function () { if (timer) clearTimeout(timer); });
  }

  // --- Shadows ---------------------------------------------------------------------------------

  var DROP_REASONS = ['concurrency', 'body_too_large', 'response_too_large'];

  function stat(cls, label, value, title, bad) {
    return el('div', { class: 'stat ' + cls + (bad ? ' bad' : ''), title: title },
      el('span', { class: 'label', text: label }), el('span', { class: 'value', text: value }));
  }

  function disagreementBlock(level, label, d) {
    d = d || {};
    var compared = typeof d.compared === 'number' ? d.compared : 0;
    var has = compared > 0;
    var lower = typeof d.lower === 'number' ? d.lower : 0;
    var upper = typeof d.upper === 'number' ? d.upper : 1;
    var bar = el('div', { class: 'cibar', title: '95% Wilson interval' });
    if (has) {
      bar.appendChild(el('div', { class: 'range', style: 'left:' + (lower * 100) + '%;width:' + Math.max(0.5, (upper - lower) * 100) + '%' }));
      bar.appendChild(el('div', { class: 'point', style: 'left:' + (Math.min(1, Math.max(0, d.rate)) * 100) + '%' }));
    }
    return el('div', { class: 'disagreement', 'data-level': level },
      el('div', { class: 'label muted', text: label }),
      el('div', { class: 'rate', 'data-value': has ? d.rate : null, text: has ? pct(d.rate) : '–' }),
      bar,
      el('div', { class: 'ci', 'data-lower': has ? lower : null, 'data-upper': has ? upper : null,
        text: has ? '95% CI ' + pct(lower) + ' – ' + pct(upper) : 'nothing compared yet' }),
      el('div', { class: 'counts', text: num(d.disagreements) + ' / ' + num(compared) + (level === 'instances' ? ' instances' : ' requests') }));
  }

  function shadowCard(s) {
    var req = s.requests || {};
    var errors = (req.error || 0) + (req.timeout || 0);
    var drops = sumValues(s.skipped, DROP_REASONS) + sumValues(s.comparisonsDropped);
    var c = s.comparisons || {};
    var st = s.state || null;
    var dis = s.disagreement || {};
    var lat = s.latencyMs || {};
    var noTraffic = !(s.mirrored > 0) && !(c.total > 0);

    var head = el('div', { class: 'card-head' },
      el('h3', { class: 'name', text: s.shadow }),
      st ? el('span', { class: 'badge' + (st.enabled ? '' : ' off'), text: st.enabled ? 'enabled' : 'disabled' }) : null,
      st ? el('span', { class: 'badge', text: 'sample ' + pct(st.sampleRate).replace('.00%', '%') }) : null);

    var stats = el('div', { class: 'stats' },
      stat('mirrored', 'mirrored', num(s.mirrored), 'requests sent to this shadow'),
      stat('compared', 'compared', num(c.total), 'match ' + num(c.match) + ', mismatch ' + num(c.mismatch) + ', shadow_error ' + num(c.shadow_error) +
        ', shadow_timeout ' + num(c.shadow_timeout) + ', unparseable ' + num(c.unparseable)),
      stat('errors', 'errors', String(errors), 'error ' + num(req.error) + ', timeout ' + num(req.timeout), errors > 0),
      stat('drops', 'drops', String(drops), dropTitle(s), drops > 0));

    var card = el('article', { class: 'shadow-card', 'data-shadow': s.shadow }, head, stats);
    // Nothing compared: say why (nothing mirrored, every call failed, ...), never a bare 0%.
    if (s.noComparisons) card.appendChild(el('p', { class: 'empty no-comparisons' + (noTraffic ? ' no-traffic' : ''), text: s.noComparisons.charAt(0).toUpperCase() + s.noComparisons.slice(1) + '.' }));
    else if (noTraffic) card.appendChild(el('p', { class: 'empty no-traffic', text: 'No traffic mirrored to this shadow yet.' }));
    card.appendChild(el('div', { class: 'disagreements' },
      disagreementBlock('requests', 'request disagreement', dis.requests),
      disagreementBlock('instances', 'instance disagreement', dis.instances)));

    var p = lat.primary || {}; var sh = lat.shadow || {};
    card.appendChild(el('table', { class: 'latency' },
      el('thead', null, el('tr', null, el('th', { text: 'latency' }), el('th', { text: 'p50' }), el('th', { text: 'p99' }))),
      el('tbody', null,
        el('tr', { 'data-upstream': 'primary' }, el('td', { text: 'primary' }), el('td', { class: 'p50', text: ms(p.p50) }), el('td', { class: 'p99', text: ms(p.p99) })),
        el('tr', { 'data-upstream': 'shadow' }, el('td', { text: s.shadow }), el('td', { class: 'p50', text: ms(sh.p50) }), el('td', { class: 'p99', text: ms(sh.p99) })))));

    var paths = Array.isArray(s.topPaths) ? s.topPaths : [];
    if (paths.length > 0) {
      card.appendChild(el('div', { class: 'label muted', text: 'top differing paths' }));
      card.appendChild(el('ul', { class: 'top-paths' }, paths.map(function (tp) {
        return el('li', { 'data-path': tp.path }, el('span', { text: tp.path }), el('span', { class: 'count', text: num(tp.count) }));
      })));
    }
    return card;
  }

  function dropTitle(s) {
    var parts = [];
    DROP_REASONS.forEach(function (r) { if (s.skipped && s.skipped[r]) parts.push(r + ' ' + s.skipped[r]); });
    var cd = s.comparisonsDropped || {};
    for (var k in cd) if (Object.prototype.hasOwnProperty.call(cd, k) && cd[k]) parts.push('comparison ' + k + ' ' + cd[k]);
    return parts.length ? parts.join(', ') : 'nothing dropped';
  }

  function renderReport(report) {
    var shadows = report && Array.isArray(report.shadows) ? report.shadows : [];
    var key = JSON.stringify(shadows);
    $('version').textContent = report && report.version ? 'v' + report.version : '';
    if (key === state.reportKey) return;
    state.reportKey = key;
    var box = $('shadows');
    clear(box);
    if (shadows.length === 0) {
      box.appendChild(el('p', { class: 'empty no-shadows', text: 'No shadows configured. Add one under "shadows:" in the config and reload (SIGHUP).' }));
    } else {
      shadows.forEach(function (s) { box.appendChild(shadowCard(s)); });
    }
    updateFilter(shadows.map(function (s) { return s.shadow; }));
  }

  function updateFilter(names) {
    if (JSON.stringify(names) === JSON.stringify(state.shadowNames)) return;
    state.shadowNames = names;
    var sel = $('shadow-filter');
    var keep = sel.value;
    clear(sel);
    sel.appendChild(el('option', { value: '', text: 'all shadows' }));
    names.forEach(function (n) { sel.appendChild(el('option', { value: n, text: n })); });
    sel.value = names.indexOf(keep) >= 0 ? keep : '';
  }

  // --- Mismatch list ---------------------------------------------------------------------------

  function renderList(list) {
    list = Array.isArray(list) ? list : (list && Array.isArray(list.mismatches) ? list.mismatches : []);
    var key = JSON.stringify(list);
    if (key === state.listKey) return;
    state.listKey = key;
    var ul = $('mismatches');
    clear(ul);
    $('mismatches-empty').hidden = list.length > 0;
    list.forEach(function (m) {
      var n = typeof m.differenceCount === 'number' ? m.differenceCount : (Array.isArray(m.differences) ? m.differences.length : null);
      var status = m.primaryStatus !== undefined && m.primaryStatus !== m.shadowStatus ? ' · HTTP ' + m.primaryStatus + ' vs ' + m.shadowStatus : '';
      var li = el('li', { 'data-id': m.id, 'data-shadow': m.shadow, class: m.id === state.selected ? 'selected' : null },
        el('button', { type: 'button', onclick: function () { select(m.id); } },
          el('div', { class: 'mm-top' },
            el('span', null, el('b', { class: 'mm-shadow', text: m.shadow }), ' ', el('span', { class: 'muted', text: timeOf(m.time) })),
            el('span', { class: 'muted', text: (n === null ? '' : n + (n === 1 ? ' difference' : ' differences')) + status })),
          el('div', { class: 'mm-path', text: (m.method || '') + ' ' + (m.path || '') }),
          Array.isArray(m.paths) && m.paths.length ? el('div', { class: 'mm-paths', text: m.paths.join('  ') }) : null));
      ul.appendChild(li);
    });
  }

  // --- Mismatch detail -------------------------------------------------------------------------

  function escapeSegment(s) { return String(s).replace(/~/g, '~0').replace(/[/]/g, '~1'); }

  // Pretty JSON as lines, each with the JSON Pointer of the value it shows (closing brackets
  // carry their container's pointer).
  function jsonLines(value, ptr, indent, key, last, out) {
    var pad = new Array(indent + 1).join('  ');
    var prefix = pad + (key === null ? '' : JSON.stringify(key) + ': ');
    var comma = last ? '' : ',';
    if (Array.isArray(value)) {
      if (value.length === 0) { out.push({ ptr: ptr, text: prefix + '[]' + comma }); return; }
      out.push({ ptr: ptr, text: prefix + '[' });
      for (var i = 0; i < value.length; i++) jsonLines(value[i], ptr + '/' + i, indent + 1, null, i === value.length - 1, out);
      out.push({ ptr: ptr, text: pad + ']' + comma });
    } else if (value !== null && typeof value === 'object') {
      var keys = Object.keys(value);
      if (keys.length === 0) { out.push({ ptr: ptr, text: prefix + '{}' + comma }); return; }
      out.push({ ptr: ptr, text: prefix + '{' });
      for (var j = 0; j < keys.length; j++) jsonLines(value[keys[j]], ptr + '/' + escapeSegment(keys[j]), indent + 1, keys[j], j === keys.length - 1, out);
      out.push({ ptr: ptr, text: pad + '}' + comma });
    } else {
      out.push({ ptr: ptr, text: prefix + (value === undefined ? 'undefined' : JSON.stringify(value)) + comma });
    }
  }

  // The most specific difference path that covers a line's pointer (the path itself or an ancestor).
  function hitFor(ptr, paths) {
    var best = null;
    for (var i = 0; i < paths.length; i++) {
      var d = paths[i];
      if (ptr === d || d === '' || ptr.indexOf(d + '/') === 0) {
        if (best === null || d.length > best.length) best = d;
      }
    }
    return best;
  }

  function renderJson(value, basePtr, diffPaths) {
    var pre = el('pre', { class: 'json-body' });
    var lines = [];
    if (typeof value === 'string') {
      var parsed;
      try { parsed = JSON.parse(value); } catch (e) { parsed = undefined; }
      if (parsed !== undefined && parsed !== null && typeof parsed === 'object') value = parsed;
    }
    if (typeof value === 'string') {
      value.split(/\r?\n/).forEach(function (t) { lines.push({ ptr: basePtr, text: t }); });
    } else if (value === null || value === undefined) {
      lines.push({ ptr: basePtr, text: value === null ? '(empty body)' : '(no body)' });
    } else {
      jsonLines(value, basePtr, 0, null, true, lines);
    }
    var found = {};
    var shown = Math.min(lines.length, MAX_LINES);
    for (var i = 0; i < shown; i++) {
      var l = lines[i];
      var hit = hitFor(l.ptr, diffPaths);
      if (hit !== null) found[hit] = true;
      pre.appendChild(el('span', { class: 'json-line' + (hit !== null ? ' diff-hit' : ''), 'data-ptr': l.ptr, 'data-path': hit, text: l.text }));
    }
    if (lines.length > shown) pre.appendChild(el('span', { class: 'json-line muted', text: '… ' + (lines.length - shown) + ' more lines not shown' }));
    return { node: pre, found: found };
  }

  function pane(id, title, res, diffs) {
    res = res || {};
    var bodyPaths = []; var headerPaths = []; var statusHit = false;
    diffs.forEach(function (d) {
      if (d.kind === 'status') statusHit = true;
      else if (d.kind === 'header') headerPaths.push(d.path);
      else bodyPaths.push(d.path);
    });
    var box = el('div', { class: 'pane', id: id });
    box.appendChild(el('h3', null, title, ' ',
      el('span', { class: 'status-line' + (statusHit ? ' diff-hit' : ''), 'data-ptr': '/status', 'data-path': statusHit ? '/status' : null, text: 'HTTP ' + (res.status === undefined ? '?' : res.status) }),
      typeof res.durationMs === 'number' ? el('span', { class: 'muted', text: ' ' + ms(res.durationMs) }) : null));
    if (res.headers && typeof res.headers === 'object') {
      var h = renderJson(res.headers, '/headers', headerPaths);
      box.appendChild(el('details', { class: 'headers', open: headerPaths.length > 0 ? '' : null }, el('summary', { text: 'headers' }), h.node));
      headerPaths.forEach(function (p) { if (!h.found[p]) box.appendChild(el('div', { class: 'diff-absent', 'data-path': p, text: 'absent here: ' + p })); });
    }
    var b = renderJson(res.body, '', bodyPaths);
    bodyPaths.forEach(function (p) { if (!b.found[p]) box.appendChild(el('div', { class: 'diff-absent', 'data-path': p, text: 'absent here: ' + p })); });
    box.appendChild(b.node);
    return box;
  }

  function short(v) {
    if (v === undefined) return '(absent)';
    var s;
    try { s = JSON.stringify(v); } catch (e) { s = String(v); }
    if (s === undefined) s = String(v);
    return s.length > 200 ? s.slice(0, 200) + '…' : s;
  }

  function reveal(p) {
    ['primary-pane', 'shadow-pane'].forEach(function (id) {
      var pn = $(id); if (!pn) return;
      var hits = pn.querySelectorAll('.diff-hit');
      for (var i = 0; i < hits.length; i++) {
        if (hits[i].getAttribute('data-path') === p) {
          var node = hits[i];
          node.scrollIntoView({ block: 'center' });
          node.classList.add('flash');
          setTimeout(function () { node.classList.remove('flash'); }, 1200);
          break;
        }
      }
    });
  }

  function renderDetail(m) {
    var box = $('detail-body');
    clear(box);
    var diffs = Array.isArray(m.differences) ? m.differences.filter(function (d) { return d && typeof d.path === 'string'; }) : [];
    // The stored record names the shadow's response "shadowResponse" ("shadow" is its name).
    var shadowRes = m.shadowResponse || (m.shadow && typeof m.shadow === 'object' ? m.shadow : null);
    var shadowName = typeof m.shadow === 'string' ? m.shadow : 'shadow';
    box.appendChild(el('div', { class: 'meta' },
      el('span', null, el('b', { text: 'id ' }), el('code', { class: 'mm-id', text: m.id })),
      el('span', null, el('b', { text: 'time ' }), String(m.time || '')),
      el('span', null, el('b', { text: 'shadow ' }), shadowName),
      el('span', null, el('b', { text: 'request ' }), (m.method || '') + ' ' + (m.path || '')),
      m.requestId ? el('span', null, el('b', { text: 'request id ' }), String(m.requestId)) : null,
      m.format ? el('span', null, el('b', { text: 'format ' }), String(m.format)) : null));
    var total = typeof m.differenceCount === 'number' ? m.differenceCount : diffs.length;
    box.appendChild(el('div', { class: 'muted', text: total + (total === 1 ? ' difference' : ' differences') + (total > diffs.length ? ' (first ' + diffs.length + ' recorded)' : '') }));
    box.appendChild(el('ul', { id: 'differences' }, diffs.map(function (d) {
      return el('li', { class: 'diff-item', 'data-path': d.path, 'data-kind': d.kind, title: 'show in both bodies', onclick: function () { reveal(d.path); } },
        el('span', { class: 'kind', text: d.kind }),
        el('code', { class: 'path', text: d.path === '' ? '(whole body)' : d.path }),
        el('code', { class: 'primary-value', text: short(d.primary) }),
        el('code', { class: 'shadow-value', text: short(d.shadow) }));
    })));
    box.appendChild(el('div', { class: 'panes' },
      pane('primary-pane', 'primary', m.primary, diffs),
      pane('shadow-pane', shadowName, shadowRes, diffs)));
    $('detail-empty').hidden = true;
    box.hidden = false;
  }

  function select(id) {
    state.selected = id;
    var items = $('mismatches').querySelectorAll('li');
    for (var i = 0; i < items.length; i++) items[i].classList.toggle('selected', items[i].getAttribute('data-id') === id);
    $('detail').setAttribute('data-state', 'loading');
    getJson('mismatches/' + encodeURIComponent(id)).then(function (m) {
      if (state.selected !== id) return;
      renderDetail(m || {});
      $('detail').setAttribute('data-state', 'loaded');
      $('detail').setAttribute('data-id', id);
    }).catch(function (err) {
      if (state.selected !== id) return;
      clear($('detail-body'));
      $('detail-body').hidden = true;
      $('detail-empty').hidden = false;
      $('detail-empty').textContent = err && err.status === 404 ? 'This mismatch is no longer stored (evicted).' : 'Could not load the mismatch: ' + (err && err.message);
      $('detail').setAttribute('data-state', 'error');
    });
  }

  // --- Views of other capabilities (status-views.ts) ---------------------------------------------
  // Each registers {id, title, url, render(data, box)}; every refresh fetches its url (relative,
  // like ours) and renders into its own section, only when the answer changed. A view whose
  // endpoint answers 404 (the capability is not configured) or 403 (switched off) stays hidden.

  var views = [];
  window.penumbraStatus = {
    el: el, clear: clear, pct: pct, ms: ms, num: num, stat: stat, timeOf: timeOf,
    view: function (v) {
      var section = el('section', { class: 'view', id: 'view-' + v.id, hidden: '' }, el('h2', { text: v.title }));
      var box = el('div', { class: 'view-body' });
      section.appendChild(box);
      $('views').appendChild(section);
      views.push({ spec: v, section: section, box: box, key: null });
    }
  };

  function refreshView(w) {
    return getJson(w.spec.url).then(function (data) {
      var key = JSON.stringify(data);
      w.section.hidden = false;
      if (key === w.key) return;
      w.key = key;
      clear(w.box);
      w.spec.render(data, w.box);
    }, function (err) {
      // 403: a capability that is switched off (chaos.enabled: false).
      if (err && (err.status === 404 || err.status === 403)) { w.section.hidden = true; return; }
      throw err;
    });
  }

  // --- Refresh loop ----------------------------------------------------------------------------

  function refresh() {
    var q = 'mismatches?limit=' + MISMATCH_LIMIT + (state.filter ? '&shadow=' + encodeURIComponent(state.filter) : '');
    return Promise.all([getJson('report'), getJson(q)].concat(views.map(refreshView))).then(function (r) {
      renderReport(r[0]);
      renderList(r[1]);
      var conn = $('conn'); conn.className = 'conn ok'; conn.textContent = '';
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      document.body.setAttribute('data-loaded', 'true');
    }).catch(function (err) {
      var conn = $('conn'); conn.className = 'conn error';
      conn.textContent = err && err.status === 401 ? 'admin token needed' : 'cannot reach penumbra (' + (err && err.message) + '), retrying';
    });
  }

  function loop() {
    (document.hidden ? Promise.resolve() : refresh()).then(function () { setTimeout(loop, REFRESH_MS); });
  }

  $('shadow-filter').addEventListener('change', function (e) {
    state.filter = e.target.value;
    state.listKey = null;
    refresh();
  });
  document.addEventListener('visibilitychange', function () { if (!document.hidden) refresh(); });
  ['report', 'shadows', 'mismatches', 'noise', 'metrics'].forEach(function (n) { var a = $('link-' + n); if (a) a.setAttribute('href', BASE + n); });
  // The views' scripts run after this one (see the HTML); start polling once they registered.
  window.addEventListener('DOMContentLoaded', loop);
})();
`

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>penumbra · shadow status</title>
<style>${CSS}${STATUS_VIEWS.map((v) => v.css).join('')}</style>
</head>
<body>
<header>
  <h1>penumbra</h1><span id="version" class="muted"></span>
  <span id="updated" class="muted">loading…</span><span id="conn" class="conn" role="status"></span>
  <form id="auth" hidden><label>admin token <input id="auth-token" type="password" autocomplete="current-password" aria-describedby="auth-msg"></label> <button type="submit">Show data</button> <span id="auth-msg" class="muted"></span></form>
  <nav><a id="link-report" href="report">report</a><a id="link-shadows" href="shadows">shadows</a><a id="link-mismatches" href="mismatches">mismatches</a><a id="link-noise" href="noise">noise</a><a id="link-metrics" href="metrics">metrics</a></nav>
</header>
<main>
  <h2>Shadows</h2>
  <div id="shadows" aria-live="polite"><p class="empty">Loading…</p></div>
  <div class="split">
    <section>
      <div class="panel-head"><h2>Recent mismatches</h2>
        <label><span class="muted">shadow </span><select id="shadow-filter"><option value="">all shadows</option></select></label></div>
      <div class="panel">
        <ul id="mismatches"></ul>
        <p id="mismatches-empty" class="empty" hidden>No mismatches recorded yet.</p>
      </div>
    </section>
    <section>
      <h2>Mismatch</h2>
      <div id="detail" class="panel" data-state="empty">
        <p id="detail-empty" class="empty">Select a mismatch to compare the primary and shadow responses side by side.</p>
        <div id="detail-body" hidden></div>
      </div>
    </section>
  </div>
  <div id="views"></div>
</main>
<footer>Refreshes every 2 s. Rates are shown with their 95% Wilson intervals; latency is measured on the same mirrored requests for primary and shadow.</footer>
<script>${JS}</script>
${STATUS_VIEWS.map((v) => `<script>${v.js}</script>`).join('\n')}
</body>
</html>
`

/** The status page: one self-contained HTML document (inline CSS and JS). */
export function statusPageHtml (): string {
  return HTML
}
