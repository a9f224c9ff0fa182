// Issue #18, end to end with real loopback backends and a compressed interval: a healthy
// candidate ramps and is promoted; 5xx, latency and disagreement roll it back (the last one in
// the shadow phase, before any client sees it); no traffic holds and never passes; abort,
// retry and a restart on a changed candidate; the metrics and GET /canary explain each decision.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request, Agent } from 'undici'
import { startPenumbra, startUpstream, urls, type Upstream } from './helpers/servers.js'
import { metricValue } from './helpers/shadow-util.js'
import { validateConfig } from '../src/config/load.js'
import type { Penumbra } from '../src/index.js'
import { CHROMIUM } from './helpers/observability-harness.js'

interface Status {
  state: string
  phase: string
  step: number
  weight: number
  reason: string | null
  gates: Array<{ gate: string, result: string, text: string }>
  decisions: Array<{ action: string, from: string, to: string, weight: number, summary: string, gates: Array<{ gate: string, result: string, text: string }> }>
}

/** A model server: `predict(i)` is its answer to the i-th request it gets; `fail(i)` answers 500; `delayMs` before answering. */
function model (name: string, opts: { fail?: (i: number) => boolean, predict?: (i: number) => number, delayMs?: number } = {}): Promise<Upstream> {
  let i = 0
  return startUpstream((_req, res) => {
    const k = i++
    const answer = (): void => {
      if (opts.fail?.(k) === true) {
        res.writeHead(500, { 'content-type': 'application/json' })
        res.end('{"error":"boom"}')
        return
      }
      const text = JSON.stringify({ predictions: [opts.predict?.(k) ?? 1], from: name })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    if (opts.delayMs !== undefined) setTimeout(answer, opts.delayMs)
    else answer()
  })
}

const TOKEN = 'canary-test-token'
const AUTH = { authorization: `Bearer ${TOKEN}` }

async function rig (t: { after: (fn: () => Promise<void>) => void }, base: Upstream, cand: Upstream, canary: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<{ app: Penumbra, proxy: string, admin: string, agent: Agent, partial: Record<string, unknown> }> {
  const partial = {
    backends: { base: { url: base.url }, cand: { url: cand.url } },
    primary: 'base',
    admin: { host: '127.0.0.1', port: 0, token: TOKEN },
    // The comparisons ignore which server answered.
    compare: { ignore: ['/from'] },
    canary,
    ...extra
  }
  const app = await startPenumbra(partial)
  const agent = new Agent({ connections: 16 })
  t.after(async () => { await agent.close(); await app.stop(); await base.close(); await cand.close() })
  return { app, ...urls(app), agent, partial }
}

async function status (admin: string): Promise<Status> {
  const r = await request(`${admin}/canary`, { headers: AUTH })
  assert.equal(r.statusCode, 200)
  return await r.body.json() as Status
}

async function command (admin: string, cmd: string, headers: Record<string, string> = AUTH): Promise<{ status: number, body: Record<string, unknown> }> {
  const r = await request(`${admin}/canary/${cmd}`, { method: 'POST', headers })
  return { status: r.statusCode, body: await r.body.json() as Record<string, unknown> }
}

/** Sends `n` predictions, 8 at a time; returns which backend answered each. */
async function traffic (proxy: string, agent: Agent, n: number, headers: (i: number) => Record<string, string> = () => ({})): Promise<string[]> {
  const out: string[] = new Array(n)
  let next = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < n) {
      const i = next++
      const r = await request(`${proxy}/v1/models/m:predict`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json', ...headers(i) }, body: `{"instances":[[${i}]]}` })
      const text = await r.body.text()
      out[i] = r.statusCode === 200 ? (JSON.parse(text) as { from: string }).from : `status ${r.statusCode}`
    }
  }))
  return out
}

/** Sends traffic in batches until GET /canary satisfies `done` (bounded in batches, not time). */
async function driveUntil (proxy: string, admin: string, agent: Agent, done: (s: Status) => boolean, maxBatches = 400, batch = 40): Promise<Status> {
  for (let b = 0; b < maxBatches; b++) {
    const s = await status(admin)
    if (done(s)) return s
    await traffic(proxy, agent, batch)
  }
  const s = await status(admin)
  assert.fail(`canary never reached the expected state; it is ${s.state}: ${JSON.stringify(s.decisions.map((d) => d.summary), null, 1)}`)
}

