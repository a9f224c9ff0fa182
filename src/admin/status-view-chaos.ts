import type { StatusView } from './status-views.js'

// The status page's chaos panel (issue #20): what is being injected right now, where, how much,
// and until when, so whoever looks at a red dashboard sees at once that a game day is running.
// Hidden while chaos is disabled (GET /chaos/experiments answers 403). Plain ES5 (see status-views.ts).

const css = `
.chaos-running { color: #b45309; font-weight: 600; }
.chaos-table { border-collapse: collapse; width: 100%; margin-top: .5em; }
.chaos-table th, .chaos-table td { text-align: left; padding: .25em .5em; border-bottom: 1px solid #e5e7eb; font-size: .9em; }
`

const js = `
(function () {
  var s = window.penumbraStatus;
  s.view({
    id: 'chaos',
    title: 'Chaos experiments',
    url: 'chaos/experiments',
    render: function (data, box) {
      var list = data.experiments || [];
      var lm = data.lastMinute || { requests: 0, faulted: 0 };
      box.appendChild(s.el('p', { class: list.length > 0 ? 'chaos-running' : 'muted', text: list.length > 0 ? list.length + ' running: responses marked x-penumbra-fault are injected faults' : 'No chaos experiment running.' }));
      box.appendChild(s.el('p', { class: 'muted', text: 'Client requests faulted in the last minute: ' + s.num(lm.faulted) + ' of ' + s.num(lm.requests) + ' (cap ' + s.pct(data.maxClientShare) + ')' }));
      if (list.length === 0) return;
      var rows = list.map(function (e) {
        var kinds = (e.faults || []).map(function (f) { return f.kind; }).join(', ');
        var injected = Object.keys(e.injected || {}).map(function (k) { return k + ' ' + e.injected[k]; }).join(', ');
        return s.el('tr', { 'data-experiment': e.name },
          s.el('td', { text: e.name }), s.el('td', { text: e.target }), s.el('td', { text: kinds }),
          s.el('td', { text: injected + (e.capped > 0 ? '; capped ' + e.capped : '') }),
          s.el('td', { text: s.timeOf(e.expiresAt) }), s.el('td', { text: e.startedBy }));
      });
      box.appendChild(s.el('table', { class: 'chaos-table' },
        s.el('tr', null, ['experiment', 'target', 'faults', 'injected', 'ends', 'started by'].map(function (h) { return s.el('th', { text: h }); })),
        rows));
    }
  });
})();
`

export const chaosView: StatusView = { css, js }
