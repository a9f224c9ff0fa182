import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startUpstream, waitFor } from './helpers/servers.js'
import { call, metricValue, newAgent, primaryHandler, PRIMARY_BODY, ShadowBehaviour, type ShadowView } from './helpers/shadow-util.js'
import { startChild, type Child } from './helpers/shadow-child.js'

async function shadowsOf (c: Child): Promise<ShadowView[]> {
  const res = await request(`${c.admin}/shadows`)
  return await res.body.json() as ShadowView[]
}

/** Barrier: every call the child mirrored has ended (see shadowsSettled in shadow-util). */
async function settled (c: Child): Promise<void> {
  await waitFor(async () => (await shadowsOf(c)).every((x) => x.state.inflight === 0 && x.counters.mirrored === x.counters.ok + x.counters.error + x.counters.timeout), 5000, 'every mirrored call to end')
}

async function metricsOf (c: Child): Promise<string> {
  const res = await request(`${c.admin}/metrics`)
  return await res.body.text()
}

test('SIGHUP: a new sampleRate and a new shadow take effect; an invalid file keeps the old config, is logged with its keys, and the process keeps serving', async (t) => {
  const primary = await startUpstream(primaryHandler)
  const a = await startUpstream()
  const b = await startUpstream()
  const agent = newAgent()
  const c = await startChild({
    primary: { url: primary.url },
    shutdown: { timeoutMs: 500 },
    shadows: [{ name: 'a', url: a.url, sampleRate: 1 }]
  })
  t.after(async () => {
    await agent.close()
    await c.dispose()
    await primary.close()
    await a.close()
    await b.close()
  })
  const burst = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const g = await call(agent, `${c.proxy}/p`, { body: '{}' })
      assert.equal(g.status, 200)
      assert.ok(g.body.equals(PRIMARY_BODY))
    }
  }
  await burst(5)
  await waitFor(() => a.seen.length === 5, 5000, 'a mirrored at 1')

  // 1. a → 0, new shadow b at 1.
  c.write({
    primary: { url: primary.url },
    shutdown: { timeoutMs: 500 },
    shadows: [{ name: 'a', url: a.url, sampleRate: 0 }, { name: 'b', url: b.url, sampleRate: 1 }]
  })
  c.signal('SIGHUP')
  await waitFor(async () => (await shadowsOf(c)).length === 2, 5000, 'the reload applied')
  const after1 = await shadowsOf(c)
  assert.equal(after1.find((s) => s.name === 'a')!.state.sampleRate, 0)
  assert.equal(after1.find((s) => s.name === 'a')!.counters.mirrored, 5, 'counters carry over for a kept name')
  await burst(5)
  await waitFor(() => b.seen.length === 5, 5000, 'b mirrored')
  await settled(c)
  assert.equal(a.seen.length, 5, 'a no longer mirrored')

  // 2. an invalid file: old config kept.
  c.writeRaw([
    'listen: { host: 127.0.0.1, port: ' + String(c.proxyPort) + ' }',
    'admin: { host: 127.0.0.1, port: ' + String(c.adminPort) + ' }',
    'log: { level: info, access: false }',
    `primary: { url: "${primary.url}" }`,
    'bogusTopLevelKey: 1',
    'shadows:',
    `  - { name: a, url: "${a.url}", sampleRate: 7 }`,
    ''
  ].join('\n'))
  c.signal('SIGHUP')
  await waitFor(async () => metricValue(await metricsOf(c), 'penumbra_config_reloads_total', { result: 'invalid' }) === 1, 5000, 'the invalid reload counted')
  const after2 = await shadowsOf(c)
  assert.deepEqual(after2.map((s) => [s.name, s.state.sampleRate]), [['a', 0], ['b', 1]], 'the running config is kept')
  await burst(5)
  await waitFor(() => b.seen.length === 10, 5000, 'b still mirrors')
  await settled(c)
  assert.equal(a.seen.length, 5)

  // 3. a YAML syntax error: kept as well.
  c.writeRaw('shadows: [ { name: a\n  : : :\n')
  c.signal('SIGHUP')
  await waitFor(async () => metricValue(await metricsOf(c), 'penumbra_config_reloads_total', { result: 'invalid' }) === 2, 5000, 'the second invalid reload counted')
  await burst(2)
  await waitFor(() => b.seen.length === 12, 5000, 'b still mirrors')
  assert.equal(c.exitInfo, null, 'the process is still running')

  // Stop and read the whole log: it names every problem key.
  c.signal('SIGTERM')
  const exit = await c.exited
  assert.equal(exit.code, 0)
  assert.match(c.output, /shadows\[0\]\.sampleRate/)
  assert.match(c.output, /bogusTopLevelKey/)
  assert.match(c.output, /YAML syntax error/)
  assert.match(c.output, /config reload failed/)
})

