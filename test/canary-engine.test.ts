// Issue #18: the pure decision engine (no I/O, no timers) and the canary config's validation.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { canarySchema } from '../src/config/canary-schema.js'
import { validateConfig, ConfigError } from '../src/config/load.js'
import {
  analyse, diffTotals, emptyTotals, paused, resumed, startState, describePhase, IDLE,
  type ArmTotals, type CanaryState, type CanaryTotals
} from '../src/rollout/canary-engine.js'
import { LatencyHistogram } from '../src/stats/latency-histogram.js'
import { CanaryRoute, newArms } from '../src/rollout/canary-route.js'
import type { Backend } from '../src/upstream/backend.js'
import type { IncomingMessage } from 'node:http'
import { runCli, tempDir, writeFile } from './helpers/proxy-util.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLogger } from '../src/log/logger.js'
import { Metrics } from '../src/metrics/metrics.js'
import { CanaryController } from '../src/rollout/canary-controller.js'

const BOUNDS = LatencyHistogram.upperBounds()

/** An arm of n requests, `errors` of them failed, the rest at `ms` (+ a small deterministic spread). */
function arm (n: number, errors: number, ms = 10): ArmTotals {
  const h = new LatencyHistogram()
  for (let i = 0; i < n - errors; i++) h.observe(ms * (1 + (i % 10) / 100))
  return { requests: n, errors, latency: { bounds: BOUNDS, counts: h.toJSON() } }
}

function totals (o: { cand?: ArmTotals, base?: ArmTotals, mirror?: ArmTotals, compared?: number, mismatches?: number, accuracy?: CanaryTotals['accuracy'] } = {}): CanaryTotals {
  const e = emptyTotals(BOUNDS)
  return {
    candidate: o.cand ?? e.candidate,
    baseline: o.base ?? e.baseline,
    baselineMirror: o.mirror ?? e.baselineMirror,
    comparisons: { compared: o.compared ?? 0, mismatches: o.mismatches ?? 0 },
    accuracy: o.accuracy ?? null
  }
}

const cfg = (o: Record<string, unknown> = {}): ReturnType<typeof canarySchema.parse> => canarySchema.parse({
  candidate: 'cand',
  steps: [10, 50, 100],
  minRequests: 200,
  gates: { errorRate: { maxIncrease: 0.01 }, latency: { p99Ratio: 1.2, p50Ratio: 1.1 }, disagreement: { max: 0.05 } },
  ...o
})

test('all gates pass → next step; at the last step → promote (or complete with onSuccess: hold)', () => {
  const c = cfg()
  const healthy = totals({ cand: arm(3000, 0), base: arm(9000, 0), mirror: arm(3000, 0), compared: 2000, mismatches: 0 })
  const s0 = startState(c)
  assert.deepEqual([s0.phase, s0.step, s0.weight], ['step', 0, 0.1])
  const d1 = analyse(c, s0, healthy)
  assert.equal(d1.action, 'advance', d1.gates.map((g) => g.text).join('\n'))
  assert.deepEqual([d1.to.step, d1.to.weight], [1, 0.5])
  assert.equal(d1.gates.length, 4)
  assert.ok(d1.gates.every((g) => g.result === 'pass'))
  assert.match(d1.summary, /now step 2 of 3 \(50%\)/)
  // At 100% the baseline arm is the mirrored copies (no client is left on it).
  const last: CanaryState = { ...s0, step: 2, weight: 1 }
  const d3 = analyse(c, last, totals({ cand: arm(3000, 0), mirror: arm(3000, 0), compared: 1000 }))
  assert.equal(d3.action, 'promote')
  assert.equal(d3.to.phase, 'promoted')
  const held = analyse(cfg({ onSuccess: 'hold' }), last, totals({ cand: arm(3000, 0), mirror: arm(3000, 0), compared: 1000 }))
  assert.equal(held.action, 'complete')
  assert.equal(held.to.phase, 'completed')
  assert.equal(held.to.weight, 1)
})

