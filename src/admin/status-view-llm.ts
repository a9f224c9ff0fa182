import type { StatusView } from './status-views.js'

// The status page's LLM view (issue #16): per shadow that saw LLM answers, each agreement kind's
// disagreement rate with its 95% Wilson interval, and time to first token and tokens per answer
// of the shadow next to the primary's on the same mirrored requests. Data: GET /report/llm (404
// when no shadow saw an LLM answer, which hides the view). Plain ES5 (see status-views.ts).

const css = `
.llm-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1rem; }
.llm-card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .9rem 1rem; }
.llm-card table { width: 100%; border-collapse: collapse; margin-top: .5rem; font-variant-numeric: tabular-nums; }
.llm-card th, .llm-card td { text-align: left; padding: .2rem .4rem; border-bottom: 1px solid var(--line); }
.llm-card th { font-size: .72rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); font-weight: normal; }
.llm-card td.bad { color: var(--bad); }
.llm-note { color: var(--muted); font-size: .85rem; margin: .4rem 0 0; }
`

const js = `
(function () {
  var P = window.penumbraStatus;
  if (!P) return;
  var el = P.el, pct = P.pct, ms = P.ms, num = P.num;
  var KINDS = ['content', 'tool_calls', 'finish_reason', 'json_valid', 'refusal'];
  function tok(x) { return typeof x === 'number' && isFinite(x) ? String(x) : '–'; }
  function card(s) {
    var rows = [];
    for (var i = 0; i < KINDS.length; i++) {
      var k = s.agreement ? s.agreement[KINDS[i]] : null;
      if (!k) continue;
      rows.push(el('tr', { 'data-kind': KINDS[i] },
        el('td', { text: KINDS[i] }),
        el('td', { class: k.disagree > 0 ? 'bad' : null, 'data-value': k.rate, text: pct(k.rate) }),
        el('td', { text: pct(k.lower) + ' – ' + pct(k.upper) }),
        el('td', { text: num(k.disagree) + ' / ' + num(k.compared) })));
    }
    var kinds = rows.length === 0
      ? el('p', { class: 'llm-note', text: 'no answer compared yet' })
      : el('table', { class: 'llm-kinds' },
        el('thead', null, el('tr', null, el('th', { text: 'kind' }), el('th', { text: 'disagreement' }), el('th', { text: '95% Wilson CI' }), el('th', { text: 'n' }))),
        el('tbody', null, rows));
    var t = s.timeToFirstTokenMs || {};
    var tp = t.primary || {}, ts = t.shadow || {};
    var a = s.tokensPerAnswer || {};
    var ap = a.primary || {}, as = a.shadow || {};
    var speed = el('table', { class: 'llm-speed' },
      el('thead', null, el('tr', null, el('th', { text: '' }), el('th', { text: 'TTFT p50' }), el('th', { text: 'TTFT p99' }), el('th', { text: 'tokens in / out per answer' }))),
      el('tbody', null,
        el('tr', null, el('td', { text: 'primary' }), el('td', { text: ms(tp.p50) }), el('td', { text: ms(tp.p99) }), el('td', { text: tok(ap.input) + ' / ' + tok(ap.output) })),
        el('tr', null, el('td', { text: s.shadow }), el('td', { text: ms(ts.p50) }), el('td', { text: ms(ts.p99) }), el('td', { text: tok(as.input) + ' / ' + tok(as.output) }))));
    var notes = [];
    notes.push('TTFT on ' + num(t.samples) + ' mirrored requests with both answers streamed; tokens over ' + num(a.answers) + ' compared answers.');
    if (t.note) notes.push(t.note);
    var st = s.settings || {};
    if (st.budget) notes.push('token budget: ' + num(st.budget.spentThisMinute) + ' of ' + num(st.budget.tokensPerMinute) + ' spent this minute');
    if ((ap.answersWithoutUsage || 0) + (as.answersWithoutUsage || 0) > 0) notes.push('answers without usage (not counted, never estimated): primary ' + num(ap.answersWithoutUsage) + ', shadow ' + num(as.answersWithoutUsage));
    return el('div', { class: 'llm-card', 'data-shadow': s.shadow },
      el('div', { class: 'card-head' }, el('h3', { class: 'name', text: s.shadow }),
        st.stream === 'off' ? el('span', { class: 'badge', text: 'stream off' }) : null),
      kinds, speed,
      notes.map(function (n) { return el('p', { class: 'llm-note', text: n }); }));
  }
  P.view({
    id: 'llm',
    title: 'LLM answers',
    url: 'report/llm',
    render: function (data, box) {
      box.appendChild(el('div', { class: 'llm-grid' }, (data.shadows || []).map(card)));
    }
  });
})();
`

/** The LLM view of the status page. */
export const llmStatusView: StatusView = { css, js }
