import { test } from 'node:test'
import assert from 'node:assert/strict'
import { stickyUniform } from '../src/shadow/sampler.js'
import { startPenumbra, startUpstream, urls, waitFor } from './helpers/servers.js'
import { call, newAgent, pool, primaryHandler, rid, rig, shadowView, shadowsSettled } from './helpers/shadow-util.js'

/** Binomial 4-sigma band around n·p. */
function band (n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p))
  return [n * p - 4 * sd, n * p + 4 * sd]
}

test('random sampling: rates within 4 sigma over 2000 requests; one shared draw (0.2 ⊆ 0.5; equal rates identical)', async (t) => {
  const r = await rig({
    shadowCount: 4,
    shadows: (u) => [
      { name: 'q25', url: u[0], sampleRate: 0.25 },
      { name: 'p20', url: u[1], sampleRate: 0.2 },
      { name: 'p50', url: u[2], sampleRate: 0.5 },
      { name: 'q25b', url: u[3], sampleRate: 0.25 }
    ]
  })
  t.after(() => r.close())
  const N = 2000
  const got = await pool(N, 32, (i) => call(r.agent, `${r.proxy}/predict`, { body: `{"i":${i}}`, headers: { 'x-request-id': `s-${i}`, 'content-type': 'application/json' } }))
  assert.ok(got.every((g) => g.status === 200))
  const names = ['q25', 'p20', 'p50', 'q25b']
  await waitFor(async () => {
    for (const n of names) {
      const v = await shadowView(r.app, n)
      if (v.counters.ok + v.counters.error + v.counters.timeout < v.counters.mirrored) return false
    }
    return true
  }, 10_000, 'all mirrored requests finished')
  for (const n of names) {
    const v = await shadowView(r.app, n)
    assert.equal(v.counters.skipped.concurrency, 0, `${n}: no concurrency skips distort the sample`)
    assert.equal(v.counters.error + v.counters.timeout, 0, `${n}: no errors`)
  }
  const ids = r.shadows.map((s) => new Set(s.seen.map(rid)))
  const [q25, p20, p50, q25b] = ids as [Set<string>, Set<string>, Set<string>, Set<string>]
  const [lo25, hi25] = band(N, 0.25)
  assert.ok(q25.size > lo25 && q25.size < hi25, `0.25: ${q25.size} outside (${lo25}, ${hi25})`)
  const [lo20, hi20] = band(N, 0.2)
  assert.ok(p20.size > lo20 && p20.size < hi20, `0.2: ${p20.size} outside (${lo20}, ${hi20})`)
  const [lo50, hi50] = band(N, 0.5)
  assert.ok(p50.size > lo50 && p50.size < hi50, `0.5: ${p50.size} outside (${lo50}, ${hi50})`)
  for (const id of p20) assert.ok(q25.has(id) && p50.has(id), `${id}: mirrored at 0.2 but not at 0.25/0.5`)
  for (const id of q25) assert.ok(p50.has(id), `${id}: mirrored at 0.25 but not at 0.5`)
  assert.deepEqual([...q25].sort(), [...q25b].sort(), 'equal rates see identical request sets')
  assert.equal(r.primary.seen.length, N)
})

test('sticky header:x-user follows stickyUniform: u < rate mirrored, u ≥ rate not; same key → same decision; no key → not mirrored', async (t) => {
  // u(user-1) = 0.357, u("") = 0.454, u(user-2) = 0.4715: at 0.4 only user-1 is mirrored; at 0.46 also "".
  const r = await rig({
    shadowCount: 2,
    shadows: (u) => [
      { name: 'at40', url: u[0], sampleRate: 0.4, sampleBy: 'header:X-User' },
      { name: 'at46', url: u[1], sampleRate: 0.46, sampleBy: 'header:x-user' }
    ]
  })
  t.after(() => r.close())
  let n = 0
  const send = async (user: string | null): Promise<void> => {
    const headers: Record<string, string> = { 'x-request-id': `${user ?? 'none'}-${n++}`, 'content-type': 'application/json' }
    if (user !== null) headers['x-user'] = user
    const g = await call(r.agent, `${r.proxy}/predict`, { body: '{}', headers })
    assert.equal(g.status, 200)
  }
  for (let k = 0; k < 5; k++) {
    await send('user-1')
    await send('user-2')
    await send('')
    await send(null)
  }
  await waitFor(() => r.shadows[0]!.seen.length === 5 && r.shadows[1]!.seen.length === 10, 5000, 'mirrored requests')
  await shadowsSettled(r.app) // barrier: every mirrored call has ended
  const users = (i: number): string[] => [...new Set(r.shadows[i]!.seen.map((s) => String(s.headers['x-user'])))].sort()
  assert.deepEqual(users(0), ['user-1'])
  assert.deepEqual(users(1), ['', 'user-1'])
  assert.equal(r.shadows[0]!.seen.length, 5, 'every repeated user-1 request mirrored')
  assert.equal(r.shadows[1]!.seen.length, 10)
  assert.ok(r.shadows.every((s) => s.seen.every((x) => x.headers['x-user'] !== undefined)), 'a request without the key is never mirrored')
})