test('a gate fails when the bad side is established: rollback to weight 0, explained in words', () => {
  const c = cfg({ gates: { errorRate: { maxIncrease: 0.01 } } })
  // The always-valid interval (every interval may decide) is wider than a one-look 95% CI: 4.1% vs
  // 0.9% on ~800 requests each is not yet established against 1%, on ~1600 each it is.
  assert.equal(analyse(c, startState(c), totals({ cand: arm(812, 33), base: arm(790, 7) })).action, 'hold')
  const d = analyse(c, startState(c), totals({ cand: arm(1624, 66), base: arm(1580, 14) }))
  assert.equal(d.action, 'rollback')
  assert.equal(d.to.phase, 'rolled_back')
  assert.equal(d.to.weight, 0)
  const g = d.gates[0]!
  assert.equal(g.result, 'fail')
  assert.match(g.text, /^errorRate: fail — candidate 4\.06% vs baseline 0\.89% \(difference 3\.18%, 95% always-valid CI \[\d\.\d+%, \d\.\d+%\], n = 1624\/1580\), above maxIncrease 1%$/)
  assert.ok(g.interval!.lower > 0.01)
  assert.deepEqual(g.n, { candidate: 1624, baseline: 1580 })
  assert.equal(g.threshold, 0.01)
  assert.equal(g.test, 'newcombe-diff')
  assert.match(d.to.reason!, /step 1 of 3: errorRate failed/)
})

test('below minRequests every gate is inconclusive: no data never passes and never fails', () => {
  const c = cfg({ gates: { errorRate: { maxIncrease: 0.01 }, latency: { p99Ratio: 1.2 }, disagreement: { max: 0.05 }, accuracy: { maxDrop: 0.02 } } })
  // Even 100% errors on 199 requests does not fail: below the minimum nothing is decided.
  for (const t of [totals(), totals({ cand: arm(199, 199), base: arm(199, 0), compared: 199, mismatches: 199 })]) {
    const d = analyse(c, startState(c), t)
    assert.equal(d.action, 'hold')
    assert.ok(d.gates.every((g) => g.result === 'inconclusive'), d.gates.map((g) => g.text).join('\n'))
  }
  const d = analyse(c, startState(c), totals())
  assert.match(d.gates[0]!.text, /^errorRate: inconclusive — n = 0\/0 \(candidate\/baseline\), below minRequests 200 per arm \(no data never passes\)$/)
  assert.match(d.gates.find((g) => g.gate === 'accuracy')!.text, /^accuracy: inconclusive — no ground truth yet/)
})

test('inconclusive holds the step; after maxHolds: rollback (onMaxHolds: fail) or pause (keeps the weight)', () => {
  const c = cfg({ maxHolds: 3 })
  let s = startState(c)
  const actions: string[] = []
  for (let i = 0; i < 3; i++) {
    const d = analyse(c, s, totals())
    actions.push(d.action)
    s = d.to
  }
  assert.deepEqual(actions, ['hold', 'hold', 'rollback'])
  assert.match(s.reason!, /inconclusive 3 times \(maxHolds 3\)/)
  const p = cfg({ maxHolds: 1, onMaxHolds: 'pause' })
  const d = analyse(p, startState(p), totals())
  assert.equal(d.action, 'pause')
  assert.equal(d.to.phase, 'paused')
  assert.equal(d.to.weight, 0.1)
  const back = resumed(d.to)
  assert.deepEqual([back.phase, back.step, back.holds], ['step', 0, 0])
})

test('the interval decides, not the rate: a small excess with few requests holds, the same excess with many fails', () => {
  const c = cfg({ gates: { errorRate: { maxIncrease: 0.01 } }, maxHolds: 100 })
  // 3% vs 0% on 300 each: the interval still reaches below 1%.
  assert.equal(analyse(c, startState(c), totals({ cand: arm(300, 9), base: arm(300, 0) })).gates[0]!.result, 'inconclusive')
  assert.equal(analyse(c, startState(c), totals({ cand: arm(6000, 180), base: arm(6000, 0) })).gates[0]!.result, 'fail')
})

