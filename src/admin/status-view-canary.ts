import type { StatusView } from './status-views.js'

// The canary's panel of the status page (issue #18): its state and weight, the last verdict of
// each gate in words, and the ramp as a timeline of every decision (newest first). Reads GET
// /canary; hidden when no canary is configured (404). Plain ES5, no template literals, no
// backslash escapes (see status-views.ts).

const css = `
.canary-head { display: flex; gap: 1rem; flex-wrap: wrap; align-items: baseline; margin-bottom: .5rem; }
.canary-state { font-weight: 600; font-size: 1.1rem; }
.canary-gates, .canary-timeline { list-style: none; padding: 0; margin: .25rem 0 .75rem; }
.canary-gates li, .canary-timeline li { padding: .2rem .4rem; border-left: 4px solid #bbb; margin: .15rem 0; font-size: .9rem; }
.canary-gates li.pass, .canary-timeline li.advance, .canary-timeline li.promote, .canary-timeline li.complete { border-color: #2e7d32; }
.canary-gates li.fail, .canary-timeline li.rollback, .canary-timeline li.abort { border-color: #c62828; }
.canary-gates li.inconclusive, .canary-timeline li.hold, .canary-timeline li.pause { border-color: #f9a825; }
.canary-timeline .when { color: #666; margin-right: .5rem; font-variant-numeric: tabular-nums; }
.canary-timeline .gate { display: block; color: #444; margin-left: 1.5rem; font-size: .85rem; }
`

const js = `
(function () {
  var s = window.penumbraStatus;
  var el = s.el;
  s.view({
    id: 'canary',
    title: 'Canary',
    url: 'canary',
    render: function (c, box) {
      var steps = (c.steps || []).map(function (x) { return x + '%'; }).join(' → ');
      box.appendChild(el('div', { class: 'canary-head' },
        el('span', { class: 'canary-state', 'data-phase': c.phase, text: c.state }),
        el('span', { text: 'candidate ' + c.candidate + ' vs baseline ' + c.baseline }),
        el('span', { text: 'weight ' + s.pct(c.weight) }),
        el('span', { class: 'muted', text: 'steps ' + steps + ' · holds ' + c.holds + '/' + c.maxHolds + ' · ' + c.controller + ' controller' })));
      if (c.reason) box.appendChild(el('p', { class: 'muted', text: c.reason }));
      var gates = el('ul', { class: 'canary-gates' });
      (c.gates || []).forEach(function (g) { gates.appendChild(el('li', { class: g.result, text: g.text })); });
      if ((c.gates || []).length > 0) { box.appendChild(el('h3', { text: 'Last verdict of each gate' })); box.appendChild(gates); }
      var tl = el('ol', { class: 'canary-timeline', reversed: 'reversed' });
      (c.decisions || []).slice().reverse().forEach(function (d) {
        var li = el('li', { class: d.action },
          el('span', { class: 'when', text: s.timeOf(d.at) }),
          el('b', { text: d.action }), ' ', d.from === d.to ? d.to : d.from + ' → ' + d.to,
          ' · weight ' + s.pct(d.weight) + ' · ' + d.summary);
        (d.gates || []).forEach(function (g) { li.appendChild(el('span', { class: 'gate', text: g.text })); });
        tl.appendChild(li);
      });
      box.appendChild(el('h3', { text: 'Ramp timeline' }));
      box.appendChild(tl);
    }
  });
})();
`

export const canaryStatusView: StatusView = { css, js }
