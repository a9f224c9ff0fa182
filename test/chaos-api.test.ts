// Issue #20: the chaos safety rules and API. 403 while disabled, 401 without the token, config
// refused (exit 2) when chaos keys appear without chaos.enabled or chaos runs without a token,
// 400 naming the field, scheduled experiments from the config, and --workers reaching every worker.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Client } from 'undici'
import { ConfigError, Penumbra, validateConfig } from '../src/index.js'
import { resolveAdminToken } from '../src/config/load.js'
import { pino } from 'pino'
import { startPenumbra, startUpstream, testConfig, urls, waitFor } from './helpers/servers.js'
import { childConfigYaml, freePort, runCli, spawnPenumbra, tempDir, writeFile } from './helpers/proxy-util.js'
import { CHROMIUM } from './helpers/observability-harness.js'

const TOKEN = 'chaos-test-token'
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
const P = { url: 'http://127.0.0.1:9' }

function problems (doc: unknown): string[] {
  try {
    resolveAdminToken(validateConfig(doc), {})
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.problems
  }
  return []
}

async function call (url: string, method: string, body?: unknown, headers: Record<string, string> = AUTH): Promise<{ status: number, json: any }> {
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, json: text === '' ? null : JSON.parse(text) }
}

test('config: chaos keys need chaos.enabled, chaos needs the admin token, targets and durations are checked', () => {
  assert.equal(validateConfig({ primary: P }).chaos.enabled, false)
  assert.deepEqual(problems({ primary: P, chaos: { maxClientShare: 0.1 } }), ['chaos.maxClientShare: chaos is disabled: set chaos.enabled: true to use chaos keys'])
  assert.deepEqual(problems({ primary: P, chaos: { enabled: false, experiments: [{ name: 'x', target: 'primary', faults: [{ kind: 'timeout' }], durationMs: 1 }] } }), ['chaos.experiments: chaos is disabled: set chaos.enabled: true to use chaos keys'])
  // A validated config validates again (GET /config, the config a --workers primary hands its workers).
  const validated = validateConfig({ primary: P })
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(validated))).chaos, validated.chaos)
  assert.deepEqual(problems({ primary: P, chaos: { enabled: true } }), ['chaos.enabled: chaos needs the admin token (admin.token, admin.tokenFile or PENUMBRA_ADMIN_TOKEN)'])
  assert.deepEqual(problems({ primary: P, admin: { token: TOKEN }, chaos: { enabled: true } }), [])
  const exp = { name: 'gd', target: 'primary', faults: [{ kind: 'delay', ms: 300 }], durationMs: 1000 }
  assert.deepEqual(problems({ primary: P, admin: { token: TOKEN }, chaos: { enabled: true, experiments: [{ ...exp, target: 'nope' }] } }),
    ['chaos.experiments[0].target: names no backend ("nope"; defined: primary); a shadow is shadow:<name>'])
  assert.deepEqual(problems({ primary: P, admin: { token: TOKEN }, chaos: { enabled: true, maxDurationMs: 500, experiments: [exp] } }),
    ['chaos.experiments[0].durationMs: must be <= chaos.maxDurationMs (500)'])
  assert.deepEqual(problems({ primary: P, admin: { token: TOKEN }, chaos: { enabled: true, experiments: [{ ...exp, durationMs: undefined }] } }),
    ['chaos.experiments[0].durationMs: is required (every fault ends by itself)'])
  assert.deepEqual(problems({ primary: P, admin: { token: TOKEN }, chaos: { enabled: true, experiments: [{ ...exp, startAt: 'tomorrow' }] } }),
    ['chaos.experiments[0].startAt: must be an ISO 8601 date-time, e.g. 2026-12-04T03:00:00Z'])
})

test('the CLI refuses chaos keys without chaos.enabled, and chaos without a token, with exit 2 before listening', async (t) => {
  const dir = tempDir(t)
  const a = writeFile(dir, 'a.yaml', 'primary: { url: "http://127.0.0.1:9" }\nchaos: { maxClientShare: 0.2 }\n')
  const ra = await runCli(['--config', a, '--check'])
  assert.equal(ra.code, 2)
  assert.match(ra.stderr, /chaos\.maxClientShare: chaos is disabled/)
  const b = writeFile(dir, 'b.yaml', 'primary: { url: "http://127.0.0.1:9" }\nchaos: { enabled: true }\n')
  const rb = await runCli(['--config', b, '--check'], { env: { PENUMBRA_ADMIN_TOKEN: '' } })
  assert.equal(rb.code, 2)
  assert.match(rb.stderr, /chaos\.enabled: chaos needs the admin token/)
})

