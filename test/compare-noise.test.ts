import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Comparator } from '../src/compare/comparator.js'
import { EARLY_MIN_DIFFS, NoiseTracker } from '../src/compare/noise.js'
import { compareSchema } from '../src/config/schema.js'
import type { CompareResult } from '../src/compare/types.js'
import { captured, makeJob } from './fixtures/compare.js'

/** A model answer with a per-call timestamp and UUID, like many serving wrappers add. */
function answer (label: string): object {
  return { predictions: [{ label, request_id: randomUUID() }], served_at: new Date(Date.now() + Math.random() * 1e6).toISOString() }
}

test('a field that changes on every call becomes noisy after 3 noise samples and stops making mismatches', () => {
  const cfg = compareSchema.parse({ noise: { enabled: true, minSamples: 200 } })
  const cmp = new Comparator(cfg)
  const noise = new NoiseTracker(cfg.noise)
  const isNoisy = (p: string): boolean => noise.isNoisy(p, 'candidate')
  const compare = (p: object, s: object): CompareResult =>
    cmp.compare(makeJob({ url: '/v1/models/m:predict', primary: captured(p), shadow: captured(s) }), isNoisy)

  // Before any baseline: the timestamp and the UUID make a mismatch.
  assert.equal(compare(answer('cat'), answer('cat')).outcome, 'mismatch')

  for (let i = 0; i < EARLY_MIN_DIFFS; i++) {
    const r = cmp.compare(makeJob({ url: '/v1/models/m:predict', primary: captured(answer('cat')), shadow: captured(answer('cat')) }))
    noise.recordNoise(r.differences)
    // Still learning: before the third sample nothing is noisy.
    assert.equal(noise.isNoisy('/served_at'), i + 1 >= EARLY_MIN_DIFFS)
  }
  assert.equal(noise.isNoisy('/predictions/*/request_id'), true)

  const same = compare(answer('cat'), answer('cat'))
  assert.equal(same.outcome, 'match')
  assert.deepEqual(same.noisy?.map((d) => d.path).sort(), ['/predictions/0/request_id', '/served_at'])
  noise.recordShadow('candidate', [...same.differences, ...(same.noisy ?? [])])

  // A genuinely different label never differed between two primary calls: it is never noise.
  const flip = compare(answer('cat'), answer('dog'))
  assert.equal(flip.outcome, 'mismatch')
  assert.deepEqual(flip.differences.map((d) => d.path), ['/predictions/0/label'])
  assert.equal(flip.instances.disagreements, 1)
  noise.recordShadow('candidate', [...flip.differences, ...(flip.noisy ?? [])])
  assert.equal(noise.isNoisy('/predictions/*/label', 'candidate'), false)
})

test('early rule needs >= 3 differing samples and a >= 50 % rate', () => {
  const t = new NoiseTracker({ minSamples: 100, margin: 0.05 })
  t.recordNoise(['/a'])
  t.recordNoise(['/a'])
  assert.equal(t.isNoisy('/a'), false, '2 samples are not enough')
  t.recordNoise(['/a'])
  assert.equal(t.isNoisy('/a'), true)
  // 3 of 7 is below 50 %: no longer early-noisy, and 7 < minSamples.
  for (let i = 0; i < 4; i++) t.recordNoise([])
  assert.equal(t.isNoisy('/a'), false)
  // Paths are counted once per request and normalised.
  const u = new NoiseTracker({ minSamples: 100, margin: 0.05 })
  for (let i = 0; i < 3; i++) u.recordNoise(['/p/0/id', '/p/1/id', { path: '/p/2/id', kind: 'value' }])
  assert.equal(u.snapshot().paths[0]?.noiseDiffs, 3)
  assert.equal(u.isNoisy('/p/*/id'), true)
})

test('statistical rule after minSamples: shadow rate <= noise rate + margin (inclusive)', () => {
  const t = new NoiseTracker({ minSamples: 20, margin: 0.05 })
  // /rare differs in 2 of 20 noise samples: 10 %.
  for (let i = 0; i < 20; i++) t.recordNoise(i < 2 ? ['/rare'] : [])
  assert.equal(t.snapshot().warm, true)
  // Shadow A differs on /rare in 3 of 20 (15 % = 10 % + margin exactly): noise.
  for (let i = 0; i < 20; i++) t.recordShadow('a', i < 3 ? ['/rare'] : [])
  // Shadow B differs in 4 of 20 (20 % > 15 %): signal.
  for (let i = 0; i < 20; i++) t.recordShadow('b', i < 4 ? ['/rare'] : [])
  assert.equal(t.isNoisy('/rare', 'a'), true)
  assert.equal(t.isNoisy('/rare', 'b'), false)
  // Without a shadow, noisy only if noisy for every shadow.
  assert.equal(t.isNoisy('/rare'), false)
  assert.equal(t.isNoisy('/never'), false)
  // A shadow with no samples yet does not veto.
  assert.equal(t.isNoisy('/rare', 'c'), true)
})

test('margin also guards the early phase: half-noisy on the primary but always different on the shadow is signal', () => {
  const t = new NoiseTracker({ minSamples: 1000, margin: 0.05 })
  for (let i = 0; i < 6; i++) t.recordNoise(i % 2 === 0 ? ['/x'] : [])
  assert.equal(t.isNoisy('/x'), true)
  for (let i = 0; i < 10; i++) t.recordShadow('s', ['/x'])
  assert.equal(t.isNoisy('/x', 's'), false)
})

test('snapshot shape for GET /noise and the bound on tracked paths', () => {
  const t = new NoiseTracker({ minSamples: 2, margin: 0.05 }, { maxPaths: 3 })
  t.recordNoise(['/a', '/b', '/c', '/d', '/e'])
  t.recordNoise(['/a'])
  t.recordShadow('s1', ['/a'])
  const snap = t.snapshot()
  assert.equal(snap.samples, 2)
  assert.deepEqual(snap.shadowSamples, { s1: 1 })
  assert.deepEqual(snap.paths.map((p) => p.path), ['/a', '/b', '/c', 'other'])
  assert.deepEqual(snap.paths[0], { path: '/a', noiseRate: 1, noiseDiffs: 2, shadowRates: { s1: 1 }, noisy: true, noisyFor: ['s1'] })
  assert.equal(snap.paths[3]?.noiseDiffs, 2, '/d and /e pooled')
  assert.equal(t.isNoisy('/d'), false, 'pooled paths are never noisy')
  assert.doesNotThrow(() => JSON.stringify(snap))
  t.reset()
  assert.equal(t.snapshot().samples, 0)
})

test('constructor validates its settings', () => {
  assert.throws(() => new NoiseTracker({ minSamples: 0, margin: 0.05 }), RangeError)
  assert.throws(() => new NoiseTracker({ minSamples: 1, margin: 2 }), RangeError)
})
