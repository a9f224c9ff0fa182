// Issue #19, online quality: known answers for Wilson and McNemar (exact and χ²) against SciPy
// (test/fixtures/feedback-reference.py), the paired comparison's decision in simulation (a shadow
// right 5% more often is detected; equal models give no false claim beyond α over 1,000 runs),
// and the same verdict end to end through the proxy.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { wilson } from '../src/analysis/wilson.js'
import { mcnemar } from '../src/analysis/mcnemar.js'
import { pairedQuality, type PairTally } from '../src/feedback/quality.js'
import { feedbackRig } from './helpers/feedback-rig.js'

const ref = JSON.parse(readFileSync(new URL('../../test/fixtures/feedback-reference.json', import.meta.url), 'utf8')) as {
  wilson: Array<{ x: number, n: number, lo: number, hi: number }>
  exact: Array<{ b: number, c: number, p: number }>
  chi2: Array<{ b: number, c: number, stat: number, p: number }>
  agresti_min: Array<{ b: number, c: number, n: number, lo: number, hi: number }>
}

const close = (a: number, b: number, rel = 1e-9, what = ''): void => {
  assert.ok(Math.abs(a - b) <= rel * Math.max(1e-300, Math.abs(b)) + 1e-15, `${what}: ${a} vs ${b}`)
}

test('Wilson intervals match SciPy binomtest(...).proportion_ci(method="wilson")', () => {
  for (const r of ref.wilson) {
    const w = wilson(r.x, r.n)
    close(w.lower, r.lo, 1e-9, `lower ${r.x}/${r.n}`)
    close(w.upper, r.hi, 1e-9, `upper ${r.x}/${r.n}`)
  }
})

test('McNemar exact (b + c <= 25) matches SciPy binomtest; χ² with continuity correction matches chi2.sf', () => {
  for (const r of ref.exact) {
    const m = mcnemar(r.b, r.c, 100)
    assert.equal(m.test, 'mcnemar-exact')
    close(m.p, r.p, 1e-12, `exact b=${r.b} c=${r.c}`)
  }
  for (const r of ref.chi2) {
    const m = mcnemar(r.b, r.c, 2140)
    assert.equal(m.test, 'mcnemar-chi2')
    close(m.statistic!, r.stat, 1e-12, `stat b=${r.b} c=${r.c}`)
    close(m.p, r.p, 1e-9, `p b=${r.b} c=${r.c}`)
  }
  for (const r of ref.agresti_min) {
    const m = mcnemar(r.b, r.c, r.n)
    close(m.lower, r.lo, 1e-9, 'Agresti-Min lower')
    close(m.upper, r.hi, 1e-9, 'Agresti-Min upper')
  }
  assert.throws(() => mcnemar(3, 4, 5), RangeError)
})

test('the paired verdict explains itself: n, interval, test, p, rule', () => {
  const p = pairedQuality({ primary: 'blue', shadow: 'green', n: 2140, b: 150, c: 238, bothRight: 1600 }, 0.95)
  assert.equal(p.verdict, 'shadow_better')
  assert.equal(p.test, 'mcnemar-chi2')
  assert.match(p.summary, /^the shadow green was right on 4\.1% more of the 2,140 labelled requests \(95% CI \[2\.3%, 5\.9%\], McNemar p = 1\.0e-5\)$/)
  assert.match(p.rule, /McNemar two-sided p < 0\.05/)
  const none = pairedQuality({ primary: 'blue', shadow: 'green', n: 0, b: 0, c: 0, bothRight: 0 }, 0.95)
  assert.equal(none.verdict, 'no_data')
  assert.equal(none.p, null)
})

/** mulberry32: a seeded PRNG, so the simulation is the same on every run. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** n labelled instances; each model right with its accuracy, the two correlated through a shared draw. */
function simulate (rand: () => number, n: number, accPrimary: number, accShadow: number): PairTally {
  const t: PairTally = { primary: 'p', shadow: 's', n, b: 0, c: 0, bothRight: 0 }
  for (let i = 0; i < n; i++) {
    // Shared difficulty half the time (models err on the same hard instances), independent otherwise.
    const u = rand()
    const shared = rand() < 0.5
    const p = (shared ? u : rand()) < accPrimary
    const s = (shared ? u : rand()) < accShadow
    if (p && !s) t.b++
    else if (!p && s) t.c++
    else if (p && s) t.bothRight++
  }
  return t
}

