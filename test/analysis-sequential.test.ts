import { test } from 'node:test'
import assert from 'node:assert/strict'
import normalRandom from '@stdlib/random-base-normal'
import binomialRandom from '@stdlib/random-base-binomial'
import {
  compareProportions, compareQuantiles, decide, sampleFromValues, proportionSampleSize, RunningMoments, sequentialMultiplier, sequentialPValue, welch,
  type Verdict
} from '../src/analysis/index.js'

// Seeded simulations, bounded in count: the false-positive rate of acting on the first look whose
// interval excludes 0, with 10 looks as the experiment fills.
const ALPHA = 0.05
const LOOKS = 10
// Monte Carlo margin: 3 binomial standard errors of a rate α over `runs` experiments.
const margin = (runs: number): number => 3 * Math.sqrt((ALPHA * (1 - ALPHA)) / runs)
const decisive = (v: Verdict): boolean => v.verdict === 'pass' || v.verdict === 'fail'

test('sequential multiplier and always-valid p-value are the same test', () => {
  for (const n of [10, 200, 5000, 1e6]) {
    const m = sequentialMultiplier(n)
    assert.ok(m > 1.96, 'always wider than the fixed-horizon z')
    assert.ok(Math.abs(sequentialPValue(m, n) - ALPHA) < 1e-9, `p at the boundary is alpha (n=${n})`)
  }
  assert.equal(sequentialMultiplier(0), Infinity)
  assert.equal(sequentialPValue(0, 100), 1)
  assert.throws(() => sequentialMultiplier(10, { alpha: 0 }), RangeError)
})

test('A/A means (Welch), 2,000 experiments x 10 looks: always-valid stays <= alpha, naive peeking exceeds it', () => {
  const runs = 2000
  const perLook = 50
  const draw = normalRandom.factory(100, 15, { seed: 20261203 })
  let seqFalse = 0
  let naiveFalse = 0
  for (let r = 0; r < runs; r++) {
    const c = new RunningMoments()
    const t = new RunningMoments()
    let seqHit = false
    let naiveHit = false
    for (let look = 0; look < LOOKS; look++) {
      for (let i = 0; i < perLook; i++) { c.add(draw()); t.add(draw()) }
      const w = welch(c, t).absolute
      if (decisive(decide(w, { kind: 'better', direction: 'higher' }, { tuningN: 2 * perLook * LOOKS }))) seqHit = true
      if (decisive(decide(w, { kind: 'better', direction: 'higher' }, { sequential: false }))) naiveHit = true
    }
    if (seqHit) seqFalse++
    if (naiveHit) naiveFalse++
  }
  const seqRate = seqFalse / runs
  const naiveRate = naiveFalse / runs
  assert.ok(seqRate <= ALPHA + margin(runs), `sequential false-positive rate ${seqRate}`)
  assert.ok(naiveRate > ALPHA + margin(runs), `naive peeking false-positive rate ${naiveRate} should exceed alpha`)
})

test('A/A proportions (Newcombe), 2,000 experiments x 10 looks: always-valid stays <= alpha, naive exceeds it', () => {
  const runs = 2000
  const perLook = 100
  const draw = binomialRandom.factory(perLook, 0.1, { seed: 17 })
  let seqFalse = 0
  let naiveFalse = 0
  for (let r = 0; r < runs; r++) {
    let xc = 0
    let xt = 0
    let seqHit = false
    let naiveHit = false
    for (let look = 1; look <= LOOKS; look++) {
      xc += draw()
      xt += draw()
      const cmp = compareProportions({ successes: xc, n: look * perLook }, { successes: xt, n: look * perLook })
      if (decisive(decide(cmp, { kind: 'better', direction: 'lower' }, { tuningN: 2 * perLook * LOOKS }))) seqHit = true
      if (decisive(decide(cmp, { kind: 'better', direction: 'lower' }, { sequential: false }))) naiveHit = true
    }
    if (seqHit) seqFalse++
    if (naiveHit) naiveFalse++
  }
  assert.ok(seqFalse / runs <= ALPHA + margin(runs), `sequential false-positive rate ${seqFalse / runs}`)
  assert.ok(naiveFalse / runs > ALPHA + margin(runs), `naive false-positive rate ${naiveFalse / runs}`)
})

test('A/B proportions with a true effect of 2 x minEffect: detected in >= 80% within the minEffect sample size', () => {
  const runs = 500
  const minEffect = 0.02
  const nPerArm = proportionSampleSize(0.10, minEffect)
  const perLook = Math.ceil(nPerArm / LOOKS)
  const drawC = binomialRandom.factory(perLook, 0.10, { seed: 5 })
  const drawT = binomialRandom.factory(perLook, 0.10 + 2 * minEffect, { seed: 6 })
  let detected = 0
  let wrongWay = 0
  for (let r = 0; r < runs; r++) {
    let xc = 0
    let xt = 0
    for (let look = 1; look <= LOOKS; look++) {
      xc += drawC()
      xt += drawT()
      const cmp = compareProportions({ successes: xc, n: look * perLook }, { successes: xt, n: look * perLook })
      const v = decide(cmp, { kind: 'better', direction: 'higher' }, { tuningN: 2 * perLook * LOOKS })
      if (v.verdict === 'pass') { detected++; break }
      if (v.verdict === 'fail') { wrongWay++; break }
    }
  }
  assert.ok(detected / runs >= 0.8, `power ${detected / runs}`)
  assert.equal(wrongWay, 0)
})

test('A/A latency p99 ratio (bootstrap se + always-valid multiplier), 200 experiments x 10 looks: stays <= alpha', () => {
  const runs = 200
  const perLook = 150
  const draw = normalRandom.factory(0, 0.5, { seed: 4242 })
  let falsePositives = 0
  for (let r = 0; r < runs; r++) {
    const c: number[] = []
    const t: number[] = []
    for (let look = 1; look <= LOOKS; look++) {
      for (let i = 0; i < perLook; i++) { c.push(20 * Math.exp(draw())); t.push(20 * Math.exp(draw())) }
      const cmp = compareQuantiles(sampleFromValues(c), sampleFromValues(t), 0.99, { resamples: 400, seed: r + 1 })
      if (decisive(decide(cmp, { kind: 'better', direction: 'lower' }, { tuningN: 2 * perLook * LOOKS }))) { falsePositives++; break }
    }
  }
  assert.ok(falsePositives / runs <= ALPHA + margin(runs), `latency false-positive rate ${falsePositives / runs}`)
})
