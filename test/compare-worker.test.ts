import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Comparator } from '../src/compare/comparator.js'
import { CompareWorker, toWire } from '../src/compare/compare-worker.js'
import { compareSchema } from '../src/config/schema.js'
import type { CompareResult } from '../src/compare/types.js'
import { captured, kserveBody, makeJob } from './fixtures/compare.js'
import { startPenumbra, startUpstream, urls, waitFor } from './helpers/servers.js'
import { request } from 'undici'

// The comparison thread (jobs with bodies of compare.workerMinBytes or more): same results as
// comparing on the event loop, failures contained and counted, restart after a backoff.

type Reply = { ctx: string, results: Array<CompareResult | null> | null }

function worker (opts: { script?: URL } = {}): { w: CompareWorker<string>, replies: Reply[], failures: Error[] } {
  const replies: Reply[] = []
  const failures: Error[] = []
  const w = new CompareWorker<string>((ctx, results) => replies.push({ ctx, results }), (err) => failures.push(err), opts)
  return { w, replies, failures }
}

/** Submits one small comparison (primary `p` vs shadow `s`) under `cfg`; flushes unless told not to. */
function submitPair (w: CompareWorker<string>, id: string, cfg: ReturnType<typeof compareSchema.parse>, p: object, s: object, opts: { noiseShadow?: string, flush?: boolean } = {}): void {
  w.submit(id, {
    requestId: id,
    method: 'POST',
    url: '/x',
    primary: toWire(captured(p)),
    items: [{ key: w.keyFor(cfg), noiseShadow: opts.noiseShadow ?? null, learn: false, response: toWire(captured(s)) }]
  })
  if (opts.flush !== false) w.flush()
}

test('the thread gives the same results as the inline comparator; parsed bodies come back for mismatches only', { timeout: 20_000 }, async (t) => {
  const cfg = compareSchema.parse({ ignore: ['/predictions/*/model_version'] })
  const { w, replies, failures } = worker()
  t.after(() => w.close(Date.now()))
  const primary = captured(kserveBody(0))
  const pairs = [
    captured(kserveBody(2e-7)), // match within tolerance
    captured(kserveBody(0, 8)), // other seed: labels differ
    captured('not json'), // unparseable
    captured(kserveBody(0), { status: 500 }) // status mismatch
  ]
  assert.equal(w.up(), true)
  w.submit('job-1', {
    requestId: 'r1',
    method: 'POST',
    url: '/v1/models/m:predict',
    primary: toWire(primary),
    items: pairs.map((p) => ({ key: w.keyFor(cfg), noiseShadow: null, learn: false, response: toWire(p) }))
  })
  w.flush()
  assert.equal(w.inflight, 1)
  await waitFor(() => replies.length === 1, 10_000, 'the reply')
  assert.equal(w.inflight, 0)
  assert.deepEqual(failures, [])
  const { ctx, results } = replies[0]!
  assert.equal(ctx, 'job-1')
  const inline = new Comparator(cfg)
  for (let i = 0; i < pairs.length; i++) {
    const want = inline.compare(makeJob({ url: '/v1/models/m:predict', primary, shadow: pairs[i]! }))
    const got = results![i]!
    if (want.outcome !== 'mismatch') { delete want.primaryBody; delete want.shadowBody }
    assert.deepEqual(got, want, `pair ${i}`)
  }
  assert.deepEqual(results!.map((r) => r!.outcome), ['match', 'mismatch', 'unparseable', 'mismatch'])
  assert.ok(results![1]!.primaryBody !== undefined && results![1]!.shadowBody !== undefined)
})

test('the noise predicate is the shadow\'s noisy-path set as last sent to the thread', { timeout: 20_000 }, async (t) => {
  const cfg = compareSchema.parse({})
  const { w, replies } = worker()
  t.after(() => w.close(Date.now()))
  const job = (id: string): void => submitPair(w, id, cfg, { a: 1, id: 'p' }, { a: 1, id: 's' }, { noiseShadow: 'cand' })
  job('before')
  await waitFor(() => replies.length === 1, 10_000, 'first reply')
  w.setNoisy('cand', ['/id'])
  job('after')
  await waitFor(() => replies.length === 2, 10_000, 'second reply')
  assert.equal(replies[0]!.results![0]!.outcome, 'mismatch')
  assert.equal(replies[1]!.results![0]!.outcome, 'match')
  assert.deepEqual(replies[1]!.results![0]!.noisy!.map((d) => d.path), ['/id'])
})

