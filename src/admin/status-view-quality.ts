import type { StatusView } from './status-views.js'

// The status page's quality panel (issue #19): online accuracy per model with its interval, the
// paired primary-vs-shadow verdicts in words, coverage and its warnings, and a chart of accuracy
// over time per model (per minute of prediction time, from GET /quality's `history`). Plain ES5
// like the page's own script (see status-views.ts).

const css = `
#view-quality table { border-collapse: collapse; margin: 6px 0 10px; }
#view-quality th, #view-quality td { padding: 3px 10px 3px 0; text-align: left; font-variant-numeric: tabular-nums; }
#view-quality .q-verdict { margin: 4px 0; }
#view-quality .q-better { color: #1a7f37; }
#view-quality .q-worse { color: #cf222e; }
#view-quality .q-warn { color: #9a6700; margin: 4px 0; }
#view-quality svg { background: #fafafa; border: 1px solid #ddd; margin-top: 6px; }
#view-quality .q-legend span { display: inline-block; margin-right: 12px; }
#view-quality .q-swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
`

const js = `
(function () {
  var S = window.penumbraStatus;
  var el = S.el;
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bf3989', '#9a6700', '#57606a'];
  function svg(tag, attrs) {
    var n = document.createElementNS(NS, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) n.setAttribute(k, String(attrs[k]));
    return n;
  }
  function ci(a) { return a ? S.pct(a.rate) + ' [' + S.pct(a.lower) + ', ' + S.pct(a.upper) + ']' : '–'; }
  function mean(m) { return m ? m.value.toFixed(3) + ' [' + (isFinite(m.lower) ? m.lower.toFixed(3) : '–') + ', ' + (isFinite(m.upper) ? m.upper.toFixed(3) : '–') + ']' : '–'; }
  function chart(history) {
    var W = 640, H = 180, L = 40, B = 20;
    var all = [];
    history.forEach(function (h) { h.points.forEach(function (p) { all.push(Date.parse(p.t)); }); });
    if (all.length === 0) return el('p', { text: 'No labelled predictions yet: the chart starts with the first label.' });
    var t0 = Math.min.apply(null, all), t1 = Math.max.apply(null, all);
    if (t1 === t0) t1 = t0 + 60000;
    var root = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'accuracy over time per model' });
    [0, 0.5, 1].forEach(function (y) {
      var py = (H - B) - y * (H - B - 10);
      root.appendChild(svg('line', { x1: L, x2: W - 5, y1: py, y2: py, stroke: '#ddd' }));
      var label = svg('text', { x: 2, y: py + 4, 'font-size': 10, fill: '#57606a' });
      label.textContent = (y * 100) + '%';
      root.appendChild(label);
    });
    var legend = el('div', { class: 'q-legend' });
    history.forEach(function (h, i) {
      var color = COLORS[i % COLORS.length];
      var pts = h.points.filter(function (p) { return p.accuracy !== null; }).map(function (p) {
        var x = L + (Date.parse(p.t) - t0) / (t1 - t0) * (W - L - 10);
        var y = (H - B) - p.accuracy * (H - B - 10);
        return x.toFixed(1) + ',' + y.toFixed(1);
      });
      if (pts.length === 1) {
        var xy = pts[0].split(',');
        root.appendChild(svg('circle', { cx: xy[0], cy: xy[1], r: 3, fill: color, 'data-model': h.model }));
      } else if (pts.length > 1) {
        root.appendChild(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 2, 'data-model': h.model }));
      }
      var sw = el('span', { class: 'q-swatch' });
      sw.style.background = color;
      legend.appendChild(el('span', null, sw, h.model));
    });
    var end = svg('text', { x: W - 120, y: H - 5, 'font-size': 10, fill: '#57606a' });
    end.textContent = S.timeOf ? S.timeOf(new Date(t1).toISOString()) : new Date(t1).toLocaleTimeString();
    root.appendChild(end);
    return el('div', null, root, legend);
  }
  S.view({
    id: 'quality',
    title: 'Quality (ground truth)',
    url: 'quality',
    render: function (q, box) {
      var rows = (q.models || []).map(function (m) {
        return el('tr', { 'data-model': m.model },
          el('td', { text: m.model }), el('td', { text: m.role }), el('td', { text: S.num(m.labelled) }),
          el('td', { text: ci(m.accuracy) }),
          el('td', { text: m.regression ? mean(m.regression.mae) : '–' }),
          el('td', { text: m.regression ? mean(m.regression.rmse) : '–' }));
      });
      box.appendChild(el('table', null,
        el('tr', null, el('th', { text: 'model' }), el('th', { text: 'role' }), el('th', { text: 'labelled' }), el('th', { text: 'accuracy (CI)' }), el('th', { text: 'MAE (CI)' }), el('th', { text: 'RMSE (CI)' })),
        rows.length ? rows : el('tr', null, el('td', { text: 'no labels yet: POST /feedback' }))));
      (q.paired || []).forEach(function (p) {
        var cls = p.verdict === 'shadow_better' ? 'q-verdict q-better' : p.verdict === 'primary_better' ? 'q-verdict q-worse' : 'q-verdict';
        box.appendChild(el('p', { class: cls, 'data-verdict': p.verdict, text: p.primary + ' vs ' + p.shadow + ': ' + p.summary }));
      });
      var c = q.coverage || {};
      box.appendChild(el('p', { text: 'coverage ' + (c.rate === null || c.rate === undefined ? '–' : S.pct(c.rate)) + ' (' + S.num(c.labelled) + ' of ' + S.num(c.logged) + ' logged predictions labelled)' }));
      (c.warnings || []).forEach(function (w) { box.appendChild(el('p', { class: 'q-warn', text: w })); });
      box.appendChild(chart(q.history || []));
    }
  });
})();
`

/** The quality panel of the status page. */
export const qualityView: StatusView = { css, js }
