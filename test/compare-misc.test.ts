import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mergeCompareConfig } from '../src/compare/merge-config.js'
import { MAX_PATH_LABEL_LENGTH, PathLimiter } from '../src/compare/path-limiter.js'
import { levenshteinWithin, similarAtLeast, textSimilarity, tokenJaccard } from '../src/compare/text-similarity.js'
import { compareSchema } from '../src/config/schema.js'

test('path limiter: first 100 distinct paths per shadow, then "other"', () => {
  const l = new PathLimiter()
  for (let i = 0; i < 100; i++) assert.equal(l.label('a', `/p${i}`), `/p${i}`)
  assert.equal(l.label('a', '/p100'), 'other')
  assert.equal(l.label('a', '/p5'), '/p5', 'a known path keeps its label')
  assert.equal(l.label('b', '/p100'), '/p100', 'the cap is per shadow')
  assert.equal(l.size('a'), 100)
  assert.equal(l.label('b', '/' + 'x'.repeat(MAX_PATH_LABEL_LENGTH)), 'other')
  assert.equal(new PathLimiter(0).label('a', '/x'), 'other')
  assert.throws(() => new PathLimiter(-1), RangeError)
})

test('mergeCompareConfig: scalars replace, numeric/noise merge, lists replace, paths merge by pattern', () => {
  const base = compareSchema.parse({
    ignore: ['/a'],
    headers: ['content-type', 'x-model'],
    numeric: { absTol: 0.01, relTol: 0.02 },
    paths: { '/x': { arrays: 'unordered' }, '/y': { ignore: true } },
    noise: { enabled: true, minSamples: 50 }
  })
  assert.equal(mergeCompareConfig(base), base)
  assert.equal(mergeCompareConfig(base, {}).numeric.absTol, 0.01)
  const m = mergeCompareConfig(base, {
    format: 'oip-v2',
    ignore: ['/b'],
    numeric: { relTol: 0.5 },
    paths: { '/y': { numeric: { absTol: 1 } }, '/z': { ignore: true } },
    noise: { margin: 0.1 },
    topK: 3
  })
  assert.equal(m.format, 'oip-v2')
  assert.deepEqual(m.ignore, ['/b'])
  assert.deepEqual(m.headers, ['content-type', 'x-model'])
  assert.deepEqual(m.numeric, { absTol: 0.01, relTol: 0.5 })
  assert.deepEqual(m.paths, { '/x': { arrays: 'unordered' }, '/y': { numeric: { absTol: 1 } }, '/z': { ignore: true } })
  assert.deepEqual(m.noise, { ...base.noise, margin: 0.1 })
  assert.equal(m.topK, 3)
  assert.equal(m.mismatches, base.mismatches)
  // Undefined values do not erase the base.
  assert.equal(mergeCompareConfig(base, { topK: undefined, numeric: { absTol: undefined } }).topK, base.topK)
  assert.equal(mergeCompareConfig(base, { numeric: { absTol: undefined } }).numeric.absTol, 0.01)
  // The base is not modified.
  assert.deepEqual(base.ignore, ['/a'])
})

test('text similarity: normalised Levenshtein ratio, banded check agrees with the full one', () => {
  assert.equal(textSimilarity('Hello   World', 'hello world'), 1)
  assert.equal(textSimilarity('', ''), 1)
  assert.equal(textSimilarity('abc', ''), 0)
  assert.equal(textSimilarity('kitten', 'sitting'), 1 - 3 / 7)
  const a = 'the quick brown fox jumps over the lazy dog'
  const b = 'the quick brown fox jumped over the lazy dog'
  const sim = textSimilarity(a, b)
  assert.equal(sim, 1 - 2 / 44)
  assert.equal(similarAtLeast(a, b, sim), true, 'inclusive at the threshold')
  assert.equal(similarAtLeast(a, b, sim + 0.001), false)
  // Random pairs: the banded decision equals the full computation.
  let seed = 1
  const r = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
  const word = (): string => ['a', 'b', 'ab', 'ba', 'c'][Math.floor(r() * 5)]!
  for (let i = 0; i < 300; i++) {
    const x = Array.from({ length: 1 + Math.floor(r() * 8) }, word).join(' ')
    const y = Array.from({ length: 1 + Math.floor(r() * 8) }, word).join(' ')
    const t = Math.floor(r() * 10) / 10
    assert.equal(similarAtLeast(x, y, t), textSimilarity(x, y) >= t - 1e-12, `${x} | ${y} @ ${t}`)
  }
  assert.equal(tokenJaccard('a b c', 'b c d'), 0.5)
})

test('levenshteinWithin with a shared prefix and suffix equals the full dynamic programme (random strings)', () => {
  const naive = (a: string, b: string): number => {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
    for (let i = 1; i <= a.length; i++) {
      const cur = [i]
      for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
    return prev[b.length]!
  }
  let seed = 7
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  const word = (n: number): string => Array.from({ length: n }, () => 'abc '[rnd(4)]).join('')
  for (let i = 0; i < 400; i++) {
    const pre = word(rnd(12))
    const suf = word(rnd(12))
    const a = pre + word(rnd(10)) + suf
    const b = (rnd(3) === 0 ? pre.slice(1) : pre) + word(rnd(10)) + suf
    const d = naive(a, b)
    const k = rnd(8)
    const got = levenshteinWithin(a, b, k)
    if (d <= k) assert.equal(got, d, `${a} | ${b} k=${k}`)
    else assert.ok(got > k, `${a} | ${b} k=${k}: ${got}`)
    assert.equal(levenshteinWithin(a, b, Math.max(a.length, b.length)), d)
  }
})