test('a thread that dies answers its jobs with null, stays down for the backoff, then a new thread serves', { timeout: 20_000 }, async (t) => {
  const cfg = compareSchema.parse({})
  const { w, replies, failures } = worker({ script: new URL('./helpers/crashing-compare-thread.js', import.meta.url) })
  t.after(() => w.close(Date.now()))
  const submit = (id: string): void => submitPair(w, id, cfg, { a: 1 }, { a: 2 })
  assert.equal(w.up(), true)
  submit('crash')
  await waitFor(() => replies.length === 1, 10_000, 'the dead thread\'s answer')
  assert.deepEqual(replies[0], { ctx: 'crash', results: null })
  assert.equal(failures.length, 1)
  assert.match(failures[0]!.message, /exited with code 3/)
  assert.equal(w.up(), false, 'down during the backoff')
  await waitFor(() => w.up(), 5000, 'restart after the backoff')
  submit('fine')
  await waitFor(() => replies.length === 2, 10_000, 'the new thread\'s answer')
  assert.equal(replies[1]!.ctx, 'fine')
  assert.equal(replies[1]!.results![0]!.outcome, 'mismatch', 'the config was re-sent to the new thread')
})

test('after forgetConfigs (a reload) a config in use is sent again and its jobs still compare', { timeout: 20_000 }, async (t) => {
  const cfg = compareSchema.parse({})
  const { w, replies } = worker()
  t.after(() => w.close(Date.now()))
  const submit = (id: string): void => submitPair(w, id, cfg, { a: 1 }, { a: 2 }, { flush: false })
  assert.equal(w.up(), true)
  submit('before')
  w.forgetConfigs() // flushes 'before' first, then clears the thread's comparators
  submit('after')
  w.flush()
  await waitFor(() => replies.length === 2, 10_000, 'both replies')
  assert.deepEqual(replies.map((r) => [r.ctx, r.results![0]!.outcome]), [['before', 'mismatch'], ['after', 'mismatch']])
})

test('close() sends what was submitted, waits for the jobs in flight, then stops the thread; later jobs are refused', { timeout: 20_000 }, async () => {
  const cfg = compareSchema.parse({})
  const { w, replies } = worker()
  w.submit('last', {
    requestId: 'r',
    method: 'POST',
    url: '/x',
    primary: toWire(captured(kserveBody(0))),
    items: [{ key: w.keyFor(cfg), noiseShadow: null, learn: false, response: toWire(captured(kserveBody(0, 9))) }]
  })
  await w.close(Date.now() + 10_000)
  assert.equal(replies.length, 1)
  assert.equal(replies[0]!.results![0]!.outcome, 'mismatch')
  assert.equal(w.up(), false)
})

for (const workerMinBytes of [0, null]) {
  test(`end to end with compare.workerMinBytes: ${workerMinBytes} (all on the thread / none): same outcomes, instances and stored mismatch`, { timeout: 20_000 }, async (t) => {
    const model = (flip: boolean) => (_req: unknown, res: any, body: Buffer): void => {
      const doc = JSON.parse(body.toString('utf8')) as { instances: number[][] }
      const text = JSON.stringify({ predictions: doc.instances.map((x, i) => ({ label: flip && i === 1 ? 'b' : 'a', scores: [x[0]!, 1 - x[0]!] })) })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(text)
    }
    const primary = await startUpstream(model(false))
    const shadow = await startUpstream(model(true))
    const app = await startPenumbra({
      primary: { url: primary.url },
      shadows: [{ name: 'cand', url: shadow.url, sampleRate: 1 }],
      compare: { workerMinBytes }
    })
    t.after(async () => { await app.stop(); await primary.close(); await shadow.close() })
    const { proxy, admin } = urls(app)
    for (const instances of [[[0.1]], [[0.2], [0.3]]]) {
      const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances }) })
      await r.body.text()
    }
    await waitFor(async () => {
      const rep = await (await request(`${admin}/report`)).body.json() as any
      return rep.shadows[0].comparisons.total === 2
    }, 5000, 'two comparisons')
    const rep = await (await request(`${admin}/report`)).body.json() as any
    const s = rep.shadows[0]
    assert.equal(s.comparisons.match, 1)
    assert.equal(s.comparisons.mismatch, 1)
    assert.equal(s.disagreement.instances.compared, 3)
    assert.equal(s.disagreement.instances.disagreements, 1)
    const list = await (await request(`${admin}/mismatches`)).body.json() as any
    assert.equal(list.length, 1)
    const one = await (await request(`${admin}/mismatches/${list[0].id}`)).body.json() as any
    assert.equal(one.shadowResponse.body.predictions[1].label, 'b')
    assert.ok(one.differences.some((d: { path: string }) => d.path === '/predictions/1/label'))
  })
}