test('latency: a 2x p99 fails; equal distributions pass; the ratio, interval and n are in the text', () => {
  const c = cfg({ gates: { latency: { p99Ratio: 1.2 } } })
  const slow = analyse(c, startState(c), totals({ cand: arm(500, 0, 20), base: arm(2000, 0, 10) }))
  assert.equal(slow.action, 'rollback')
  assert.match(slow.gates[0]!.text, /^latency\.p99: fail — candidate p99 [\d.]+ ms vs baseline p99 [\d.]+ ms \(ratio (1\.9\d|2(\.\d+)?), 95% always-valid CI \[[\d.]+, [\d.]+\], n = 500\/2000\), above p99Ratio 1\.2$/)
  const same = analyse(c, startState(c), totals({ cand: arm(500, 0, 10), base: arm(2000, 0, 10) }))
  assert.equal(same.gates[0]!.result, 'pass', same.gates[0]!.text)
})

test('disagreement: Wilson at the always-valid multiplier; the shadow phase needs minComparisons, then goes to step 1', () => {
  const c = cfg({ shadowFirst: { sampleRate: 1, minComparisons: 500 } })
  const s = startState(c)
  assert.deepEqual([s.phase, s.weight, describePhase(c, s)], ['shadow', 0, 'shadow'])
  assert.equal(analyse(c, s, totals({ compared: 499, mismatches: 0 })).action, 'hold')
  const bad = analyse(c, s, totals({ compared: 500, mismatches: 100 }))
  assert.equal(bad.action, 'rollback')
  assert.match(bad.gates[0]!.text, /^disagreement: fail — 20% of 500 compared predictions differ \(100 of 500, 95% always-valid CI \[[\d.]+%, [\d.]+%\]\), above max 5%$/)
  const good = analyse(c, s, totals({ compared: 600, mismatches: 3 }))
  assert.equal(good.action, 'advance')
  assert.deepEqual([good.to.phase, good.to.step, good.to.weight], ['step', 0, 0.1])
})