test('a healthy candidate ramps through every step and is promoted (the blue/green switch)', { timeout: 120_000 }, async (t) => {
  const base = await model('base', { delayMs: 3 })
  const cand = await model('cand', { delayMs: 3 })
  const { app, proxy, admin, agent } = await rig(t, base, cand, {
    candidate: 'cand',
    steps: [20, 50, 100],
    intervalMs: 300,
    minRequests: 60,
    maxHolds: 1000,
    autoStart: true,
    gates: { errorRate: { maxIncrease: 0.1 }, latency: { p99Ratio: 3 }, disagreement: { max: 0.2 } }
  })
  const end = await driveUntil(proxy, admin, agent, (s) => s.phase === 'promoted' || s.phase === 'rolled_back')
  assert.equal(end.phase, 'promoted', JSON.stringify(end.decisions.slice(-2), null, 1))
  const actions = end.decisions.map((d) => d.action).filter((a) => a !== 'hold')
  assert.deepEqual(actions, ['start', 'advance', 'advance', 'promote'])
  const promote = end.decisions.at(-1)!
  assert.equal(promote.from, 'step 3 of 3')
  for (const g of promote.gates) assert.equal(g.result, 'pass', g.text)
  assert.ok(promote.gates.some((g) => /^errorRate: pass — candidate 0% vs baseline 0% \(difference 0%, 95% always-valid CI \[/.test(g.text)), 'gates explain themselves')
  const primary = await (await request(`${admin}/primary`, { headers: AUTH })).body.json() as { backend: string, previous: string }
  assert.deepEqual([primary.backend, primary.previous], ['cand', 'base'], 'promoted through the blue/green switch (with its rollback)')
  // The candidate answers everyone now.
  assert.deepEqual(new Set(await traffic(proxy, agent, 20)), new Set(['cand']))
  const text = await (await request(`${admin}/metrics`)).body.text()
  assert.equal(metricValue(text, 'penumbra_canary_state', { canary: 'cand', state: 'promoted' }), 1)
  assert.equal(metricValue(text, 'penumbra_canary_step', { canary: 'cand' }), 3)
  assert.equal(metricValue(text, 'penumbra_canary_decisions_total', { canary: 'cand', gate: 'decision', result: 'advance' }), 2)
  assert.ok(metricValue(text, 'penumbra_canary_decisions_total', { canary: 'cand', gate: 'errorRate', result: 'pass' }) >= 3)
  void app
})

test('a candidate with 5% more 5xx is rolled back at the first step with enough data; no client request reaches it afterwards', { timeout: 120_000 }, async (t) => {
  const base = await model('base')
  const cand = await model('cand', { fail: (i) => i % 20 === 0 })
  const { proxy, admin, agent } = await rig(t, base, cand, {
    candidate: 'cand',
    steps: [50, 100],
    intervalMs: 300,
    minRequests: 100,
    maxHolds: 1000,
    mirrorSampleRate: 0,
    autoStart: true,
    gates: { errorRate: { maxIncrease: 0.01 } }
  })
  const end = await driveUntil(proxy, admin, agent, (s) => s.phase !== 'step' || s.step !== 1)
  assert.equal(end.phase, 'rolled_back', end.state)
  assert.equal(end.weight, 0)
  const last = end.decisions.at(-1)!
  assert.equal(last.action, 'rollback')
  assert.equal(last.from, 'step 1 of 2')
  assert.match(last.gates[0]!.text, /^errorRate: fail — candidate [\d.]+% vs baseline 0% \(difference [\d.]+%, 95% always-valid CI \[[\d.]+%, [\d.]+%\], n = \d+\/\d+\), above maxIncrease 1%$/)
  assert.match(end.reason!, /errorRate failed/)
  const seen = cand.seen.length
  const after = await traffic(proxy, agent, 200)
  assert.deepEqual(new Set(after), new Set(['base']), 'the baseline serves everything')
  assert.equal(cand.seen.length, seen, 'no request reaches the candidate after the rollback')
  const text = await (await request(`${admin}/metrics`)).body.text()
  assert.equal(metricValue(text, 'penumbra_canary_weight', { canary: 'cand' }), 0)
  assert.equal(metricValue(text, 'penumbra_canary_state', { canary: 'cand', state: 'rolled_back' }), 1)
  assert.equal(metricValue(text, 'penumbra_canary_decisions_total', { canary: 'cand', gate: 'errorRate', result: 'fail' }), 1)
})

test('a slower candidate (p99 2x and more) is rolled back on latency', { timeout: 120_000 }, async (t) => {
  const base = await model('base', { delayMs: 5 })
  const cand = await model('cand', { delayMs: 40 })
  const { proxy, admin, agent } = await rig(t, base, cand, {
    candidate: 'cand',
    steps: [50, 100],
    intervalMs: 300,
    minRequests: 60,
    maxHolds: 1000,
    mirrorSampleRate: 0,
    autoStart: true,
    gates: { errorRate: { maxIncrease: 0.1 }, latency: { p99Ratio: 1.5, p50Ratio: 1.5 } }
  })
  const end = await driveUntil(proxy, admin, agent, (s) => s.phase !== 'step' || s.step !== 1)
  assert.equal(end.phase, 'rolled_back', end.state)
  const last = end.decisions.at(-1)!
  // The whole distribution is slower: whichever quantile is established first rolls it back.
  const failed = last.gates.filter((g) => g.result === 'fail')
  assert.ok(failed.length > 0 && failed.every((g) => g.gate.startsWith('latency.')), JSON.stringify(last.gates.map((g) => g.text)))
  assert.match(failed[0]!.text, /^latency\.p(99|50): fail — candidate p(99|50) [\d.]+ ms vs baseline p(99|50) [\d.]+ ms \(ratio [\d.]+, 95% always-valid CI \[[\d.]+, [\d.]+\], n = \d+\/\d+\), above p(99|50)Ratio 1\.5$/)
  assert.match(end.reason!, /latency\.p(99|50)/)
  assert.notEqual(last.gates.find((g) => g.gate === 'errorRate')!.result, 'fail', 'no errors: not an error-rate failure')
})

test('a candidate that disagrees on 20% of predictions is rolled back in the shadow phase, before any client sees it', { timeout: 120_000 }, async (t) => {
  const base = await model('base')
  const cand = await model('cand', { predict: (i) => (i % 5 === 0 ? 2 : 1) })
  const { proxy, admin, agent } = await rig(t, base, cand, {
    candidate: 'cand',
    shadowFirst: { sampleRate: 1, minComparisons: 100 },
    steps: [10, 100],
    intervalMs: 300,
    minRequests: 100,
    maxHolds: 1000,
    autoStart: true,
    gates: { errorRate: { maxIncrease: 0.05 }, disagreement: { max: 0.05 } }
  })
  const served = new Set<string>()
  let end: Status | null = null
  for (let b = 0; b < 200 && end === null; b++) {
    const s = await status(admin)
    if (s.phase !== 'shadow') { end = s; break }
    for (const from of await traffic(proxy, agent, 40)) served.add(from)
  }
  assert.ok(end !== null)
  assert.equal(end.phase, 'rolled_back', end.state)
  const last = end.decisions.at(-1)!
  assert.equal(last.from, 'shadow')
  assert.match(last.gates[0]!.text, /^disagreement: fail — [\d.]+% of \d+ compared predictions differ/)
  assert.deepEqual(served, new Set(['base']), 'no client was answered by the candidate')
  assert.ok(cand.seen.length > 0 && cand.seen.every((s) => s.headers['x-penumbra-shadow'] === 'canary:candidate'), 'the candidate only got mirrored copies')
})

test('during the ramp the candidate is judged on the same predictions: 20% disagreement rolls it back at step 1', { timeout: 120_000 }, async (t) => {
  const base = await model('base')
  const cand = await model('cand', { predict: (i) => (i % 5 === 0 ? 2 : 1) })
  const { proxy, admin, agent } = await rig(t, base, cand, {
    candidate: 'cand', steps: [30, 100], intervalMs: 300, minRequests: 60, maxHolds: 1000, mirrorSampleRate: 0.5, autoStart: true, gates: { disagreement: { max: 0.05 } }
  })
  const end = await driveUntil(proxy, admin, agent, (s) => s.phase !== 'step' || s.step !== 1)
  assert.equal(end.phase, 'rolled_back', end.state)
  const last = end.decisions.at(-1)!
  assert.equal(last.from, 'step 1 of 2')
  assert.match(last.gates[0]!.text, /^disagreement: fail — [\d.]+% of \d+ compared predictions differ/)
  // Both directions fed it: candidate-served copies to the baseline, baseline-served ones to the candidate.
  assert.ok(base.seen.some((r) => r.headers['x-penumbra-shadow'] === 'canary:baseline'))
  assert.ok(cand.seen.some((r) => r.headers['x-penumbra-shadow'] === 'canary:candidate'))
  const mm = await (await request(`${admin}/mismatches?shadow=canary:baseline&limit=1`, { headers: AUTH })).body.json() as unknown[]
  assert.equal(mm.length, 1, 'the differing predictions are inspectable like a shadow\'s')
})

test('no traffic: the step holds and never passes; after maxHolds it fails (or pauses, as configured)', { timeout: 60_000 }, async (t) => {
  const base = await model('base')
  const cand = await model('cand')
  const { app, admin } = await rig(t, base, cand, {
    candidate: 'cand', steps: [10, 100], intervalMs: 50, minRequests: 10, maxHolds: 3, autoStart: true, gates: { errorRate: { maxIncrease: 0.05 }, accuracy: { maxDrop: 0.02 } }
  })
  const c = app.canary!.controller
  while (c.state.phase === 'step') await c.nextDecision()
  const s = await status(admin)
  assert.equal(s.phase, 'rolled_back')
  assert.deepEqual(s.decisions.map((d) => d.action), ['start', 'hold', 'hold', 'rollback'])
  for (const d of s.decisions.slice(1)) {
    assert.ok(d.gates.every((g) => g.result === 'inconclusive'), 'no data never passes and never fails')
    assert.match(d.gates.find((g) => g.gate === 'errorRate')!.text, /below minRequests 10 per arm \(no data never passes\)/)
    // The feedback capability is wired: no label yet is below the minimum, like no request.
    assert.match(d.gates.find((g) => g.gate === 'accuracy')!.text, /below minRequests labelled 10 per arm \(no data never passes\)/)
  }
  assert.match(s.reason!, /inconclusive 3 times \(maxHolds 3\)/)

  // onMaxHolds: pause keeps the weight and waits for a human.
  const paused = { ...(app.config.canary!), onMaxHolds: 'pause' as const }
  app.reload(validateConfig({ backends: { base: { url: base.url }, cand: { url: cand.url } }, primary: 'base', listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0, token: TOKEN }, log: { level: 'silent', access: false }, canary: paused }))
  await waitUntilIdle(app)
  assert.equal((await status(admin)).state, 'idle', 'a changed config after a rollback starts afresh')
  assert.equal((await command(admin, 'start')).status, 200)
  while ((c.state as { phase: string }).phase === 'step') await c.nextDecision()
  const p = await status(admin)
  assert.equal(p.phase, 'paused')
  assert.equal(p.weight, 0.1, 'a pause keeps the step\'s weight')
})

async function waitUntilIdle (app: Penumbra): Promise<void> {
  // The reload's reconfigure is queued on the controller, like the commands.
  await app.canary!.controller.settled()
}

test('abort, retry, pause/resume, a restart on a changed candidate; commands need the token', { timeout: 60_000 }, async (t) => {
  const base = await model('base')
  const cand = await model('cand')
  const cand2 = await model('cand2')
  t.after(async () => { await cand2.close() })
  const { app, admin, proxy, agent, partial } = await rig(t, base, cand, {
    candidate: 'cand', steps: [30, 100], intervalMs: 60_000, minRequests: 10, gates: { errorRate: { maxIncrease: 0.05 } }
  }, { backends: { base: { url: base.url }, cand: { url: cand.url }, cand2: { url: cand2.url } } })
  assert.equal((await status(admin)).state, 'idle')
  assert.equal((await command(admin, 'start', {})).status, 401)
  const started = await command(admin, 'start')
  assert.equal(started.status, 200)
  assert.equal(started.body.state, 'step 1 of 2')
  assert.equal(started.body.weight, 0.3)
  assert.equal((await command(admin, 'start')).status, 409, 'already running')
  assert.equal((await command(admin, 'pause')).body.state, 'paused')
  assert.equal((await command(admin, 'resume')).body.state, 'step 1 of 2')
  const aborted = await command(admin, 'abort')
  assert.equal(aborted.body.state, 'rolled_back')
  assert.equal(aborted.body.weight, 0)
  assert.deepEqual(new Set(await traffic(proxy, agent, 40)), new Set(['base']), 'abort = rollback now')
  assert.equal((await command(admin, 'start')).status, 409, 'a rolled-back canary is retried, not started')
  const retried = await command(admin, 'retry')
  assert.equal(retried.body.state, 'step 1 of 2', 'retry reruns it without editing the config')
  const mix = new Set(await traffic(proxy, agent, 80))
  assert.deepEqual(mix, new Set(['base', 'cand']))
  // baseline: null is the active primary: a blue/green switch moves the canary's baseline at once.
  const sw = async (backend: string): Promise<void> => {
    const r = await request(`${admin}/primary`, { method: 'PUT', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ backend }) })
    assert.equal(r.statusCode, 200, await r.body.text())
  }
  await sw('cand2')
  await app.canary!.controller.settled()
  assert.deepEqual(new Set(await traffic(proxy, agent, 80)), new Set(['cand2', 'cand']))
  assert.equal((await status(admin) as unknown as { baseline: string }).baseline, 'cand2')
  await sw('base')
  await app.canary!.controller.settled()

  // A changed candidate mid-run: the analysis restarts from the first step, on the new candidate.
  app.reload(validateConfig({ ...partial, listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0, token: TOKEN }, log: { level: 'silent', access: false }, canary: { ...(partial.canary as object), candidate: 'cand2' } }))
  await waitUntilIdle(app)
  const s = await status(admin)
  assert.equal(s.state, 'step 1 of 2')
  assert.equal(s.decisions.at(-1)!.action, 'restart')
  assert.deepEqual(new Set(await traffic(proxy, agent, 80)), new Set(['base', 'cand2']))
  const promoted = await command(admin, 'promote')
  assert.equal(promoted.body.state, 'promoted')
  const primary = await (await request(`${admin}/primary`, { headers: AUTH })).body.json() as { backend: string }
  assert.equal(primary.backend, 'cand2')
})

