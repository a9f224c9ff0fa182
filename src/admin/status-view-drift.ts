import type { StatusView } from './status-views.js'

// The status page's drift and assertions panels (docs/drift.md): GET /drift and GET /assertions,
// each hidden while its capability is not configured (404). Stable hooks for tests:
// #view-drift tr[data-model=<name>][data-state=<state>], #view-assertions tr[data-assertion][data-model].

const css = `
.drift-state { font-weight: 600; }
.drift-ok { color: #1a7f37; }
.drift-warn { color: #9a6700; }
.drift-alert { color: #cf222e; }
.drift-insufficient, .drift-no_reference { color: #6e7781; }
.view-body .note { color: #6e7781; margin: .2rem 0 .6rem; }
`

const js = `
(function () {
  var s = window.penumbraStatus;
  var el = s.el;
  function fixed(x) { return typeof x === 'number' && isFinite(x) ? x.toFixed(3) : '–'; }
  var STATE_TEXT = { ok: 'ok', warn: 'warn', alert: 'alert', insufficient: 'too few predictions', no_reference: 'no reference yet' };

  s.view({
    id: 'drift',
    title: 'Output drift',
    url: 'drift',
    render: function (d, box) {
      var t = d.thresholds || { psi: {}, js: {} };
      box.appendChild(el('p', { class: 'note', text: 'Window ' + Math.round((d.windowMs || 0) / 60000) + ' min against the ' + (d.reference === 'pinned' ? 'pinned' : 'first window') +
        ' reference; PSI warn ' + t.psi.warn + ' / alert ' + t.psi.alert + ', JS warn ' + t.js.warn + ' / alert ' + t.js.alert + '; at least ' + d.minSamples + ' predictions per side.' }));
      var models = d.models || [];
      if (models.length === 0) { box.appendChild(el('p', { class: 'empty', text: 'No predictions observed yet.' })); return; }
      box.appendChild(el('table', null,
        el('thead', null, el('tr', null, ['model', 'state', 'PSI', 'JS', 'label PSI', 'score PSI', 'window n', 'reference n'].map(function (h) { return el('th', { text: h }); }))),
        el('tbody', null, models.map(function (m) {
          return el('tr', { 'data-model': m.model, 'data-state': m.state },
            el('td', { text: m.model }),
            el('td', { class: 'drift-state drift-' + m.state, text: STATE_TEXT[m.state] || m.state }),
            el('td', { text: fixed(m.psi) }),
            el('td', { text: fixed(m.js) }),
            el('td', { text: m.label ? fixed(m.label.psi) : '–' }),
            el('td', { text: m.score ? fixed(m.score.psi) : '–' }),
            el('td', { text: s.num(m.window && m.window.n) }),
            el('td', { text: m.reference ? s.num(m.reference.n) + ' (' + m.reference.how + ', ' + s.timeOf(m.reference.at) + ')' : '–' }));
        }))));
    }
  });

  s.view({
    id: 'assertions',
    title: 'Model assertions',
    url: 'assertions?limit=10',
    render: function (d, box) {
      var rows = [];
      (d.assertions || []).forEach(function (a) {
        if (a.models.length === 0) rows.push(el('tr', { 'data-assertion': a.name }, el('td', { text: a.name }), el('td', { text: a.rule + ' ' + (a.path || '(instance)') }), el('td', { text: '–' }), el('td', { text: '0' }), el('td', { text: '0' }), el('td', { text: '–' })));
        a.models.forEach(function (m) {
          rows.push(el('tr', { 'data-assertion': a.name, 'data-model': m.model },
            el('td', { text: a.name }), el('td', { text: a.rule + ' ' + (a.path || '(instance)') }), el('td', { text: m.model }),
            el('td', { text: s.num(m.checked) }), el('td', { text: s.num(m.violations), class: m.violations > 0 ? 'drift-alert' : null }),
            el('td', { text: m.checked > 0 ? s.pct(m.violations / m.checked) : '–' })));
        });
      });
      box.appendChild(el('table', null,
        el('thead', null, el('tr', null, ['assertion', 'rule', 'model', 'checked', 'violations', 'rate'].map(function (h) { return el('th', { text: h }); }))),
        el('tbody', null, rows)));
      var v = d.violations || [];
      if (v.length === 0) { box.appendChild(el('p', { class: 'empty', text: 'No violations recorded.' })); return; }
      box.appendChild(el('h3', { text: 'Recent violations' }));
      box.appendChild(el('table', { class: 'violations' },
        el('thead', null, el('tr', null, ['time', 'model', 'assertion', 'instance', 'reason'].map(function (h) { return el('th', { text: h }); }))),
        el('tbody', null, v.map(function (r) {
          return el('tr', null, el('td', { text: s.timeOf(r.time) }), el('td', { text: r.model }), el('td', { text: r.assertion }), el('td', { text: s.num(r.instance) }), el('td', { text: r.reason }));
        }))));
    }
  });
})();
`

/** The drift and assertions panels of the status page. */
export const DRIFT_VIEW: StatusView = { css, js }