test('chaos disabled: every chaos endpoint answers 403 PENUMBRA_CHAOS_DISABLED', async (t) => {
  const up = await startUpstream()
  const app = await startPenumbra({ primary: { url: up.url } })
  t.after(async () => { await app.stop(); await up.close() })
  const admin = urls(app).admin
  for (const [method, path] of [['GET', '/chaos/experiments'], ['POST', '/chaos/experiments'], ['DELETE', '/chaos/experiments/x'], ['DELETE', '/chaos']] as const) {
    const r = await call(`${admin}${path}`, method, method === 'POST' ? { name: 'x' } : undefined)
    assert.equal(r.status, 403, `${method} ${path}`)
    assert.equal(r.json.error, 'PENUMBRA_CHAOS_DISABLED')
  }
})

test('chaos enabled: 401 without the token, 400 naming the field, 201, list, 409, delete one, delete all', async (t) => {
  const up = await startUpstream()
  const config = testConfig({ primary: { url: up.url }, admin: { host: '127.0.0.1', port: 0, token: TOKEN }, shadows: [{ name: 'v2', url: up.url }], chaos: { enabled: true, maxDurationMs: 600_000 } })
  const logs: string[] = []
  const app = new Penumbra(config, { logger: pino({ level: 'info' }, { write: (s: string) => { logs.push(s) } }) })
  await app.start()
  t.after(async () => { await app.stop(); await up.close() })
  const admin = urls(app).admin
  const good = { name: 'lag', target: 'primary', faults: [{ kind: 'delay', distribution: 'uniform', minMs: 1, maxMs: 5 }], durationMs: 60_000 }

  for (const [method, path] of [['GET', '/chaos/experiments'], ['POST', '/chaos/experiments'], ['DELETE', '/chaos']] as const) {
    const r = await call(`${admin}${path}`, method, method === 'POST' ? good : undefined, { 'content-type': 'application/json' })
    assert.equal(r.status, 401, `${method} ${path} without the token`)
    assert.equal(r.json.error, 'PENUMBRA_UNAUTHORIZED')
  }

  const bad = async (body: unknown, message: RegExp): Promise<void> => {
    const r = await call(`${admin}/chaos/experiments`, 'POST', body)
    assert.equal(r.status, 400, JSON.stringify(r.json))
    assert.equal(r.json.error, 'PENUMBRA_INVALID_REQUEST')
    assert.match(r.json.message, message)
  }
  await bad({ ...good, durationMs: undefined }, /^durationMs: is required/)
  await bad({ ...good, faults: [{ kind: 'melt' }] }, /^faults\.0\.kind: /)
  await bad({ ...good, faults: [{ kind: 'delay' }] }, /^faults\.0\.ms: is required for a fixed delay/)
  await bad({ ...good, faults: [{ kind: 'flip_label', p: 2 }] }, /^faults\.0\.p: must be within \(0, 1\]/)
  await bad({ ...good, faults: [{ kind: 'abort', status: 500 }, { kind: 'flip_label', p: 0.5 }] }, /^faults\.0\.kind: "abort" answers instead of the upstream/)
  await bad({ ...good, scope: { probability: 0 } }, /^scope\.probability: /)
  await bad({ ...good, target: 'nope' }, /^target: names no backend/)
  await bad({ ...good, target: 'shadow:nope' }, /^target: names no shadow \("nope"; defined: v2\)/)
  await bad({ ...good, durationMs: 600_001 }, /^durationMs: must be <= chaos\.maxDurationMs \(600000\)/)
  await bad({ ...good, extra: 1 }, /^extra: unknown key/)

  const created = await call(`${admin}/chaos/experiments`, 'POST', good)
  assert.equal(created.status, 201)
  assert.equal(created.json.name, 'lag')
  assert.equal(created.json.durationMs, 60_000)
  assert.deepEqual(created.json.scope, { probability: 1 })
  assert.match(created.json.startedBy, /^127\.0\.0\.1:\d+$/)
  assert.equal((await call(`${admin}/chaos/experiments`, 'POST', good)).status, 409, 'one experiment per name')
  assert.equal((await call(`${admin}/chaos/experiments`, 'POST', { ...good, name: 'shadowlag', target: 'shadow:v2' })).status, 201)

  const list = await call(`${admin}/chaos/experiments`, 'GET')
  assert.deepEqual(list.json.experiments.map((e: { name: string }) => e.name), ['lag', 'shadowlag'])
  assert.equal(list.json.maxClientShare, 0.05)
  const metrics = await (await fetch(`${admin}/metrics`)).text()
  assert.match(metrics, /^penumbra_chaos_active\{experiment="lag"\} 1$/m)
  assert.match(metrics, /^penumbra_faults_injected_total\{experiment="shadowlag",target="shadow:v2",kind="delay"\} 0$/m)

  const one = await call(`${admin}/chaos/experiments/lag`, 'DELETE')
  assert.equal(one.status, 200)
  assert.equal(one.json.name, 'lag')
  assert.equal((await call(`${admin}/chaos/experiments/lag`, 'DELETE')).status, 404)
  const all = await call(`${admin}/chaos`, 'DELETE')
  assert.deepEqual(all.json.stopped.map((e: { name: string }) => e.name), ['shadowlag'])
  assert.deepEqual((await call(`${admin}/chaos/experiments`, 'GET')).json.experiments, [])

  // Every start and stop is logged with who asked.
  const events = logs.map((l) => JSON.parse(l) as { msg: string, experiment?: string, who?: string }).filter((l) => l.msg.startsWith('chaos experiment'))
  assert.deepEqual(events.map((e) => `${e.msg} ${e.experiment!}`), ['chaos experiment started lag', 'chaos experiment started shadowlag', 'chaos experiment stopped lag', 'chaos experiment stopped shadowlag'])
  for (const e of events) assert.match(e.who!, /^127\.0\.0\.1:\d+$/)
})

