import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compilePointer, escapeSegment, formatPointer, normalisePath, parsePointer, unescapeSegment } from '../src/compare/json-pointer.js'
import { DiffSink, JsonDiffer, MAX_UNORDERED_PAIRS, numbersEqual } from '../src/compare/json-diff.js'
import { RuleSet, type PathRuleSpec, type Settings } from '../src/compare/rules.js'
import type { Difference } from '../src/compare/types.js'

const DEFAULTS: Settings = { absTol: 1e-6, relTol: 1e-3, arrays: 'ordered', text: false }

function diff (a: unknown, b: unknown, rules: PathRuleSpec[] = [], defaults: Partial<Settings> = {}, max?: number): { differences: Difference[], count: number } {
  const d = new JsonDiffer(new RuleSet(rules, { ...DEFAULTS, ...defaults }), { textSimilarity: 0.9 })
  const sink = new DiffSink({ max })
  d.diff(a, b, sink)
  return { differences: sink.differences, count: sink.count }
}

test('json pointer: RFC 6901 escaping round-trips, ~1 before ~0 on the way back', () => {
  assert.equal(escapeSegment('a/b~c'), 'a~1b~0c')
  assert.equal(unescapeSegment('a~1b~0c'), 'a/b~c')
  // "~01" is "~" + "1", not "/" (RFC 6901 §4).
  assert.equal(unescapeSegment('~01'), '~1')
  assert.deepEqual(parsePointer(''), [])
  assert.deepEqual(parsePointer('/'), [''])
  assert.deepEqual(parsePointer('/m~0n/a~1b/0'), ['m~n', 'a/b', '0'])
  assert.equal(formatPointer(['m~n', 'a/b', 0]), '/m~0n/a~1b/0')
  assert.throws(() => parsePointer('a/b'), SyntaxError)
})

test('json pointer: patterns with * match any index or key; normalisation folds indices', () => {
  const m = compilePointer('/predictions/*/label')
  assert.equal(m.matches(['predictions', 3, 'label']), true)
  assert.equal(m.matches(['predictions', 'x', 'label']), true)
  assert.equal(m.matches(['predictions', 3, 'scores']), false)
  assert.equal(m.matches(['predictions', 3]), false)
  assert.equal(m.covers(['predictions', 3, 'label', 'x']), true)
  assert.equal(compilePointer('/a/0').matches(['a', 0]), true)
  assert.equal(normalisePath('/predictions/12/scores/0'), '/predictions/*/scores/*')
  assert.equal(normalisePath('/predictions/*/scores/*'), '/predictions/*/scores/*')
  assert.equal(normalisePath('/a/01/b'), '/a/01/b', 'only canonical indices fold')
  assert.equal(normalisePath('/status'), '/status')
})

test('numbers: 1 and 1.0 are equal; int vs float of equal value is equal', () => {
  assert.deepEqual(diff(JSON.parse('{"a":1}'), JSON.parse('{"a":1.0}')).differences, [])
  assert.deepEqual(diff(JSON.parse('[100]'), JSON.parse('[1e2]')).differences, [])
})

test('numbers: exactly at the tolerance is equal, just beyond differs', () => {
  // absTol alone.
  const abs = { absTol: 1e-6, relTol: 0 }
  assert.equal(diff({ x: 1 }, { x: 1.000001 }, [], abs).count, 0)
  assert.equal(diff({ x: 1 }, { x: 1.0000011 }, [], abs).count, 1)
  assert.equal(diff({ x: 0.5 }, { x: 0.75 }, [], { absTol: 0.25, relTol: 0 }).count, 0)
  assert.equal(diff({ x: 0.5 }, { x: 0.7500001 }, [], { absTol: 0.25, relTol: 0 }).count, 1)
  // relTol alone: max(|a|,|b|) = 1000, 1e-3 of it is 1.
  const rel = { absTol: 0, relTol: 1e-3 }
  assert.equal(diff({ x: 999 }, { x: 1000 }, [], rel).count, 0)
  assert.equal(diff({ x: 998.9 }, { x: 1000 }, [], rel).count, 1)
  // Both: 0.1 + 1e-3 * 10 = 0.11.
  assert.equal(numbersEqual(10, 9.89, 0.1, 1e-3), true)
  assert.equal(numbersEqual(10, 9.889, 0.1, 1e-3), false)
  // Zero tolerance is exact, no rounding slack.
  assert.equal(numbersEqual(0.1 + 0.2, 0.3, 0, 0), false)
})