test('accuracy from a ground-truth source: a drop beyond maxDrop fails, no drop passes', () => {
  const c = cfg({ gates: { accuracy: { maxDrop: 0.02 } } })
  const drop = analyse(c, startState(c), totals({ accuracy: { candidate: { labelled: 3000, correct: 2550 }, baseline: { labelled: 3000, correct: 2850 } } }))
  assert.equal(drop.gates[0]!.result, 'fail', drop.gates[0]!.text)
  assert.match(drop.gates[0]!.text, /^accuracy: fail — candidate 85% vs baseline 95% \(difference -10%/)
  const same = analyse(c, startState(c), totals({ accuracy: { candidate: { labelled: 3000, correct: 2850 }, baseline: { labelled: 3000, correct: 2850 } } }))
  assert.equal(same.gates[0]!.result, 'pass', same.gates[0]!.text)
})

test('a state that is not running is not analysed; pause/resume; diffTotals subtracts the mark', () => {
  const c = cfg()
  assert.equal(analyse(c, IDLE, totals({ cand: arm(5000, 5000), base: arm(5000, 0) })).action, 'hold')
  const p = paused(startState(c), 'by hand')
  assert.equal(analyse(c, p, totals()).gates.length, 0)
  const now = totals({ cand: arm(300, 10), base: arm(900, 3), compared: 50, mismatches: 5 })
  const mark = totals({ cand: arm(100, 4), base: arm(400, 1), compared: 20, mismatches: 1 })
  const d = diffTotals(now, mark)
  assert.deepEqual([d.candidate.requests, d.candidate.errors, d.baseline.requests, d.comparisons.compared, d.comparisons.mismatches], [200, 6, 500, 30, 4])
  assert.equal(d.candidate.latency.counts.reduce((a, b) => a + b, 0), 290 - 96)
})

test('sticky units: a unit on the candidate at weight w stays there at every larger weight (range-stable hash)', () => {
  const b = (name: string): Backend => ({ name }) as unknown as Backend
  const route = (w: number): CanaryRoute => new CanaryRoute({ name: 'cand', weight: w, unit: { kind: 'header', name: 'x-user' }, match: { methods: ['POST'], paths: ['/**'] }, candidate: b('cand'), baseline: b('base'), arms: newArms(), mirrors: [] })
  const req = (u: string): IncomingMessage => ({ headers: { 'x-user': u } }) as unknown as IncomingMessage
  let before = new Set<string>()
  for (const w of [0.01, 0.05, 0.25, 0.5, 0.75, 1]) {
    const r = route(w)
    const now = new Set<string>()
    for (let i = 0; i < 2000; i++) if (r.pick(req(`u${i}`), 'POST', '/p')!.backend.name === 'cand') now.add(`u${i}`)
    for (const u of before) assert.ok(now.has(u), `${u} flipped back at ${w}`)
    assert.ok(Math.abs(now.size / 2000 - w) < 0.03, `share ${now.size / 2000} at ${w}`)
    before = now
  }
  assert.equal(route(0.5).pick(req('u1'), 'GET', '/p'), null, 'not the canary\'s request')
  assert.equal(route(0.5).pick({ headers: {} } as unknown as IncomingMessage, 'POST', '/p')!.backend.name, 'base', 'no unit: the baseline')
})

const BASE = { backends: { base: { url: 'http://127.0.0.1:9' }, cand: { url: 'http://127.0.0.1:10' } }, primary: 'base' }
function problems (canary: Record<string, unknown>, extra: Record<string, unknown> = {}): string[] {
  try {
    validateConfig({ ...BASE, ...extra, canary })
    return []
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    return err.problems
  }
}

test('bad config names the key: unknown backend, candidate = baseline, steps not increasing or past 100, impossible gates', () => {
  assert.deepEqual(problems({ candidate: 'cand' }), [])
  assert.match(problems({ candidate: 'nope' }).join('\n'), /^canary\.candidate: names no backend \("nope"; defined: base, cand\)$/m)
  assert.match(problems({ candidate: 'cand', baseline: 'gone' }).join('\n'), /^canary\.baseline: names no backend/m)
  assert.match(problems({ candidate: 'base' }).join('\n'), /^canary\.candidate: the candidate and the baseline are both "base"/m)
  assert.match(problems({ candidate: 'cand', baseline: 'cand' }).join('\n'), /^canary\.baseline: the candidate and the baseline are both "cand"/m)
  assert.match(problems({ candidate: 'cand', steps: [5, 5, 50] }).join('\n'), /^canary\.steps\[1\]: must be above the previous step \(5\): steps must strictly increase$/m)
  assert.match(problems({ candidate: 'cand', steps: [50, 20] }).join('\n'), /^canary\.steps\[1\]: must be above the previous step/m)
  assert.match(problems({ candidate: 'cand', steps: [50, 120] }).join('\n'), /^canary\.steps\[1\]: must be within \(0, 100\]$/m)
  assert.match(problems({ candidate: 'cand', steps: [] }).join('\n'), /^canary\.steps: needs at least one step$/m)
  assert.match(problems({ candidate: 'cand', gates: { errorRate: { maxIncrease: 1.5 } } }).join('\n'), /^canary\.gates\.errorRate\.maxIncrease: must be within \[0, 1\)$/m)
  assert.match(problems({ candidate: 'cand', gates: { errorRate: { maxIncrease: -0.1 } } }).join('\n'), /^canary\.gates\.errorRate\.maxIncrease: must be within \[0, 1\)$/m)
  assert.match(problems({ candidate: 'cand', gates: { latency: { p99Ratio: 0.8 } } }).join('\n'), /^canary\.gates\.latency\.p99Ratio: must be >= 1/m)
  assert.match(problems({ candidate: 'cand', gates: { latency: {} } }).join('\n'), /^canary\.gates\.latency: give p99Ratio and\/or p50Ratio$/m)
  assert.match(problems({ candidate: 'cand', gates: { disagreement: { max: 0 } } }).join('\n'), /^canary\.gates\.disagreement\.max: must be within \(0, 1\)/m)
  assert.match(problems({ candidate: 'cand', gates: {} }).join('\n'), /^canary\.gates: needs at least one gate/m)
  assert.match(problems({ candidate: 'cand', gates: { errorRat: { maxIncrease: 0.01 } } }).join('\n'), /^canary\.gates\.errorRat: unknown key \(did you mean `errorRate`\?\)$/m)
  assert.match(problems({ candidate: 'cand', minRequests: 0 }).join('\n'), /^canary\.minRequests: must be >= 1$/m)
  assert.deepEqual(problems({ candidate: 'cand' }, { workers: 2 }), [], 'with --workers the controller runs in the cluster primary')
})

test('the CLI exits 2 naming the key before listening', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t)
  const file = writeFile(dir, 'bad.yaml', 'backends:\n  base: { url: "http://127.0.0.1:9" }\n  cand: { url: "http://127.0.0.1:10" }\nprimary: base\ncanary:\n  candidate: cand\n  steps: [10, 5, 200]\n')
  const r = await runCli(['--config', file, '--check'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /canary\.steps\[1\]: must be above the previous step \(10\)/)
  assert.match(r.stderr, /canary\.steps\[2\]: must be within \(0, 100\]/)
  const same = writeFile(dir, 'same.yaml', 'backends:\n  base: { url: "http://127.0.0.1:9" }\nprimary: base\ncanary:\n  candidate: base\n')
  const s = await runCli(['--config', same, '--check'])
  assert.equal(s.code, 2)
  assert.match(s.stderr, /canary\.candidate: the candidate and the baseline are both "base"/)
})