test('config experiments: without startAt they run from the start; a future startAt waits; a past window never starts', async (t) => {
  const up = await startUpstream()
  const soon = new Date(Date.now() + 400).toISOString()
  const app = await startPenumbra({
    primary: { url: up.url },
    admin: { host: '127.0.0.1', port: 0, token: TOKEN },
    chaos: {
      enabled: true,
      maxClientShare: 1,
      experiments: [
        { name: 'now', target: 'primary', faults: [{ kind: 'abort', status: 503 }], scope: { paths: ['/now'] }, durationMs: 60_000 },
        { name: 'later', target: 'primary', faults: [{ kind: 'abort', status: 502 }], scope: { paths: ['/later'] }, durationMs: 60_000, startAt: soon },
        { name: 'past', target: 'primary', faults: [{ kind: 'abort', status: 500 }], durationMs: 1000, startAt: '2020-01-01T00:00:00Z' }
      ]
    }
  })
  t.after(async () => { await app.stop(); await up.close() })
  const status = async (path: string): Promise<number> => { const r = await fetch(`${urls(app).proxy}${path}`, { method: 'POST', body: '{}' }); await r.arrayBuffer(); return r.status }
  assert.equal(await status('/now'), 503)
  assert.deepEqual(app.chaos!.active.map((e) => e.name), ['now'])
  await waitFor(() => app.chaos!.active.some((e) => e.name === 'later'), 5000, 'the scheduled experiment to start')
  assert.equal(await status('/later'), 502)
  const later = app.chaos!.active.find((e) => e.name === 'later')!
  assert.ok(later.startedBy === 'config')
  assert.ok(Math.abs(later.expiresAt - (Date.parse(soon) + 60_000)) < 1000, 'ends when its window ends')
  // A reload keeps what runs, and does not bring back what was stopped through the API.
  const nowEnds = app.chaos!.active.find((e) => e.name === 'now')!.expiresAt
  assert.equal((await fetch(`${urls(app).admin}/chaos/experiments/later`, { method: 'DELETE', headers: AUTH })).status, 200)
  assert.deepEqual(app.reload(app.config), [])
  assert.deepEqual(app.chaos!.active.map((e) => e.name), ['now'])
  assert.equal(app.chaos!.active[0]!.expiresAt, nowEnds, 'the same experiment, not restarted')
  assert.equal(await status('/later'), 200)
  const off = testConfig({ primary: { url: up.url }, admin: { host: '127.0.0.1', port: 0, token: TOKEN } })
  assert.ok(app.reload(off).includes('chaos.enabled: changes need a restart; kept the old value'))
})