test('differences carry JSON Pointer paths and the four kinds', () => {
  const r = diff(
    { a: 1, b: 'x', c: [1, 2, 3], d: null, 'k/1': true, gone: 1 },
    { a: 2, b: 'x', c: [1, 2], d: 0, 'k/1': false, added: [] }
  )
  assert.deepEqual(r.differences, [
    { path: '/a', kind: 'value', primary: 1, shadow: 2 },
    { path: '/c/2', kind: 'missing', primary: 3 },
    { path: '/d', kind: 'type', primary: null, shadow: 0 },
    { path: '/k~11', kind: 'value', primary: true, shadow: false },
    { path: '/gone', kind: 'missing', primary: 1 },
    { path: '/added', kind: 'extra', shadow: [] }
  ])
  assert.deepEqual(diff('1', 1).differences, [{ path: '', kind: 'type', primary: '1', shadow: 1 }])
  assert.deepEqual(diff({ a: [1] }, { a: { 0: 1 } }).differences, [{ path: '/a', kind: 'type', primary: [1], shadow: { 0: 1 } }])
})

test('ignore rules: wildcards, exact paths, subtrees, and missing/extra under ignored paths', () => {
  const a = { predictions: [{ label: 'a', id: 'u1', meta: { t: 1 } }, { label: 'b', id: 'u2', meta: { t: 2 } }], ts: 1 }
  const b = { predictions: [{ label: 'a', id: 'v1', meta: { t: 9 } }, { label: 'c', id: 'v2' }], ts: 2, extra: 1 }
  const r = diff(a, b, [
    { pattern: '/predictions/*/id', ignore: true },
    { pattern: '/predictions/*/meta', ignore: true },
    { pattern: '/ts', ignore: true },
    { pattern: '/extra', ignore: true }
  ])
  assert.deepEqual(r.differences, [{ path: '/predictions/1/label', kind: 'value', primary: 'b', shadow: 'c' }])
  // Only index 0 ignored: index 1 still differs.
  const r2 = diff({ x: [1, 2] }, { x: [5, 6] }, [{ pattern: '/x/0', ignore: true }])
  assert.deepEqual(r2.differences.map((d) => d.path), ['/x/1'])
})

test('per-path rules: numeric override (inherited below), ignore:false beats an earlier ignore', () => {
  const rules: PathRuleSpec[] = [{ pattern: '/scores', absTol: 0.1, relTol: 0 }]
  assert.equal(diff({ scores: [0.5, 0.6] }, { scores: [0.55, 0.65] }, rules).count, 0)
  assert.equal(diff({ scores: [0.5], other: 0.5 }, { scores: [0.55], other: 0.55 }, rules).count, 1)
  // Most specific pattern wins per field: /a/b is stricter than /a/*.
  const spec: PathRuleSpec[] = [{ pattern: '/a/b', absTol: 0, relTol: 0 }, { pattern: '/a/*', absTol: 1, relTol: 0 }]
  assert.deepEqual(diff({ a: { b: 1, c: 1 } }, { a: { b: 1.5, c: 1.5 } }, spec).differences.map((d) => d.path), ['/a/b'])
  // A later rule on the same pattern wins (how compare.paths turns off a format's default ignore).
  assert.equal(diff({ model: 'a' }, { model: 'b' }, [{ pattern: '/model', ignore: true }, { pattern: '/model', ignore: false }]).count, 1)
})

