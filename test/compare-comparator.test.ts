import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Comparator } from '../src/compare/comparator.js'
import { compareSchema } from '../src/config/schema.js'
import type { CompareJob } from '../src/compare/types.js'
import { captured, kservePredictions, makeJob } from './fixtures/compare.js'

const cfg = (over: object = {}): ReturnType<typeof compareSchema.parse> => compareSchema.parse(over)

test('status codes are compared at /status (kind status) and can be turned off', () => {
  const job = makeJob({ primary: captured({ a: 1 }), shadow: captured({ a: 1 }, { status: 201 }) })
  const r = new Comparator(cfg()).compare(job)
  assert.equal(r.outcome, 'mismatch')
  assert.deepEqual(r.differences, [{ path: '/status', kind: 'status', primary: 200, shadow: 201 }])
  assert.equal(new Comparator(cfg({ statusCodes: false })).compare(job).outcome, 'match')
})

test('a differing status with an unparseable body is a mismatch, not unparseable', () => {
  const job = makeJob({
    url: '/v1/models/m:predict',
    primary: captured({ predictions: ['a', 'b', 'c'] }),
    shadow: captured('<html>502 Bad Gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } })
  })
  const r = new Comparator(cfg()).compare(job)
  assert.equal(r.outcome, 'mismatch')
  assert.deepEqual(r.differences.map((d) => d.kind), ['status', 'header'])
  assert.equal(r.format, 'kserve-v1')
  assert.deepEqual(r.instances, { compared: 3, disagreements: 3, scoreDeltas: [] })
})

test('configured headers are compared at /headers/<name>; others are not', () => {
  const job = makeJob({
    primary: captured({ a: 1 }, { headers: { 'content-type': 'application/json', 'x-model': 'v1', date: 'Mon' } }),
    shadow: captured({ a: 1 }, { headers: { 'content-type': 'application/json; charset=utf-8', 'x-model': 'v2', date: 'Tue' } })
  })
  const r = new Comparator(cfg({ headers: ['content-type', 'x-model', 'x-missing'] })).compare(job)
  assert.deepEqual(r.differences, [
    { path: '/headers/content-type', kind: 'header', primary: 'application/json', shadow: 'application/json; charset=utf-8' },
    { path: '/headers/x-model', kind: 'header', primary: 'v1', shadow: 'v2' }
  ])
  assert.equal(new Comparator(cfg({ headers: [] })).compare(job).outcome, 'match')
})

test('ignore rules from the config apply to the body diff', () => {
  const job = makeJob({ primary: captured({ a: 1, meta: { t: 1 } }), shadow: captured({ a: 1, meta: { t: 2 } }) })
  assert.equal(new Comparator(cfg()).compare(job).outcome, 'mismatch')
  assert.equal(new Comparator(cfg({ ignore: ['/meta/t'] })).compare(job).outcome, 'match')
  assert.equal(new Comparator(cfg({ paths: { '/meta': { ignore: true } } })).compare(job).outcome, 'match')
  assert.equal(new Comparator(cfg({ paths: { '/meta/t': { numeric: { absTol: 1 } } } })).compare(job).outcome, 'match')
})

test('noise predicate: noisy differences are reported apart and do not make a mismatch', () => {
  const p = kservePredictions(0, { instances: 4 }).map((x, i) => ({ ...x, request_uuid: `p-${i}` }))
  const s = kservePredictions(0, { instances: 4 }).map((x, i) => ({ ...x, request_uuid: `s-${i}` }))
  const job = makeJob({ url: '/v1/models/m:predict', primary: captured({ predictions: p }), shadow: captured({ predictions: s }) })
  const cmp = new Comparator(cfg())
  assert.equal(cmp.compare(job).outcome, 'mismatch')
  const r = cmp.compare(job, (path) => path === '/predictions/*/request_uuid')
  assert.equal(r.outcome, 'match')
  assert.deepEqual(r.differences, [])
  assert.equal(r.noisy?.length, 4)
  assert.equal(r.instances.disagreements, 0)
  // A real difference at another path still counts.
  s[2]!.label = 'not-a-class'
  const r2 = cmp.compare(makeJob({ url: '/v1/models/m:predict', primary: captured({ predictions: p }), shadow: captured({ predictions: s }) }), (path) => path === '/predictions/*/request_uuid')
  assert.equal(r2.outcome, 'mismatch')
  assert.deepEqual(r2.differences.map((d) => d.path), ['/predictions/2/label'])
})

test('compare never throws: an internal error is unparseable with reason "internal error"', () => {
  const cmp = new Comparator(cfg())
  const broken = { ...makeJob({ primary: captured({ a: 1 }), shadow: captured({ a: 1 }) }), shadowResponse: null } as unknown as CompareJob
  const r = cmp.compare(broken)
  assert.equal(r.outcome, 'unparseable')
  assert.equal(r.reason, 'internal error')
  assert.equal(typeof r.detail, 'string')
  // And the comparator is still usable afterwards.
  assert.equal(cmp.compare(makeJob({ primary: captured({ a: 1 }), shadow: captured({ a: 1 }) })).outcome, 'match')
})

test('a malformed pattern fails at construction, not at compare time', () => {
  const bad = { ...cfg(), ignore: ['no-leading-slash'] }
  assert.throws(() => new Comparator(bad), SyntaxError)
})

test('byte-identical bodies match and still count their instances', () => {
  const body = { predictions: kservePredictions(0, { instances: 5 }) }
  const r = new Comparator(cfg()).compare(makeJob({ url: '/v1/models/m:predict', primary: captured(body), shadow: captured(body) }))
  assert.equal(r.outcome, 'match')
  assert.equal(r.instances.compared, 5)
  assert.deepEqual(r.instances.scoreDeltas, [0, 0, 0, 0, 0])
})

test('the difference list is capped at 100, differenceCount keeps counting', () => {
  const a = Array.from({ length: 300 }, (_, i) => i)
  const r = new Comparator(cfg()).compare(makeJob({ primary: captured(a), shadow: captured(a.map((x) => x + 10)) }))
  assert.equal(r.differences.length, 100)
  assert.equal(r.differenceCount, 300)
  assert.deepEqual(r.instances, { compared: 1, disagreements: 1, scoreDeltas: [] })
})
