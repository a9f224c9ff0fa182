import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Client, request } from 'undici'
import { compileAssertion } from '../src/drift/assertions.js'
import { validateConfig, ConfigError } from '../src/config/load.js'
import { startPenumbra, startUpstream, urls, waitFor, type Upstream } from './helpers/servers.js'
import { metricValue } from './helpers/shadow-util.js'
import { childConfigYaml, freePort, runCli, spawnPenumbra, tempDir, writeFile } from './helpers/proxy-util.js'
import { waitForValue } from './helpers/common.js'

// Issue #19, model assertions: each rule on its own, then end to end (violations counted in
// /metrics, listed by GET /assertions, stored redacted), and bad configs exiting 2.

const assertion = (rule: Record<string, unknown>, path = ''): ReturnType<typeof compileAssertion> => {
  const cfg = validateConfig({ primary: { url: 'http://127.0.0.1:9' }, assertions: [{ name: 'a', path, rule }] })
  return compileAssertion(cfg.assertions[0]!)
}
const ctx = { model: 'm', inputKey: null, now: 0 }

test('range: every number within min..max; a list element by element; missing and non-numbers violate', () => {
  const a = assertion({ range: { min: 0, max: 1 } }, '/score')
  assert.equal(a.check(a.valueOf({ score: 0.5 }), ctx), null)
  assert.equal(a.check(a.valueOf({ score: [0, 1] }), ctx), null)
  assert.equal(a.check(a.valueOf({ score: 1.2 }), ctx), '1.2 > max 1')
  assert.equal(a.check(a.valueOf({ score: [0.2, -0.1] }), ctx), '[1] -0.1 < min 0')
  assert.match(a.check(a.valueOf({}), ctx)!, /missing/)
  assert.match(a.check(a.valueOf({ score: 'high' }), ctx)!, /not a number/)
  const open = assertion({ range: { min: 0 } })
  assert.equal(open.check(1e9, ctx), null)
})

test('oneOf: a scalar among the listed values (exact: 1 is not "1")', () => {
  const a = assertion({ oneOf: ['cat', 'dog', 1] }, '/label')
  assert.equal(a.check(a.valueOf({ label: 'dog' }), ctx), null)
  assert.equal(a.check(a.valueOf({ label: 1 }), ctx), null)
  assert.equal(a.check(a.valueOf({ label: '1' }), ctx), '"1" is not one of "cat", "dog", 1')
})

test('sum: probabilities add up to `to` within `tol`, from a list or a wildcard pointer', () => {
  const list = assertion({ sum: { to: 1, tol: 1e-3 } }, '/scores')
  assert.equal(list.check(list.valueOf({ scores: [0.2, 0.3, 0.5] }), ctx), null)
  assert.equal(list.check(list.valueOf({ scores: [0.2, 0.3, 0.4] }), ctx), 'sums to 0.9, not 1 ± 0.001')
  const map = assertion({ sum: { path: '/*', to: 1, tol: 1e-6 } }, '/probabilities')
  assert.equal(map.check(map.valueOf({ probabilities: { cat: 0.25, dog: 0.75 } }), ctx), null)
  assert.match(map.check(map.valueOf({ probabilities: { cat: 0.25 } }), ctx)!, /sums to 0.25/)
  assert.match(map.check(map.valueOf({ probabilities: {} }), ctx)!, /no numbers/)
})

test('schema: JSON Schema by ajv; the first error is the reason', () => {
  const a = assertion({ schema: { type: 'object', required: ['label'], properties: { label: { type: 'string' } } } })
  assert.equal(a.check({ label: 'x' }, ctx), null)
  assert.equal(a.check({ label: 3 }, ctx), '/label must be string')
  assert.equal(a.check({}, ctx), "(value) must have required property 'label'")
})