test('unordered arrays: multiset match with tolerance; changed element reports its fields', () => {
  const un: PathRuleSpec[] = [{ pattern: '/tags', arrays: 'unordered' }, { pattern: '/items', arrays: 'unordered' }]
  assert.equal(diff({ tags: ['a', 'b', 'c'] }, { tags: ['c', 'a', 'b'] }, un).count, 0)
  assert.equal(diff({ tags: [1, 2, 2] }, { tags: [2, 1, 2.0000001] }, un).count, 0)
  assert.deepEqual(diff({ tags: ['a', 'a'] }, { tags: ['a', 'b'] }, un).differences, [{ path: '/tags/1', kind: 'value', primary: 'a', shadow: 'b' }])
  assert.deepEqual(diff({ tags: ['a', 'b'] }, { tags: ['b'] }, un).differences, [{ path: '/tags/0', kind: 'missing', primary: 'a' }])
  assert.deepEqual(diff({ tags: ['b'] }, { tags: ['b', 'z'] }, un).differences, [{ path: '/tags/1', kind: 'extra', shadow: 'z' }])
  const items = diff(
    { items: [{ id: 1, p: 0.5 }, { id: 2, p: 0.7 }] },
    { items: [{ id: 2, p: 0.7 }, { id: 1, p: 0.9 }] }, un)
  assert.deepEqual(items.differences, [{ path: '/items/0/p', kind: 'value', primary: 0.5, shadow: 0.9 }])
  // Ordered (the default) flags the reorder.
  assert.equal(diff({ tags: ['a', 'b'] }, { tags: ['b', 'a'] }).count, 2)
  // The global default can be unordered too.
  assert.equal(diff([3, 1, 2], [1, 2, 3], [], { arrays: 'unordered' }).count, 0)
})

test('unordered arrays past the pairwise bound fall back to a canonical sort', () => {
  const n = Math.ceil(Math.sqrt(MAX_UNORDERED_PAIRS)) + 10
  const a = Array.from({ length: n }, (_, i) => ({ k: i }))
  const b = [...a].reverse()
  assert.equal(diff(a, b, [], { arrays: 'unordered' }).count, 0)
  const nums = Array.from({ length: n }, (_, i) => i * 1.5)
  assert.equal(diff(nums, [...nums].reverse().map((x) => x + 1e-9), [], { arrays: 'unordered' }).count, 0)
})

test('keyed arrays pair elements by key', () => {
  const rules: PathRuleSpec[] = [{ pattern: '/outputs', arrays: { keyBy: 'name' } }]
  const r = diff(
    { outputs: [{ name: 'a', v: 1 }, { name: 'b', v: 2 }] },
    { outputs: [{ name: 'b', v: 2 }, { name: 'a', v: 3 }, { name: 'c', v: 0 }] }, rules)
  assert.deepEqual(r.differences, [
    { path: '/outputs/0/v', kind: 'value', primary: 1, shadow: 3 },
    { path: '/outputs/2', kind: 'extra', shadow: { name: 'c', v: 0 } }
  ])
})

test('text rules compare strings by normalised similarity', () => {
  const rules: PathRuleSpec[] = [{ pattern: '/t', text: true }]
  assert.equal(diff({ t: 'The capital of France is Paris.' }, { t: 'the  capital of France is Paris' }, rules).count, 0)
  assert.equal(diff({ t: 'The capital of France is Paris.' }, { t: 'I do not know.' }, rules).count, 1)
  assert.equal(diff({ u: 'Paris' }, { u: 'paris' }, rules).count, 1, 'exact outside text paths')
})

test('the recorded differences are capped but all are counted', () => {
  const a = Array.from({ length: 500 }, (_, i) => i)
  const b = a.map((x) => x + 1)
  const r = diff(a, b)
  assert.equal(r.differences.length, 100)
  assert.equal(r.count, 500)
  assert.equal(diff(a, b, [], {}, 10).differences.length, 10)
})

test('noise predicate: noisy differences are set aside and not counted', () => {
  const d = new JsonDiffer(new RuleSet([], DEFAULTS), { textSimilarity: 0.9 })
  const sink = new DiffSink({ isNoisy: (p) => p === '/items/*/ts' })
  d.diff({ items: [{ ts: 1, v: 1 }, { ts: 2, v: 2 }] }, { items: [{ ts: 5, v: 1 }, { ts: 6, v: 3 }] }, sink)
  assert.equal(sink.count, 1)
  assert.deepEqual(sink.differences.map((x) => x.path), ['/items/1/v'])
  assert.deepEqual(sink.noisy.map((x) => x.path), ['/items/0/ts', '/items/1/ts'])
})

test('equal() probes without recording and honours rules', () => {
  const d = new JsonDiffer(new RuleSet([{ pattern: '/a/x', ignore: true }], DEFAULTS), { textSimilarity: 0.9 })
  assert.equal(d.equal({ x: 1, y: 2 }, { x: 9, y: 2 }, ['a']), true)
  assert.equal(d.equal({ x: 1, y: 2 }, { x: 9, y: 3 }, ['a']), false)
})
