// Issue #17: the status page's experiments view in a real browser (Debian chromium driven by
// playwright-core): each experiment with its split, one row per metric and guardrail whose state
// and interval match GET /experiments, the interval drawn as a bar, and the cumulative-effect
// chart from the admin's history of looks.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { CHROMIUM, waitForValue } from './helpers/observability-harness.js'
import { startPenumbra, startUpstream, urls, type Handler } from './helpers/servers.js'

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']

const answer = (status: (i: number) => number): Handler => {
  let i = 0
  return (_req, res) => {
    const body = '{"predictions":[1]}'
    res.writeHead(status(i++), { 'content-type': 'application/json', 'content-length': body.length })
    res.end(body)
  }
}

test('status page: experiments with verdicts, interval bars and the cumulative-effect chart', { skip: CHROMIUM.skip, timeout: 90_000 }, async (t) => {
  const blue = await startUpstream(answer(() => 200))
  const cand = await startUpstream(answer((i) => (i % 4 === 0 ? 503 : 200)))
  const app = await startPenumbra({
    backends: { blue: { url: blue.url }, cand: { url: cand.url } },
    primary: 'blue',
    admin: { host: '127.0.0.1', port: 0, historyIntervalMs: 200 },
    experiments: [{
      name: 'ab',
      unit: 'header:x-user-id',
      variants: [{ name: 'control', backend: 'blue' }, { name: 'treatment', backend: 'cand' }],
      metrics: [{ name: 'conversion', kind: 'binary' }]
    }]
  })
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: CHROMIUM.path(), args: CHROMIUM_ARGS, timeout: 30_000 })
  t.after(async () => { await browser.close(); await app.stop(); await blue.close(); await cand.close() })
  const { proxy, admin } = urls(app)
  // Traffic in rounds, each followed by a look, so the history has several points as n grows.
  let unit = 0
  for (let round = 0; round < 4; round++) {
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let k = 0; k < 25; k++) {
        const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: '{}', headers: { 'x-user-id': `u${unit++}` } })
        await r.body.dump()
      }
    }))
    const before = Date.now()
    await waitForValue(async () => {
      const h = await (await request(`${admin}/experiments/ab?history=1`)).body.json() as { history: Record<string, Array<{ at: number }>> }
      const pts = h.history['errors/treatment'] ?? []
      return pts.length > 0 && pts[pts.length - 1]!.at >= before ? true : undefined
    }, 10_000, 'a look after the round', 50)
  }
  const events = Array.from({ length: unit }, (_, i) => ({ unit: `u${i}`, name: 'conversion', value: i % 3 === 0 ? 1 : 0 }))
  await (await request(`${admin}/events`, { method: 'POST', body: JSON.stringify(events), headers: { 'content-type': 'application/json' } })).body.dump()
  const api = await (await request(`${admin}/experiments`)).body.json() as Array<{ analysis: { metrics: Array<{ metric: string, state: string }>, guardrails: Array<{ metric: string, state: string }> } }>
  const expected = [...api[0]!.analysis.metrics, ...api[0]!.analysis.guardrails].map((m) => [m.metric, m.state])
  assert.equal(api[0]!.analysis.guardrails.find((g) => g.metric === 'errors')!.state, 'treatment_worse')

  const page = await browser.newPage({ viewport: { width: 1440, height: 1400 } })
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${admin}/`, { waitUntil: 'domcontentloaded' })
  const card = page.locator('#view-experiments .exp[data-experiment="ab"]')
  await card.waitFor({ timeout: 10_000 })
  const rows = await card.locator('tr.metric-row').evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-metric'), tr.getAttribute('data-state')]))
  assert.deepEqual(rows, expected)
  assert.match((await card.locator('.arms').textContent())!, /control \(blue, weight 0\.50\): \d+ units, \d+ requests, 0\.00% 5xx · treatment \(cand/)
  // The errors row: its interval bar has a range and an estimate mark right of "no effect".
  const bar = card.locator('tr.metric-row[data-metric="errors"] .ivbar')
  const [zero, point] = await Promise.all([bar.locator('.zero').boundingBox(), bar.locator('.point').boundingBox()])
  assert.ok(point!.x > zero!.x, 'a worse 5xx share is drawn on the positive side')
  assert.equal(await bar.locator('.range').count(), 1)
  // The chart of the 5xx difference over the looks: a line with one vertex per look.
  const chart = card.locator('.chart[data-series="errors/treatment"]')
  await chart.waitFor()
  const vertices = await chart.locator('polyline').evaluate((p) => (p.getAttribute('points') ?? '').trim().split(' ').length)
  assert.ok(vertices >= 4, `one point per look: ${vertices}`)
  assert.match((await chart.textContent())!, /errors\/treatment: \+\d+\.\d+ pp at n = \d+/)
  await page.screenshot({ path: 'test/artifacts/status-experiments.png', fullPage: true }).catch(() => {})
  assert.deepEqual(errors, [])
  await page.close()
})