test('stable: the same input within windowMs gets the same value, per model', () => {
  const a = assertion({ stable: { windowMs: 1000 } }, '/label')
  const at = (inputKey: string, model = 'm', now = 0): { model: string, inputKey: string, now: number } => ({ model, inputKey, now })
  assert.equal(a.check('cat', at('x')), null)
  assert.equal(a.check('cat', at('x', 'm', 10)), null)
  assert.match(a.check('dog', at('x', 'm', 2000))!, /^"dog" for an input that got "cat"/)
  assert.equal(a.check('dog', at('x', 'other')), null, 'another model has its own memory')
  assert.equal(a.check('dog', at('y')), null)
  assert.equal(a.check('dog', { model: 'm', inputKey: null, now: 0 }), null, 'no input to pair: not checked')
})

test('bad assertions are config errors naming the key (a schema that does not compile, two rules, duplicates)', () => {
  const problems = (assertions: unknown): string[] => {
    try {
      validateConfig({ primary: { url: 'http://127.0.0.1:9' }, assertions })
      return []
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      return err.problems
    }
  }
  assert.match(problems([{ name: 'a', rule: { schema: { type: 'nonsense' } } }]).join('\n'), /^assertions\[0\]\.rule\.schema: is not a valid JSON Schema/m)
  assert.match(problems([{ name: 'a', rule: { schema: { tpye: 'object' } } }]).join('\n'), /assertions\[0\]\.rule\.schema: .*unknown keyword/)
  assert.match(problems([{ name: 'a', rule: { range: { min: 0 }, oneOf: [1] } }]).join('\n'), /assertions\[0\]\.rule: must have exactly one of range, oneOf, sum, schema, stable \(got range, oneOf\)/)
  assert.match(problems([{ name: 'a', rule: {} }]).join('\n'), /got none/)
  assert.match(problems([{ name: 'a', rule: { stable: true } }, { name: 'a', rule: { stable: true } }]).join('\n'), /assertions\[1\]\.name: duplicate assertion name "a"/)
  assert.match(problems([{ name: 'has space', rule: { stable: true } }]).join('\n'), /assertions\[0\]\.name: must be 1-64 characters/)
  assert.match(problems([{ name: 'a', path: 'label', rule: { stable: true } }]).join('\n'), /assertions\[0\]\.path: must be a JSON Pointer/)
  assert.match(problems([{ name: 'a', models: ['primary', 'candd'], rule: { stable: true } }]).join('\n'), /assertions\[0\]\.models\[1\]: names no backend or shadow \("candd"; defined: primary\)/)
})

test('an invalid schema exits 2 before listening, naming the key', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t)
  const file = writeFile(dir, 'bad.yaml', 'primary: { url: "http://127.0.0.1:9" }\nassertions:\n  - name: shape\n    rule: { schema: { type: 12 } }\n')
  const r = await runCli(['--config', file, '--check'])
  assert.equal(r.code, 2, r.stderr)
  assert.match(r.stderr, /assertions\[0\]\.rule\.schema: is not a valid JSON Schema/)
})