test('sticky units never flip back and forth as the weight rises (external controller sets the weight)', { timeout: 60_000 }, async (t) => {
  const base = await model('base')
  const cand = await model('cand')
  const { admin, proxy, agent } = await rig(t, base, cand, {
    candidate: 'cand', unit: 'header:x-user', controller: 'external', gates: { errorRate: { maxIncrease: 0.05 } }
  })
  assert.equal((await command(admin, 'start')).status, 409, 'an external controller drives it')
  const onCand = new Set<string>()
  for (const w of [0.05, 0.2, 0.5, 0.8, 1]) {
    const r = await request(`${admin}/canary/weight`, { method: 'PUT', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ weight: w, phase: 'step', step: 1 }) })
    assert.equal(r.statusCode, 200, await r.body.text())
    const users = 200
    const got = await traffic(proxy, agent, users * 2, (i) => ({ 'x-user': `u${i % users}` }))
    const now = new Set<string>()
    for (let i = 0; i < got.length; i++) {
      const u = `u${i % users}`
      if (got[i] === 'cand') now.add(u)
      if (i >= users) assert.equal(got[i], got[i - users], `${u} is sticky within a step`)
    }
    for (const u of onCand) assert.ok(now.has(u), `${u} was on the candidate at a lower weight and stays there at ${w}`)
    for (const u of now) onCand.add(u)
    const share = now.size / users
    assert.ok(Math.abs(share - w) < 0.15, `about ${w} of the units on the candidate (got ${share})`)
  }
  const bad = await request(`${admin}/canary/weight`, { method: 'PUT', headers: { ...AUTH, 'content-type': 'application/json' }, body: '{"weight":1.5}' })
  assert.equal(bad.statusCode, 400)
  assert.match(await bad.body.text(), /weight: must be a number within 0\.\.1/)
})