test('simulation: a shadow right 5% more often is detected; equal models give no false claim beyond α (1,000 runs)', { timeout: 60_000 }, () => {
  const rand = rng(19)
  let detected = 0
  const runs = 200
  for (let i = 0; i < runs; i++) {
    const v = pairedQuality(simulate(rand, 2000, 0.80, 0.85), 0.95)
    if (v.verdict === 'shadow_better') detected++
    assert.notEqual(v.verdict, 'primary_better')
  }
  assert.ok(detected / runs >= 0.95, `power ${detected}/${runs}`)

  let falseClaims = 0
  for (let i = 0; i < 1000; i++) {
    const v = pairedQuality(simulate(rand, 2000, 0.80, 0.80), 0.95)
    if (v.verdict !== 'no_difference_detected') falseClaims++
  }
  // α = 5%; the continuity-corrected test is conservative. 3 standard errors of slack over 1,000 runs.
  assert.ok(falseClaims / 1000 <= 0.05 + 3 * Math.sqrt(0.05 * 0.95 / 1000), `false claims ${falseClaims}/1000`)
})

test('end to end: a better shadow is found by GET /quality from labels posted to POST /feedback', { timeout: 60_000 }, async (t) => {
  const r = await feedbackRig(t)
  const rand = rng(7)
  const labels: Array<{ requestId: string, instance: number, label: string }> = []
  for (let req = 0; req < 20; req++) {
    const instances: Array<{ p: string, s: string }> = []
    for (let i = 0; i < 20; i++) {
      const truth = rand() < 0.5 ? 'cat' : 'dog'
      const other = truth === 'cat' ? 'dog' : 'cat'
      instances.push({ p: rand() < 0.7 ? truth : other, s: rand() < 0.9 ? truth : other })
      labels.push({ requestId: `sim-${req}`, instance: i, label: truth })
    }
    await r.predict(`sim-${req}`, instances)
  }
  await r.logged(400)
  const res = await r.post(labels)
  assert.equal(res.json.counts.joined, 400)
  const q = await r.quality()
  const pair = q.paired.find((p: any) => p.shadow === 'cand')
  assert.equal(pair.n, 400)
  assert.equal(pair.verdict, 'shadow_better', pair.summary)
  assert.ok(pair.difference.lower > 0)
  assert.ok(q.coverage.rate === 1 && q.coverage.warnings.length === 1, JSON.stringify(q.coverage.warnings)) // one source only: "user" dominates
})

test('LLM answers: streamed and not, the text is logged and judged against a text label', { timeout: 30_000 }, async (t) => {
  const { startFakeOpenAI } = await import('./helpers/fake-openai.js')
  const { startPenumbra, urls } = await import('./helpers/servers.js')
  const { request } = await import('undici')
  const { waitFor } = await import('./helpers/common.js')
  const { metricValue, scrape } = await import('./helpers/shadow-util.js')
  const primary = await startFakeOpenAI({ answer: { content: 'Paris' } })
  const shadow = await startFakeOpenAI({ answer: { content: 'Lyon' } })
  const app = await startPenumbra({ backends: { gpt: { url: primary.url } }, primary: 'gpt', shadows: [{ name: 'small', url: shadow.url }] })
  t.after(async () => { await app.stop(); await primary.close(); await shadow.close() })
  const { proxy, admin } = urls(app)
  for (const [id, stream] of [['llm-1', true], ['llm-2', false]] as const) {
    const r = await request(`${proxy}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': id }, body: JSON.stringify({ model: 'm', stream, messages: [{ role: 'user', content: 'Capital of France?' }] }) })
    await r.body.text()
  }
  await waitFor(async () => metricValue(await scrape(app), 'penumbra_feedback_predictions_total', { model: 'small' }) >= 2, 10_000, 'both answers logged')
  const res = await request(`${admin}/feedback`, { method: 'POST', body: JSON.stringify([{ requestId: 'llm-1', label: ' paris ' }, { requestId: 'llm-2', label: 'Paris' }, { requestId: 'llm-2', value: 1, source: 'annotator' }]) })
  const body = await res.body.json() as any
  assert.deepEqual(body.results.map((r: any) => r.result), ['joined', 'joined', 'invalid'])
  assert.match(body.results[2].message, /generated text: send label, not value/)
  const q = await (await request(`${admin}/quality`)).body.json() as any
  assert.deepEqual(q.models.map((m: any) => [m.model, m.accuracy.correct, m.labelled]), [['gpt', 2, 2], ['small', 0, 2]])
  assert.equal(q.paired[0].discordant.primaryOnly, 2)
})