/** A KServe v1 model whose answer per instance `[x]` is chosen by `answer`. */
function model (answer: (x: number) => unknown): (req: unknown, res: any, body: Buffer) => void {
  return (_req, res, body) => {
    const doc = JSON.parse(body.toString('utf8')) as { instances: number[][] }
    const text = JSON.stringify({ predictions: doc.instances.map(([x]) => answer(x!)) })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
}

test('end to end: violations per model and assertion in /metrics and GET /assertions, stored redacted', { timeout: 30_000 }, async (t) => {
  // The primary is sound. The shadow: scores that do not sum to 1 on x = 3, an unknown label on
  // x = 4, and a label that flips for the same input on its second call.
  const primary: Upstream = await startUpstream(model((x) => ({ label: x % 2 === 0 ? 'a' : 'b', scores: [0.5, 0.5], secret: 'p-secret' })))
  let sevens = 0
  const shadow: Upstream = await startUpstream(model((x) => ({
    label: x === 4 ? 'zzz' : x === 7 ? (sevens++ === 0 ? 'a' : 'b') : x % 2 === 0 ? 'a' : 'b',
    scores: x === 3 ? [0.5, 0.3] : [0.5, 0.5],
    secret: 's-secret'
  })))
  const app = await startPenumbra({
    primary: { url: primary.url },
    shadows: [{ name: 'cand', url: shadow.url, sampleRate: 1 }],
    compare: { mismatches: { redact: { paths: ['/predictions/*/secret'] } } },
    assertions: [
      { name: 'probs_sum_to_one', path: '/scores', rule: { sum: { to: 1, tol: 1e-6 } } },
      { name: 'known_label', path: '/label', rule: { oneOf: ['a', 'b'] } },
      { name: 'same_input_same_label', path: '/label', rule: { stable: true } },
      { name: 'shape', rule: { schema: { type: 'object', required: ['label', 'scores'] } } },
      { name: 'cand_scores_in_range', path: '/scores', models: ['cand'], rule: { range: { min: 0, max: 1 } } }
    ]
  })
  t.after(async () => { await app.stop(); await primary.close(); await shadow.close() })
  const { proxy, admin } = urls(app)
  const send = async (instances: number[][]): Promise<void> => {
    const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances }) })
    await r.body.dump()
  }
  await send([[1], [2], [3], [4]])
  await send([[7]])
  await send([[7]])
  await waitFor(async () => ((await (await request(`${admin}/report`)).body.json()) as any).shadows[0].comparisons.total === 3, 10_000, 'three comparisons')

  const scrape = await (await request(`${admin}/metrics`)).body.text()
  const v = (model: string, a: string): number => metricValue(scrape, 'penumbra_assertion_violations_total', { model, assertion: a })
  const c = (model: string, a: string): number => metricValue(scrape, 'penumbra_assertion_checks_total', { model, assertion: a })
  assert.equal(v('cand', 'probs_sum_to_one'), 1)
  assert.equal(v('cand', 'known_label'), 1)
  assert.equal(v('cand', 'same_input_same_label'), 1)
  assert.equal(v('cand', 'shape'), 0)
  assert.equal(v('cand', 'cand_scores_in_range'), 0)
  assert.equal(c('cand', 'cand_scores_in_range'), 6)
  for (const a of ['probs_sum_to_one', 'known_label', 'same_input_same_label', 'shape']) {
    assert.equal(v('primary', a), 0, a)
    assert.equal(c('primary', a), 6, `${a}: 4 + 1 + 1 instances checked`)
  }
  assert.match(scrape, /^penumbra_assertion_violations_total\{model="primary",assertion="known_label"\} 0$/m)
  assert.doesNotMatch(scrape, /model="primary",assertion="cand_scores_in_range"/, 'models: [cand] only')

  const body = await (await request(`${admin}/assertions`)).body.json() as any
  const known = body.assertions.find((a: any) => a.name === 'known_label')
  assert.deepEqual({ rule: known.rule, checked: known.checked, violations: known.violations }, { rule: 'oneOf', checked: 12, violations: 1 })
  assert.equal(body.violations.length, 3)
  const sum = body.violations.find((r: any) => r.assertion === 'probs_sum_to_one')
  assert.equal(sum.model, 'cand')
  assert.equal(sum.instance, 2)
  assert.equal(sum.rule, 'sum')
  assert.equal(sum.reason, 'sums to 0.8, not 1 ± 0.000001')
  assert.deepEqual(sum.value, [0.5, 0.3])
  assert.equal(sum.path, '/v1/models/m:predict')
  const flip = body.violations.find((r: any) => r.assertion === 'same_input_same_label')
  assert.match(flip.reason, /^"b" for an input that got "a"/)

  // A whole-instance assertion stores the instance as redacted by compare.mismatches.redact.paths.
  const one = await (await request(`${admin}/assertions?model=cand&assertion=known_label`)).body.json() as any
  assert.equal(one.violations.length, 1)
  assert.equal(one.violations[0].value, 'zzz')
  const q = app.drift.store.list({})
  assert.ok(q.every((r) => JSON.stringify(r).includes('s-secret') === false))
  const bad = await request(`${admin}/assertions?limit=0`)
  assert.equal(bad.statusCode, 400)
  await bad.body.dump()
  // GET /quality carries the counts, and `penumbra report` prints them.
  const quality = await (await request(`${admin}/quality`)).body.json() as any
  assert.equal(quality.assertions.find((a: any) => a.name === 'known_label').violations, 1)
  const out = await runCli(['report', '--admin', admin])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stdout, /model assertions\n(.*\n)* {2}known_label\s+oneOf\s+1 of 12 instances violated \(8\.33%\)/)
})