test('SIGHUP with an invalid file: the problems are logged while the process runs (not only at exit)', async (t) => {
  const primary = await startUpstream(primaryHandler)
  const c = await startChild({ primary: { url: primary.url }, shutdown: { timeoutMs: 200 } })
  t.after(async () => { await c.dispose(); await primary.close() })
  c.writeRaw(`primary: { url: "${primary.url}" }\nlisten: { host: 127.0.0.1, port: ${c.proxyPort} }\nadmin: { host: 127.0.0.1, port: ${c.adminPort} }\nshutdown: { timeoutMs: -5 }\n`)
  c.signal('SIGHUP')
  await waitFor(async () => metricValue(await metricsOf(c), 'penumbra_config_reloads_total', { result: 'invalid' }) === 1, 5000, 'the invalid reload counted')
  await waitFor(() => /shutdown\.timeoutMs/.test(c.output) && /config reload failed/.test(c.output), 3000, 'the problem in the log while running')
})

/**
 * One mirrored request to a shadow driven by `b` and `handler`, then SIGTERM once the shadow has
 * its copy: what the shutdown tests below look at.
 */
async function sigtermWithShadowInFlight (t: { after: (fn: () => Promise<void>) => void }, b: ShadowBehaviour, handler: Parameters<typeof startUpstream>[0], shutdownMs: number, shadow: { name: string, timeoutMs: number }, count = 1): Promise<{ exit: Awaited<Awaited<ReturnType<typeof startChild>>['exited']>, t0: number, output: () => string }> {
  const primary = await startUpstream(primaryHandler)
  const upstream = await startUpstream(handler)
  const agent = newAgent()
  const c = await startChild({
    primary: { url: primary.url },
    shutdown: { timeoutMs: shutdownMs },
    log: { level: 'warn', access: false },
    shadows: [{ ...shadow, url: upstream.url }]
  })
  t.after(async () => { await agent.close().catch(() => {}); await c.dispose(); b.dispose(); await primary.close(); await upstream.close() })
  for (let i = 0; i < count; i++) {
    const got = await call(agent, `${c.proxy}/p`, { body: '{}' })
    assert.equal(got.status, 200)
  }
  await agent.close()
  await waitFor(() => upstream.seen.length === count, 2000, 'the shadow got its copies')
  const t0 = Date.now()
  c.signal('SIGTERM')
  return { exit: await c.exited, t0, output: () => c.output }
}

test('graceful shutdown waits for an in-flight shadow request that finishes before the deadline, then exits 0', async (t) => {
  const b = new ShadowBehaviour()
  const { exit, t0 } = await sigtermWithShadowInFlight(t, b, b.delayed(1200), 5000, { name: 'slow', timeoutMs: 10_000 })
  assert.equal(exit.code, 0)
  assert.equal(b.responded.length, 1, 'the shadow answered before penumbra exited')
  assert.equal(b.closedEarly, 0, 'the shadow connection was not cut')
  assert.ok(b.responded[0]! <= exit.at, 'exit came after the shadow answered')
  t.diagnostic(`exit after ${exit.at - t0} ms, shadow answered after ${b.responded[0]! - t0} ms`)
  assert.ok(exit.at - t0 < 5000, `exited ${exit.at - t0} ms after SIGTERM (deadline 5000 ms)`)
})

test('graceful shutdown abandons a hanging shadow request at the deadline and exits 0 within shutdown.timeoutMs + margin', async (t) => {
  const b = new ShadowBehaviour()
  const { exit, t0 } = await sigtermWithShadowInFlight(t, b, b.hang(), 1000, { name: 'stuck', timeoutMs: 60_000 })
  const took = exit.at - t0
  assert.equal(exit.code, 0)
  assert.ok(took >= 800, `exited after ${took} ms: it should wait for the shadow until the deadline`)
  assert.ok(took < 1000 + 2500, `exited after ${took} ms (deadline 1000 ms)`)
  await waitFor(() => b.closedEarly === 1, 2000, 'the abandoned shadow connection is closed')
})

test('graceful shutdown abandons every hanging shadow request still in flight, not only one', async (t) => {
  const b = new ShadowBehaviour()
  const { exit, t0, output } = await sigtermWithShadowInFlight(t, b, b.hang(), 1000, { name: 'stuck', timeoutMs: 60_000 }, 3)
  assert.equal(exit.code, 0)
  assert.ok(exit.at - t0 < 1000 + 2500, `exited after ${exit.at - t0} ms (deadline 1000 ms)`)
  assert.match(output(), /"abandoned":3\b.*shadow requests still in flight were abandoned/)
  await waitFor(() => b.closedEarly === 3, 2000, 'all three abandoned shadow connections are closed')
})