test('sticky query:<name> hashes the decoded UTF-8 value (ünïcode u = 0.7485)', async (t) => {
  const r = await rig({
    shadowCount: 2,
    shadows: (u) => [
      { name: 'above', url: u[0], sampleRate: 0.75, sampleBy: 'query:user' },
      { name: 'below', url: u[1], sampleRate: 0.74, sampleBy: 'query:user' }
    ]
  })
  t.after(() => r.close())
  await call(r.agent, `${r.proxy}/predict?user=%C3%BCn%C3%AFcode`, { body: '{}' })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'mirrored at 0.75')
  await shadowsSettled(r.app) // barrier: every mirrored call has ended
  assert.equal(r.shadows[1]!.seen.length, 0, 'not mirrored at 0.74')
})

test('sticky cookie:<name> sampling', async (t) => {
  const r = await rig({ shadows: (u) => [{ name: 'c', url: u[0], sampleRate: 0.4, sampleBy: 'cookie:sid' }] })
  t.after(() => r.close())
  await call(r.agent, `${r.proxy}/predict`, { body: '{}', headers: { cookie: 'a=b; sid=user-2', 'x-request-id': 'c-user-2' } })
  await call(r.agent, `${r.proxy}/predict`, { body: '{}', headers: { cookie: 'a=b; sid=user-1', 'x-request-id': 'c-user-1' } })
  await call(r.agent, `${r.proxy}/predict`, { body: '{}', headers: { cookie: 'a=b', 'x-request-id': 'c-none' } })
  await waitFor(() => r.shadows[0]!.seen.length === 1, 5000, 'mirrored')
  await shadowsSettled(r.app) // barrier: every mirrored call has ended
  assert.deepEqual(r.shadows[0]!.seen.map(rid), ['c-user-1'])
})

test('sticky decisions agree across two separate penumbra instances (replicas) and with stickyUniform', async (t) => {
  const primary = await startUpstream(primaryHandler)
  const shadowA = await startUpstream()
  const shadowB = await startUpstream()
  const rate = 0.3
  const mk = (url: string) => startPenumbra({
    primary: { url: primary.url },
    sampling: { salt: 'replica-salt' },
    shutdown: { timeoutMs: 200 },
    shadows: [{ name: 'sticky', url, sampleRate: rate, sampleBy: 'header:x-user' }]
  })
  const a = await mk(shadowA.url)
  const b = await mk(shadowB.url)
  const agent = newAgent()
  t.after(async () => {
    await agent.close()
    await a.stop()
    await b.stop()
    await primary.close()
    await shadowA.close()
    await shadowB.close()
  })
  const keys = Array.from({ length: 60 }, (_, i) => `key-${i * 7919}`)
  const expected = keys.filter((k) => stickyUniform('replica-salt', k) < rate).sort()
  assert.ok(expected.length > 3 && expected.length < keys.length - 3, 'the key set exercises both decisions')
  for (const app of [a, b, a]) {
    await pool(keys.length, 8, (i) => call(agent, `${urls(app).proxy}/predict`, { body: '{}', headers: { 'x-user': keys[i]! } }))
  }
  await waitFor(() => shadowA.seen.length === 2 * expected.length && shadowB.seen.length === expected.length, 5000, 'mirrored requests')
  await shadowsSettled(a)
  await shadowsSettled(b)
  const seenKeys = (s: typeof shadowA): string[] => [...new Set(s.seen.map((x) => String(x.headers['x-user'])))].sort()
  assert.deepEqual(seenKeys(shadowA), expected)
  assert.deepEqual(seenKeys(shadowB), expected)
  assert.equal(shadowA.seen.length, 2 * expected.length, 'the same key mirrored again on the repeat')
})

test('sampleRate 0 mirrors nothing and 1 mirrors everything', async (t) => {
  const r = await rig({ shadowCount: 2, shadows: (u) => [{ name: 'zero', url: u[0], sampleRate: 0 }, { name: 'one', url: u[1], sampleRate: 1 }] })
  t.after(() => r.close())
  await pool(100, 10, () => call(r.agent, `${r.proxy}/p`, { body: '{}' }))
  await waitFor(() => r.shadows[1]!.seen.length === 100, 5000, 'all mirrored at 1')
  assert.equal(r.shadows[0]!.seen.length, 0)
})