test('stored whole-instance values are redacted', { timeout: 20_000 }, async (t) => {
  const primary: Upstream = await startUpstream(model(() => ({ label: 'a', secret: 'top-secret' })))
  const shadow: Upstream = await startUpstream(model(() => ({ label: 'a', secret: 'top-secret' })))
  const app = await startPenumbra({
    primary: { url: primary.url },
    shadows: [{ name: 'cand', url: shadow.url, sampleRate: 1 }],
    compare: { mismatches: { redact: { paths: ['/predictions/*/secret'] } } },
    assertions: [{ name: 'needs_scores', rule: { schema: { type: 'object', required: ['scores'] } } }]
  })
  t.after(async () => { await app.stop(); await primary.close(); await shadow.close() })
  const { proxy, admin } = urls(app)
  await (await request(`${proxy}/v1/models/m:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"instances":[[1]]}' })).body.dump()
  await waitFor(async () => ((await (await request(`${admin}/assertions`)).body.json()) as any).violations.length === 2, 10_000, 'two violations (primary and shadow)')
  const body = await (await request(`${admin}/assertions`)).body.json() as any
  for (const r of body.violations) {
    assert.deepEqual(r.value, { label: 'a', secret: '[REDACTED]' })
    assert.equal(r.reason, "(value) must have required property 'scores'")
  }
  assert.deepEqual(body.violations.map((r: any) => r.model).sort(), ['cand', 'primary'])
})

test('--workers 2: GET /assertions sums the workers\' counts and merges their violations', { timeout: 40_000 }, async (t) => {
  const answer = model((x) => ({ label: x % 4 === 0 ? 'zzz' : 'a' }))
  const primary: Upstream = await startUpstream(answer)
  const shadow: Upstream = await startUpstream(answer)
  t.after(async () => { await primary.close(); await shadow.close() })
  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const file = writeFile(dir, 'w.yaml', childConfigYaml({
    port,
    adminPort,
    primary: primary.url,
    extra: `shadows: [{ name: cand, url: "${shadow.url}", sampleRate: 1 }]\nassertions: [{ name: known_label, path: /label, rule: { oneOf: [a, b] } }]\n`
  }))
  const child = await spawnPenumbra(file, { port, adminPort, extra: ['--workers', '2'], readyTimeoutMs: 15_000 })
  t.after(() => child.kill())
  const admin = `http://127.0.0.1:${adminPort}`
  await waitFor(async () => ((await (await request(`${admin}/report`)).body.json()) as { workers?: number }).workers === 2, 15_000, 'both workers')
  for (let i = 0; i < 20; i++) {
    // A fresh connection per request, so the cluster spreads them over the workers.
    const c = new Client(`http://127.0.0.1:${port}`)
    const r = await c.request({ path: '/v1/models/m:predict', method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ instances: [[i]] }) })
    await r.body.dump()
    await c.close()
  }
  const body = await waitForValue(async () => {
    const b = await (await request(`${admin}/assertions`)).body.json() as any
    return b.assertions[0].checked === 40 ? b : undefined
  }, 15_000, '40 checks (20 requests, primary and shadow)')
  const a = body.assertions[0]
  assert.equal(a.violations, 10, 'x = 0, 4, 8, 12, 16 for both models')
  assert.deepEqual(a.models.map((m: any) => [m.model, m.checked, m.violations]).sort(), [['cand', 20, 5], ['primary', 20, 5]])
  assert.equal(body.violations.length, 10)
  const pin = await request(`${admin}/drift/reference`, { method: 'POST' })
  assert.equal(pin.statusCode, 409)
  await pin.body.dump()
})