test('the status page shows the canary: state, weight, each gate in words and the ramp timeline', { skip: CHROMIUM.skip, timeout: 60_000 }, async (t) => {
  const base = await model('base')
  const cand = await model('cand', { fail: () => true })
  const { app, proxy, admin, agent } = await rig(t, base, cand, {
    candidate: 'cand', steps: [50, 100], intervalMs: 60_000, minRequests: 20, autoStart: true, gates: { errorRate: { maxIncrease: 0.05 } }
  }, { admin: { host: '127.0.0.1', port: 0 } })
  await traffic(proxy, agent, 100)
  await app.canary!.controller.tick()
  assert.equal((await status(admin)).phase, 'rolled_back')
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: CHROMIUM.path(), args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
  t.after(async () => { await browser.close() })
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${admin}/`, { waitUntil: 'domcontentloaded' })
  await page.waitForSelector('#view-canary:not([hidden]) .canary-timeline li', { timeout: 10_000 }).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${JSON.stringify(errors)}\n${String(await page.evaluate('document.getElementById("views").outerHTML.slice(0, 3000)'))}`)
  })
  const text = await page.textContent('#view-canary') ?? ''
  assert.match(text, /rolled_back/)
  assert.match(text, /candidate cand vs baseline base/)
  assert.match(text, /errorRate: fail — candidate 100% vs baseline 0%/)
  assert.equal(await page.locator('#view-canary .canary-timeline li').count(), 2, 'start and rollback')
  assert.equal(await page.locator('#view-canary .canary-timeline li.rollback').count(), 1)
  assert.deepEqual(errors, [])
})