test('the controller logs each decision as one JSON line with every gate in words, and counts it', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'log.jsonl')
  const log = createLogger({ level: 'info', sync: true, destination: file })
  const c = cfg({ steps: [50, 100], minRequests: 10, gates: { errorRate: { maxIncrease: 0.05 } } })
  let now = totals()
  const applied: number[] = []
  const io = { totals: async () => now, apply: async (s: CanaryState) => { applied.push(s.weight) }, promote: async () => {} }
  const metrics = new Metrics({ version: 'test', defaultMetrics: false })
  const ctl = new CanaryController(c, io, { log, metrics })
  t.after(() => ctl.close())
  await ctl.start('test')
  now = totals({ cand: arm(100, 50), base: arm(100, 0) })
  await ctl.tick()
  assert.equal(ctl.state.phase, 'rolled_back')
  assert.deepEqual(applied, [0.5, 0], 'weight 0 at once')
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string, canary: string, decision: { action: string, from: string, to: string, gates: Array<{ gate: string, result: string, text: string }> } })
  assert.equal(lines.length, 2)
  assert.equal(lines[1]!.decision.action, 'rollback')
  assert.equal(lines[1]!.canary, 'cand')
  assert.deepEqual([lines[1]!.decision.from, lines[1]!.decision.to], ['step 1 of 2', 'rolled_back'])
  assert.match(lines[1]!.decision.gates[0]!.text, /^errorRate: fail — candidate 50% vs baseline 0%/)
  assert.match(lines[1]!.msg, /^canary: rollback: step 1 of 2: errorRate failed/)
  const text = await metrics.registry.metrics()
  assert.match(text, /penumbra_canary_decisions_total\{canary="cand",gate="errorRate",result="fail"\} 1/)
  assert.match(text, /penumbra_canary_decisions_total\{canary="cand",gate="decision",result="rollback"\} 1/)
  assert.match(text, /penumbra_canary_weight\{canary="cand"\} 0/)
  await assert.rejects(ctl.start('test'), /rolled back: POST \/canary\/retry reruns it/)
  await ctl.retry('test')
  assert.deepEqual([ctl.state.phase, ctl.state.step, ctl.state.weight], ['step', 0, 0.5])
})

test('penumbra canary: bad arguments exit 2, an unreachable replica exits 1 naming it', { timeout: 30_000 }, async () => {
  const none = await runCli(['canary'])
  assert.equal(none.code, 2)
  assert.match(none.stderr, /give --prometheus URL and --admin URL/)
  const bad = await runCli(['canary', '--prometheus', 'nope', '--admin', 'http://127.0.0.1:9'])
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /not a URL: nope/)
  const down = await runCli(['canary', '--prometheus', 'http://127.0.0.1:9', '--admin', 'http://127.0.0.1:9'])
  assert.equal(down.code, 1)
  assert.match(down.stderr, /penumbra canary: .*127\.0\.0\.1:9/)
})
