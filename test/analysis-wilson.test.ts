import { test } from 'node:test'
import assert from 'node:assert/strict'
import { wilson, Z_95 } from '../src/analysis/wilson.js'

const near = (actual: number, expected: number, eps = 1e-12): void => {
  assert.ok(Math.abs(actual - expected) <= eps, `${actual} != ${expected}`)
}

// Reference values, computed independently in Python (double precision) from
//   p = s/n; d = 1 + z²/n; c = (p + z²/2n)/d; h = z/d · sqrt(p(1-p)/n + z²/4n²)
// with z = 1.959963984540054:
//   0/10   → [0, 0.2775327998628892]        (upper = z²/(n+z²))
//   5/10   → [0.236593090512564, 0.7634069094874361]
//   10/10  → [0.7224672001371107, 1]        (lower = n/(n+z²))
//   81/263 → [0.2552885198782742, 0.36620957698280004]  (Newcombe 1998, Table I: 0.2553–0.3662)
//   1/1000 → [0.00017654637062607852, 0.0056425585979579355]
test('wilson: known values', () => {
  const cases: Array<[number, number, number, number]> = [
    [0, 10, 0, 0.2775327998628892],
    [5, 10, 0.236593090512564, 0.7634069094874361],
    [10, 10, 0.7224672001371107, 1],
    [81, 263, 0.2552885198782742, 0.36620957698280004],
    [1, 1000, 0.00017654637062607852, 0.0056425585979579355]
  ]
  for (const [s, n, lo, hi] of cases) {
    const r = wilson(s, n)
    near(r.rate, s / n)
    near(r.lower, lo)
    near(r.upper, hi)
  }
  assert.equal(wilson(0, 10).lower, 0)
  assert.equal(wilson(10, 10).upper, 1)
})

test('wilson: n = 0 is total ignorance; z is configurable; bad input throws', () => {
  assert.deepEqual(wilson(0, 0), { rate: 0, lower: 0, upper: 1 })
  assert.equal(Z_95, 1.959963984540054)
  // z = 1 for 5/10: c = 0.5, h = (1/1.1)·sqrt(0.025 + 0.0025) = 0.150755…
  near(wilson(5, 10, 1).upper, 0.5 + Math.sqrt(0.0275) / 1.1)
  assert.ok(wilson(5, 10, 2.576).upper > wilson(5, 10).upper, 'a wider z gives a wider interval')
  assert.throws(() => wilson(3, 2), RangeError)
  assert.throws(() => wilson(-1, 2), RangeError)
  assert.throws(() => wilson(1, Number.NaN), RangeError)
  assert.throws(() => wilson(1, 2, 0), RangeError)
})