async function startCluster (t: TestContext, primary: string): Promise<{ port: number, admin: string }> {
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const file = writeFile(dir, 'cluster.yaml', childConfigYaml({ port, adminPort, primary, extra: 'chaos: { enabled: true, maxClientShare: 1 }' }))
  const child = await spawnPenumbra(file, { port, adminPort, extra: ['--workers', '2'], env: { PENUMBRA_ADMIN_TOKEN: TOKEN }, readyTimeoutMs: 15_000 })
  t.after(() => child.kill())
  const admin = `http://127.0.0.1:${adminPort}`
  await waitFor(async () => {
    const r = await fetch(`${admin}/chaos/experiments`, { headers: AUTH })
    const body = await r.json() as { workers?: number }
    return r.status === 200 && body.workers === 2
  }, 15_000, 'both workers to answer the admin')
  return { port, admin }
}

test('--workers 2: an experiment started through the admin reaches every worker, and stops in every worker', { timeout: 40_000 }, async (t) => {
  const up = await startUpstream()
  t.after(() => up.close())
  const { port, admin } = await startCluster(t, up.url)
  const created = await call(`${admin}/chaos/experiments`, 'POST', { name: 'all', target: 'primary', faults: [{ kind: 'abort', status: 503 }], durationMs: 60_000 })
  assert.equal(created.status, 201, JSON.stringify(created.json))
  const send = async (): Promise<number> => {
    // A fresh connection per request, so the cluster spreads them over both workers.
    const c = new Client(`http://127.0.0.1:${port}`)
    const r = await c.request({ path: '/x', method: 'POST', body: '{}', headers: { connection: 'close' } })
    await r.body.arrayBuffer()
    await c.close()
    return r.statusCode
  }
  for (let i = 0; i < 20; i++) assert.equal(await send(), 503, 'every worker faults')
  const list = await call(`${admin}/chaos/experiments`, 'GET')
  assert.equal(list.json.workers, 2)
  assert.equal(list.json.experiments[0].injected.abort, 20, 'counts summed over the workers')
  const metrics = await (await fetch(`${admin}/metrics`)).text()
  assert.match(metrics, /^penumbra_chaos_active\{experiment="all"\} 1$/m, 'max over the workers, not their sum')
  assert.equal((await call(`${admin}/chaos`, 'DELETE')).status, 200)
  for (let i = 0; i < 10; i++) assert.equal(await send(), 200, 'stopped in every worker')
})

test('the status page shows the running chaos experiments, and hides the panel while chaos is disabled', { skip: CHROMIUM.skip, timeout: 60_000 }, async (t) => {
  const { chromium } = await import('playwright-core')
  const up = await startUpstream()
  const on = await startPenumbra({ primary: { url: up.url }, admin: { host: '127.0.0.1', port: 0, token: TOKEN }, chaos: { enabled: true } })
  const off = await startPenumbra({ primary: { url: up.url } })
  const browser = await chromium.launch({ executablePath: CHROMIUM.path(), args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 30_000 })
  t.after(async () => { await browser.close(); await on.stop(); await off.stop(); await up.close() })
  await call(`${urls(on).admin}/chaos/experiments`, 'POST', { name: 'lag', target: 'primary', faults: [{ kind: 'delay', ms: 1 }], durationMs: 60_000 })
  const errors: string[] = []
  const page = await browser.newPage()
  page.setDefaultTimeout(10_000)
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${urls(on).admin}/`)
  await page.fill('#auth-token', TOKEN)
  await page.click('#auth button')
  await page.waitForSelector('#view-chaos:not([hidden]) tr[data-experiment="lag"]')
  const row = await page.locator('#view-chaos tr[data-experiment="lag"] td').allTextContents()
  assert.deepEqual(row.slice(0, 3), ['lag', 'primary', 'delay'])
  assert.match((await page.locator('#view-chaos').textContent())!, /1 running/)

  const plain = await browser.newPage()
  plain.on('pageerror', (err) => errors.push(err.message))
  await plain.goto(`${urls(off).admin}/`)
  await plain.waitForSelector('body[data-loaded="true"]')
  assert.equal(await plain.locator('#view-chaos').getAttribute('hidden'), '', 'hidden: chaos is disabled (403)')
  assert.deepEqual(errors, [])
})
