import type { StatusView } from './status-views.js'

// The status page's experiments view (#17): per experiment its state, the split, and per metric
// and guardrail the verdict with its always-valid interval drawn as a bar around "no effect",
// and the cumulative effect over time (the estimate and its interval at each look, from GET
// /experiments?history=1). Plain ES5, no template literals, no backslash escapes (see
// status-views.ts).

const CSS = `
.exp { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .9rem 1rem; margin-bottom: 1rem; }
.exp h3 { margin: 0 0 .4rem; font-size: 1.05rem; display: flex; gap: .5rem; align-items: baseline; flex-wrap: wrap; }
.exp .arms { font-size: .85rem; color: var(--muted); margin-bottom: .5rem; font-variant-numeric: tabular-nums; }
.exp table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
.exp td.name, .exp th.name { text-align: left; }
.exp td.bar { width: 30%; min-width: 8rem; }
.exp .ivbar { position: relative; height: 10px; background: var(--bg); border-radius: 3px; }
.exp .ivbar .band { position: absolute; top: 0; bottom: 0; background: var(--line); }
.exp .ivbar .zero { position: absolute; top: -2px; bottom: -2px; width: 1px; background: var(--muted); }
.exp .ivbar .range { position: absolute; top: 2px; bottom: 2px; background: var(--accent); opacity: .45; border-radius: 2px; }
.exp .ivbar .point { position: absolute; top: -2px; width: 2px; height: 14px; background: var(--accent); }
.exp .state { font-size: .75rem; padding: .05rem .45rem; border-radius: 1rem; border: 1px solid var(--line); white-space: nowrap; }
.exp .state.treatment_better { color: var(--ok); border-color: var(--ok); }
.exp .state.treatment_worse, .exp .state.srm { color: var(--bad); border-color: var(--bad); }
.exp .charts { display: flex; flex-wrap: wrap; gap: .8rem; margin-top: .7rem; }
.exp .chart { font-size: .78rem; color: var(--muted); }
.exp .chart svg { display: block; background: var(--bg); border-radius: 4px; }
.exp .chart .band { fill: var(--accent); opacity: .2; }
.exp .chart .line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
.exp .chart .zero { stroke: var(--muted); stroke-dasharray: 3 3; }
`