test('the accuracy gate reads the labels posted to POST /feedback: a candidate right less often is rolled back', { timeout: 120_000 }, async (t) => {
  const labelled = (name: string, wrong: (i: number) => boolean): Promise<Upstream> => {
    let i = 0
    return startUpstream((_req, res) => {
      const text = JSON.stringify({ predictions: [wrong(i++) ? 'no' : 'yes'], from: name })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    })
  }
  const base = await labelled('base', () => false)
  const cand = await labelled('cand', (i) => i % 3 === 0)
  const { proxy, admin, agent } = await rig(t, base, cand, {
    candidate: 'cand',
    steps: [50, 100],
    intervalMs: 300,
    minRequests: 40,
    maxHolds: 1000,
    autoStart: true,
    gates: { accuracy: { maxDrop: 0.05 } }
  })
  // The truth is always "yes": the baseline is always right, the candidate on 2 of 3.
  let previous: string[] = []
  let n = 0
  for (let b = 0; b < 200; b++) {
    const s = await status(admin)
    if (s.phase === 'rolled_back') break
    const ids = Array.from({ length: 40 }, () => `acc-${n++}`)
    await Promise.all(ids.map(async (id) => {
      const r = await request(`${proxy}/v1/models/m:predict`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': id }, body: '{"instances":[[1]]}' })
      await r.body.dump()
    }))
    // Labels come late: those of the batch before (its predictions are logged by now).
    if (previous.length > 0) {
      const r = await request(`${admin}/feedback`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify(previous.map((requestId) => ({ requestId, label: 'yes' }))) })
      assert.equal(r.statusCode, 200)
      await r.body.dump()
    }
    previous = ids
  }
  const end = await status(admin)
  assert.equal(end.phase, 'rolled_back', JSON.stringify(end.gates))
  const gate = end.decisions.at(-1)!.gates.find((g) => g.gate === 'accuracy')!
  assert.equal(gate.result, 'fail')
  assert.match(gate.text, /^accuracy: fail — candidate [\d.]+% vs baseline 100% \(difference -[\d.]+%, 95% always-valid CI \[-[\d.]+%, -[\d.]+%\], n = \d+\/\d+ labelled\)/)
})