const JS = `
(function () {
  var S = window.penumbraStatus;
  var el = S.el;
  var SVGNS = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs) {
    var n = document.createElementNS(SVGNS, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) n.setAttribute(k, String(attrs[k]));
    return n;
  }
  function fin(x) { return typeof x === 'number' && isFinite(x); }
  function noEffect(kind) { return kind === 'latency_p99' ? 1 : 0; }
  function fmt(kind, x) {
    if (!fin(x)) return '–';
    var sign = x >= 0 ? '+' : '';
    if (kind === 'binary' || kind === 'errors') return sign + (x * 100).toFixed(2) + ' pp';
    if (kind === 'mean') return sign + (x * 100).toFixed(2) + '%';
    if (kind === 'latency') return sign + x.toFixed(Math.abs(x) < 10 ? 2 : 1) + ' ms';
    return '×' + x.toFixed(3);
  }

  // The interval as a bar on a scale centred on "no effect", with the ±minEffect band shaded.
  function intervalBar(m) {
    var v = m.verdict;
    var bar = el('div', { class: 'ivbar' });
    if (!v || !fin(v.estimate)) return bar;
    var z = noEffect(m.kind);
    var lo = fin(v.interval.lower) ? v.interval.lower : v.estimate;
    var hi = fin(v.interval.upper) ? v.interval.upper : v.estimate;
    var span = Math.max(Math.abs(lo - z), Math.abs(hi - z), 2 * (m.minEffect || 0)) * 1.1 || 1;
    function pos(x) { return Math.max(0, Math.min(100, 50 + 50 * (x - z) / span)); }
    var me = m.minEffect || 0;
    bar.appendChild(el('span', { class: 'band', style: 'left:' + pos(z - me) + '%;width:' + (pos(z + me) - pos(z - me)) + '%' }));
    bar.appendChild(el('span', { class: 'zero', style: 'left:50%' }));
    if (fin(v.interval.lower) && fin(v.interval.upper)) bar.appendChild(el('span', { class: 'range', style: 'left:' + pos(lo) + '%;width:' + Math.max(0.5, pos(hi) - pos(lo)) + '%' }));
    bar.appendChild(el('span', { class: 'point', style: 'left:calc(' + pos(v.estimate) + '% - 1px)' }));
    bar.setAttribute('title', 'estimate ' + fmt(m.kind, v.estimate) + ', interval [' + fmt(m.kind, v.interval.lower) + ', ' + fmt(m.kind, v.interval.upper) + ']; shaded: ±minEffect');
    return bar;
  }

  function row(m) {
    var v = m.verdict;
    var n = v ? v.n.treatment + '/' + v.n.control : '–';
    var iv = v && v.verdict !== 'no_data' ? '[' + fmt(m.kind, v.interval.lower) + ', ' + fmt(m.kind, v.interval.upper) + ']' : '–';
    var title = v ? v.test + '; ' + v.rule + '; fixed-horizon p = ' + (fin(v.fixedPValue) ? v.fixedPValue.toPrecision(3) : '–') : 'no data yet';
    if (m.state === 'inconclusive' && m.unitsNeeded && fin(m.unitsNeeded.total) && m.unitsNeeded.total > 0) title += '; about ' + m.unitsNeeded.total + ' more units needed';
    return el('tr', { class: 'metric-row', 'data-metric': m.metric, 'data-state': m.state, title: title },
      el('td', { class: 'name', text: m.metric }),
      el('td', { class: 'name', text: m.variant }),
      el('td', { text: v && v.verdict !== 'no_data' ? fmt(m.kind, v.estimate) : '–' }),
      el('td', { class: 'muted', text: iv }),
      el('td', { class: 'bar' }, intervalBar(m)),
      el('td', { text: n }),
      el('td', {}, el('span', { class: 'state ' + m.state, text: m.state.replace('_', ' ') })));
  }

  // Estimate and interval at each look: a band and a line over time, with "no effect" dashed.
  function chart(key, kind, points) {
    var pts = points.filter(function (p) { return fin(p.estimate); });
    if (pts.length < 2) return null;
    var W = 300, H = 90, P = 4;
    var t0 = pts[0].at, t1 = pts[pts.length - 1].at;
    var z = noEffect(kind);
    var lo = z, hi = z;
    pts.forEach(function (p) {
      lo = Math.min(lo, fin(p.lower) ? p.lower : p.estimate);
      hi = Math.max(hi, fin(p.upper) ? p.upper : p.estimate);
    });
    if (hi === lo) { hi += 1; lo -= 1; }
    function x(t) { return P + (W - 2 * P) * (t1 === t0 ? 1 : (t - t0) / (t1 - t0)); }
    function y(v) { return H - P - (H - 2 * P) * (v - lo) / (hi - lo); }
    var s = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    var upper = pts.map(function (p) { return x(p.at) + ',' + y(fin(p.upper) ? p.upper : p.estimate); });
    var lower = pts.slice().reverse().map(function (p) { return x(p.at) + ',' + y(fin(p.lower) ? p.lower : p.estimate); });
    s.appendChild(svg('polygon', { class: 'band', points: upper.concat(lower).join(' ') }));
    s.appendChild(svg('line', { class: 'zero', x1: P, x2: W - P, y1: y(z), y2: y(z) }));
    s.appendChild(svg('polyline', { class: 'line', points: pts.map(function (p) { return x(p.at) + ',' + y(p.estimate); }).join(' ') }));
    var last = pts[pts.length - 1];
    return el('div', { class: 'chart', 'data-series': key },
      el('div', { text: key + ': ' + fmt(kind, last.estimate) + ' at n = ' + last.n + ' (' + pts.length + ' looks since ' + new Date(t0).toLocaleTimeString() + ')' }), s);
  }

  function render(list, box) {
    if (!list || list.length === 0) { box.appendChild(el('p', { class: 'empty', text: 'no experiments configured' })); return; }
    list.forEach(function (e) {
      var a = e.analysis || { metrics: [], guardrails: [], srm: null };
      var srm = a.srm;
      var card = el('div', { class: 'exp', 'data-experiment': e.name });
      card.appendChild(el('h3', {}, e.name,
        el('span', { class: 'badge' + (e.state && !e.state.enabled ? ' off' : ''), text: e.state ? (e.state.enabled ? 'traffic ' + S.pct(e.state.traffic) : 'disabled: everyone on the control') : '' }),
        srm && srm.mismatch ? el('span', { class: 'state srm', text: 'sample-ratio mismatch (p = ' + srm.pValue.toPrecision(2) + '): verdicts withheld' }) : null));
      card.appendChild(el('div', { class: 'arms', text: e.variants.map(function (v) {
        var err = v.requests ? ', ' + S.pct((v.errors || 0) / v.requests) + ' 5xx' : '';
        return v.name + ' (' + v.backend + ', weight ' + v.weight.toFixed(2) + '): ' + v.units + ' units, ' + (v.requests || 0) + ' requests' + err;
      }).join(' · ') }));
      var table = el('table', {}, el('tr', {},
        el('th', { class: 'name', text: 'metric' }), el('th', { class: 'name', text: 'variant' }), el('th', { text: 'effect' }),
        el('th', { text: 'always-valid CI' }), el('th', { text: '' }), el('th', { text: 'n (t/c)' }), el('th', { text: 'state' })));
      a.metrics.concat(a.guardrails || []).forEach(function (m) { table.appendChild(row(m)); });
      card.appendChild(table);
      var charts = el('div', { class: 'charts' });
      var kinds = {};
      a.metrics.concat(a.guardrails || []).forEach(function (m) { kinds[m.metric + '/' + m.variant] = m.kind; });
      var h = e.history || {};
      for (var k in h) if (Object.prototype.hasOwnProperty.call(h, k)) { var c = chart(k, kinds[k], h[k]); if (c) charts.appendChild(c); }
      if (charts.firstChild) card.appendChild(charts);
      box.appendChild(card);
    });
  }

  S.view({ id: 'experiments', title: 'Experiments', url: 'experiments?history=1', render: render });
})();
`

/** The experiments panel of the status page. */
export const EXPERIMENTS_VIEW: StatusView = { css: CSS, js: JS }
