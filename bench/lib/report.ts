// Report model, target evaluation and markdown rendering. Targets are evaluated and reported,
// never asserted: the bench exits 0 on a MISS, because timings on a shared 2-core box are evidence,
// not a test oracle.
import type { LoadResult } from './load.js'
import { BIG_RESPONSE_KB } from './scenarios.js'

export interface ScenarioResult {
  id: string
  title: string
  body: 'small' | '1mb' | 'bigresp'
  status: 'ok' | 'skipped' | 'failed'
  note?: string
  rounds: LoadResult[]
  /** Extra runs of this scenario placed next to the scenarios anchored to it (ratio partners only). */
  anchors?: LoadResult[]
  median: LoadResult | null
  /** Peak memory of the proxy process (tree) under test; null for direct. */
  rss: { sampledPeakBytes: number, hwmBytes: number } | null
  /** Counters scraped from penumbra's admin /metrics after the last round (warm-up included). */
  shadowStats: Record<string, number> | null
  /** Blue/green scenarios: primary switches done and failed over all measured runs. */
  switches?: { switches: number, failures: number, lastError: string | null }
}

export interface Machine {
  cpu: string
  cores: number
  node: string
  os: string
  memGb: number
  penumbra: string
  commit: string
  autocannon: string
  nginx: string | null
}

export interface CompareBench { medianUs: number, p99Us: number, iterations: number }

export interface TargetResult { text: string, status: 'PASS' | 'MISS' | 'N/A', detail: string, informational?: boolean }

export interface BenchReport {
  generatedAt: string
  mode: 'full' | 'quick' | 'custom'
  command: string
  machine: Machine
  options: { connections: number, durationS: number, warmupS: number, rewarmS?: number, rounds: number, modelDelayMs: number, requestBytes: number, largeRequestBytes: number }
  scenarios: ScenarioResult[]
  compareBench: CompareBench | { skipped: string }
  targets: TargetResult[]
  notes: string[]
  wallClockS: number
}

/** Median of each metric independently (robust against one noisy round). */
export function medianOf (rounds: LoadResult[]): LoadResult | null {
  if (rounds.length === 0) return null
  const med = (f: (r: LoadResult) => number): number => {
    const v = rounds.map(f).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
    if (v.length === 0) return Number.NaN
    const m = Math.floor(v.length / 2)
    return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2
  }
  return {
    rps: med((r) => r.rps),
    p50Ms: med((r) => r.p50Ms),
    p99Ms: med((r) => r.p99Ms),
    avgMs: med((r) => r.avgMs),
    maxMs: med((r) => r.maxMs),
    p50Us: med((r) => r.p50Us),
    p99Us: med((r) => r.p99Us),
    total: med((r) => r.total),
    errors: med((r) => r.errors),
    timeouts: med((r) => r.timeouts),
    non2xx: med((r) => r.non2xx),
    durationS: med((r) => r.durationS),
    cpuUsPerReq: med((r) => r.cpuUsPerReq),
    gcUsPerReq: med((r) => r.gcUsPerReq),
    foreignCpuPct: med((r) => r.foreignCpuPct),
    startedAt: Number.NaN
  }
}

const MB = 1024 * 1024
const peakRss = (s: ScenarioResult): number | null => s.rss === null ? null : Math.max(s.rss.sampledPeakBytes, s.rss.hwmBytes)

function fmtInt (n: number): string { return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—' }
function fmt (n: number, d: number): string { return Number.isFinite(n) ? n.toFixed(d) : '—' }
function ratio (a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '—' : `${(a / b).toFixed(2)}×`
}

/** A ratio of scenario a to b over the rounds: median and range of the per-round ratios. */
export interface PairedRatio { median: number, lo: number, hi: number, rounds: number }

/**
 * Paired ratio: each run of a over the run of b nearest to it in time (for a scenario with an
 * `anchor`, the anchor run right next to it), then the median over a's runs. This VM's speed
 * drifts by up to 2x within a minute, so both sides of a ratio must see the same phase; a ratio
 * of medians taken over different rounds mixes phases. Results without start times (older JSON)
 * pair by round index, and failing that (a scenario that failed mid-run) use the medians.
 */
export function pairedRatio (a: ScenarioResult, b: ScenarioResult, f: (r: LoadResult) => number): PairedRatio | null {
  if ((a.anchors?.length ?? 0) > 0 && (b.anchors?.length ?? 0) === 0) {
    // a is the baseline (passthrough over http-proxy): pair from b's side, where its anchor runs
    // sit. Each pair then gives (1/f(b)) / (1/f(a)) = f(a)/f(b), the ratio asked for.
    return pairedRatio(b, a, (x) => 1 / f(x))
  }
  const v: number[] = []
  const partners = [...b.rounds, ...(b.anchors ?? [])]
  const timed = partners.every((r) => typeof r.startedAt === 'number') && a.rounds.every((r) => typeof r.startedAt === 'number')
  if (timed && partners.length > 0) {
    // Each run of a against the run of b nearest in time (an anchor run right next to it, when
    // the scenario has one): both saw the same phase of this machine's drifting speed.
    for (const x of a.rounds) {
      let y = partners[0]!
      for (const c of partners) if (Math.abs(c.startedAt - x.startedAt) < Math.abs(y.startedAt - x.startedAt)) y = c
      const fx = f(x)
      const fy = f(y)
      if (Number.isFinite(fx) && Number.isFinite(fy) && fy > 0) v.push(fx / fy)
    }
  } else if (a.rounds.length === b.rounds.length) {
    for (let i = 0; i < a.rounds.length; i++) {
      const x = f(a.rounds[i]!)
      const y = f(b.rounds[i]!)
      if (Number.isFinite(x) && Number.isFinite(y) && y > 0) v.push(x / y)
    }
  } else if (a.median !== null && b.median !== null && f(b.median) > 0) {
    v.push(f(a.median) / f(b.median))
  }
  if (v.length === 0) return null
  v.sort((x, y) => x - y)
  const mid = Math.floor(v.length / 2)
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
  return { median, lo: v[0]!, hi: v[v.length - 1]!, rounds: v.length }
}

function fmtRatio (r: PairedRatio | null, range = true): string {
  if (r === null) return '—'
  return range && r.rounds > 1 ? `${r.median.toFixed(2)}× (rounds ${r.lo.toFixed(2)}–${r.hi.toFixed(2)})` : `${r.median.toFixed(2)}×`
}

export function evaluateTargets (scenarios: ScenarioResult[], compare: CompareBench | { skipped: string }): TargetResult[] {
  const m = (id: string): LoadResult | undefined => scenarios.find((s) => s.id === id && s.status === 'ok')?.median ?? undefined
  const sc = (id: string): ScenarioResult => scenarios.find((s) => s.id === id && s.status === 'ok')!
  /** Paired ratio of a metric, a over b (see {@link pairedRatio}); NaN when not computable. */
  const pr = (a: string, b: string, f: (r: LoadResult) => number): PairedRatio => pairedRatio(sc(a), sc(b), f) ?? { median: Number.NaN, lo: Number.NaN, hi: Number.NaN, rounds: 0 }
  const rps = (r: LoadResult): number => r.rps
  const p50 = (r: LoadResult): number => r.p50Us
  const p99 = (r: LoadResult): number => r.p99Us
  const out: TargetResult[] = []
  const na = (text: string, why: string, informational = false): void => { out.push({ text, status: 'N/A', detail: why, informational }) }
  const check = (text: string, ok: boolean, detail: string, informational = false): void => {
    out.push({ text, status: ok ? 'PASS' : 'MISS', detail, informational })
  }
  const missing = (...ids: string[]): string | null => {
    const gone = ids.filter((id) => m(id) === undefined)
    return gone.length === 0 ? null : `not measured: ${gone.join(', ')}`
  }
  const pt = m('passthrough')
  const us = (r: LoadResult, k: 'p50Us' | 'p99Us'): string => `${fmtInt(r[k])} µs`
  /** CPU per request of a vs b: the contention-robust view of a req/s ratio (inverse: lower is better). */
  const cpu = (a: LoadResult, b: LoadResult): string => Number.isFinite(a.cpuUsPerReq) && Number.isFinite(b.cpuUsPerReq)
    ? `; CPU/request ${fmtInt(a.cpuUsPerReq)} vs ${fmtInt(b.cpuUsPerReq)} µs (${ratio(b.cpuUsPerReq, a.cpuUsPerReq)} by CPU)`
    : ''
  /** A "a ≥ min× b req/s" target: paired ratio, both medians, and the CPU view. */
  const rpsAtLeast = (text: string, a: string, b: string, min: number, informational = false): void => {
    const why = missing(a, b)
    if (why !== null) { na(text, why, informational); return }
    const r = pr(a, b, rps)
    const x = m(a)!
    const y = m(b)!
    check(text, r.median >= min, `${fmtRatio(r)} (medians ${fmtInt(x.rps)} vs ${fmtInt(y.rps)} req/s)${cpu(x, y)}`, informational)
  }

  // 1. passthrough vs baselines
  rpsAtLeast('passthrough ≥ 1.3× http-proxy req/s', 'passthrough', 'http-proxy', 1.3)
  rpsAtLeast('passthrough ≥ 0.9× minimal undici proxy req/s', 'passthrough', 'undici-minimal', 0.9)
  let why = missing('passthrough', 'http-proxy', 'undici-minimal')
  if (why !== null) na('passthrough p99 no worse than http-proxy and undici-minimal', why)
  else {
    const hp = m('http-proxy')!
    const um = m('undici-minimal')!
    const rh = pr('passthrough', 'http-proxy', p99)
    const ru = pr('passthrough', 'undici-minimal', p99)
    check('passthrough p99 no worse than http-proxy and undici-minimal', rh.median <= 1 && ru.median <= 1,
      `p99 ratio to http-proxy ${fmtRatio(rh)}, to undici-minimal ${fmtRatio(ru)} (medians ${us(pt!, 'p99Us')} / ${us(hp, 'p99Us')} / ${us(um, 'p99Us')})`)
  }

  // 1b. the router (issue #14): passthrough pays nothing for routing, and switching costs nothing
  why = missing('passthrough', 'undici-minimal')
  const cpuText = 'passthrough through the router: proxy CPU µs/request ≤ 1.05× the minimal undici proxy\'s'
  if (why !== null) na(cpuText, why)
  else {
    const r = pr('passthrough', 'undici-minimal', (x) => x.cpuUsPerReq)
    const a = m('passthrough')!
    const b = m('undici-minimal')!
    check(cpuText, r.median <= 1.05, `${fmtRatio(r)} (medians ${fmtInt(a.cpuUsPerReq)} vs ${fmtInt(b.cpuUsPerReq)} µs/request)`)
  }
  why = missing('bluegreen-switching', 'passthrough')
  const bgText = 'blue/green switch every 100 ms: req/s ≥ 0.95× passthrough, zero errors'
  if (why !== null) na(bgText, why)
  else {
    const s = sc('bluegreen-switching')
    const r = pr('bluegreen-switching', 'passthrough', rps)
    const failed = s.rounds.reduce((n, x) => n + x.errors + x.timeouts + x.non2xx, 0)
    const sw = s.switches ?? { switches: 0, failures: 0, lastError: null }
    check(bgText, r.median >= 0.95 && failed === 0 && sw.switches > 0 && sw.failures === 0,
      `${fmtRatio(r)} (medians ${fmtInt(m('bluegreen-switching')!.rps)} vs ${fmtInt(pt!.rps)} req/s)${cpu(m('bluegreen-switching')!, pt!)}; ` +
      `${fmtInt(failed)} failed requests over ${s.rounds.length} run(s), ${fmtInt(sw.switches)} switches` + (sw.failures > 0 ? `, ${sw.failures} failed switches (last: ${sw.lastError ?? '?'})` : ''))
  }

  // 1c. an experiment on every request (issue #17): routing by hash costs nothing measurable
  why = missing('experiment', 'passthrough')
  const exText = 'an A/B experiment on every request: proxy CPU µs/request ≤ 1.05× passthrough'
  if (why !== null) na(exText, why)
  else {
    const r = pr('experiment', 'passthrough', (x) => x.cpuUsPerReq)
    check(exText, r.median <= 1.05, `${fmtRatio(r)} (medians ${fmtInt(m('experiment')!.cpuUsPerReq)} vs ${fmtInt(pt!.cpuUsPerReq)} µs/request); req/s ${fmtRatio(pr('experiment', 'passthrough', rps))}`)
  }

  // 2. 100 ms shadow
  why = missing('passthrough', 'shadow-100ms')
  if (why !== null) {
    na('100 ms shadow at 100%: p50 and p99 within 1.2× of passthrough', why)
    na('100 ms shadow at 100%: throughput ≥ 0.8× passthrough', why)
  } else {
    const s = m('shadow-100ms')!
    const r50 = pr('shadow-100ms', 'passthrough', p50)
    const r99 = pr('shadow-100ms', 'passthrough', p99)
    check('100 ms shadow at 100%: p50 and p99 within 1.2× of passthrough', r50.median <= 1.2 && r99.median <= 1.2,
      `p50 ${fmtRatio(r50)} (medians ${us(s, 'p50Us')} vs ${us(pt!, 'p50Us')}), p99 ${fmtRatio(r99)} (medians ${us(s, 'p99Us')} vs ${us(pt!, 'p99Us')})`)
    const r = pr('shadow-100ms', 'passthrough', rps)
    check('100 ms shadow at 100%: throughput ≥ 0.8× passthrough', r.median >= 0.8, `${fmtRatio(r)} (medians ${fmtInt(s.rps)} vs ${fmtInt(pt!.rps)} req/s)${cpu(s, pt!)}`)
  }

  // 3. hanging shadow
  why = missing('passthrough', 'shadow-hang')
  if (why !== null) {
    na('hanging shadow at 100%: p99 within 1.2× of passthrough', why)
    na('hanging shadow at 100%: RSS < 200 MB for the whole run', why)
  } else {
    const s = m('shadow-hang')!
    const r = pr('shadow-hang', 'passthrough', p99)
    check('hanging shadow at 100%: p99 within 1.2× of passthrough', r.median <= 1.2, `${fmtRatio(r)} (medians ${us(s, 'p99Us')} vs ${us(pt!, 'p99Us')})`)
    const rss = peakRss(scenarios.find((x) => x.id === 'shadow-hang')!)
    if (rss === null) na('hanging shadow at 100%: RSS < 200 MB for the whole run', 'RSS not sampled')
    else check('hanging shadow at 100%: RSS < 200 MB for the whole run', rss < 200 * MB, `peak ${fmt(rss / MB, 1)} MB (max of 200 ms VmRSS polls and VmHWM)`)
  }

  // 3b. teeing to a fast shadow (issue "teeing": comparisons are the next issue's, so off here)
  rpsAtLeast('tee 100% to one fast shadow (comparisons off) ≥ 0.6× passthrough req/s', 'tee-100', 'passthrough', 0.6)
  // 3c. the same targets on the minimal baseline, teeing against its own buffered form (the
  // like-for-like pair: both read small bodies whole, as penumbra does): what teeing costs on
  // node:http + undici on this machine, with nothing of penumbra's on top.
  rpsAtLeast('minimal undici tee 100% ≥ 0.6× minimal undici proxy (buffered) req/s (informational: the stack\'s floor)', 'undici-minimal-tee', 'undici-minimal-buffered', 0.6, true)
  why = missing('undici-minimal-tee-100ms', 'undici-minimal-buffered')
  const floor100 = 'minimal undici tee to the 100 ms shadow (cap 64): p50 and p99 within 1.2×, throughput ≥ 0.8× of minimal undici proxy (buffered) (informational: the stack\'s floor)'
  if (why !== null) na(floor100, why, true)
  else {
    const a = m('undici-minimal-tee-100ms')!
    const b = m('undici-minimal-buffered')!
    const r50 = pr('undici-minimal-tee-100ms', 'undici-minimal-buffered', p50)
    const r99 = pr('undici-minimal-tee-100ms', 'undici-minimal-buffered', p99)
    const r = pr('undici-minimal-tee-100ms', 'undici-minimal-buffered', rps)
    check(floor100, r50.median <= 1.2 && r99.median <= 1.2 && r.median >= 0.8,
      `p50 ${fmtRatio(r50)}, p99 ${fmtRatio(r99)}, req/s ${fmtRatio(r)} (medians ${fmtInt(a.rps)} vs ${fmtInt(b.rps)} req/s)${cpu(a, b)}`, true)
  }

  // 4. comparisons
  rpsAtLeast('tee 100% with comparisons ≥ 0.6× passthrough req/s', 'tee-100-compare', 'passthrough', 0.6)
  why = missing('tee-100', 'tee-100-compare')
  if (why !== null) na('tee 100% with comparisons: p99 within 1.2× of tee 100% without', why)
  else {
    const a = m('tee-100-compare')!
    const b = m('tee-100')!
    const r = pr('tee-100-compare', 'tee-100', p99)
    check('tee 100% with comparisons: p99 within 1.2× of tee 100% without', r.median <= 1.2, `${fmtRatio(r)} (medians ${us(a, 'p99Us')} vs ${us(b, 'p99Us')})`)
  }

  // 5. informational + micro-bench
  rpsAtLeast('three shadows at 100% ≥ 0.6× passthrough req/s (informational)', 'three-shadows', 'passthrough', 0.6, true)
  if ('skipped' in compare) na('comparator micro-bench median ≤ 50 µs', compare.skipped)
  else check('comparator micro-bench median ≤ 50 µs', compare.medianUs <= 50, `median ${fmt(compare.medianUs, 1)} µs, p99 ${fmt(compare.p99Us, 1)} µs over ${fmtInt(compare.iterations)} iterations`)
  return out
}

function resultRow (s: ScenarioResult, refs: Array<ScenarioResult | undefined>): string {
  const r = s.median
  const rss = peakRss(s)
  const name = `\`${s.id}\``
  if (s.status !== 'ok' || r === null) return `| ${name} | ${s.title} | ${s.status}: ${s.note ?? ''} |${' |'.repeat(11 + refs.length)}`
  return [
    name, s.title, fmtInt(r.rps), ...refs.map((ref) => ref === undefined ? '—' : fmtRatio(pairedRatio(s, ref, (x) => x.rps), false)),
    String(r.p50Ms), String(r.p99Ms), fmt(r.avgMs, 2), fmtInt(r.p50Us), fmtInt(r.p99Us),
    fmtInt(r.errors), fmtInt(r.non2xx), fmtInt(r.cpuUsPerReq), fmt(r.gcUsPerReq, 1), fmt(r.foreignCpuPct, 0), rss === null ? '—' : fmt(rss / MB, 0)
  ].join(' | ').replace(/^/, '| ').concat(' |')
}

export function renderMarkdown (rep: BenchReport): string {
  const get = (id: string): ScenarioResult | undefined => rep.scenarios.find((s) => s.id === id && s.status === 'ok' && s.median !== null)
  const small = rep.scenarios.filter((s) => s.body === 'small')
  const large = rep.scenarios.filter((s) => s.body === '1mb')
  const bigresp = rep.scenarios.filter((s) => s.body === 'bigresp')
  const mc = rep.machine
  const o = rep.options
  const lines: string[] = []
  lines.push('# penumbra benchmark (issue #6)', '')
  lines.push(`Generated ${rep.generatedAt} by \`${rep.command}\` (${rep.mode}, ${Math.round(rep.wallClockS)} s wall clock).`, '')
  lines.push(`- **Machine:** ${mc.cpu}, ${mc.cores} cores, ${mc.memGb} GB RAM, ${mc.os}; Node ${mc.node}`)
  lines.push(`- **Software:** penumbra ${mc.penumbra} (${mc.commit}), autocannon ${mc.autocannon}${mc.nginx !== null ? `, ${mc.nginx}` : ', nginx not installed'}`)
  lines.push(`- **Load:** autocannon (programmatic, in the bench process), ${o.connections} connections, pipelining 1, POST \`/v1/models/demo:predict\` with a ${o.requestBytes} B KServe-v1 JSON body (1 MB scenarios: ${o.largeRequestBytes} B); ` +
    `${o.rounds} round(s) × ${o.durationS} s per scenario after a ${o.warmupS} s warm-up run that is discarded${(o.rewarmS ?? 0) > 0 ? `, each measured run right after ${o.rewarmS} s of discarded load (\`--rewarm\`)` : ''}; scenarios alternate within each round (order rotated per round), and each scenario with a target has an extra run of its baseline right next to it (before it in even rounds, after it in odd ones); **medians over rounds**.`)
  lines.push(`- **Topology:** everything on 127.0.0.1 and the same ${mc.cores} cores: autocannon, the proxy under test, and fake model servers (one process each: primary with ${o.modelDelayMs} ms delay, a fast shadow per scenario that tees to one, a 100 ms shadow, a hanging shadow, and a primary and a shadow answering ${BIG_RESPONSE_KB} KB for the big-response rows). Absolute numbers are machine-specific; compare the ratios, which come from the same run.`)
  lines.push('')
  const refIds = ['passthrough', 'undici-minimal', 'http-proxy', 'nginx']
  lines.push('## Results: ~300 B requests', '')
  lines.push(`| scenario | what | req/s | ${refIds.map((id) => `× ${id}`).join(' | ')} | p50 ms | p99 ms | avg ms | p50 µs | p99 µs | errors | non-2xx | proxy CPU µs/req | GC µs/req | foreign CPU % | peak RSS MB |`)
  lines.push(`|---|---|--:|${refIds.map(() => '--:').join('|')}|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|`)
  for (const s of small) lines.push(resultRow(s, refIds.map(get)))
  lines.push('')
  if (large.length > 0) {
    const lrefs = ['direct-1mb', 'passthrough-1mb']
    lines.push('## Results: 1 MB requests', '')
    lines.push(`| scenario | what | req/s | ${lrefs.map((id) => `× ${id}`).join(' | ')} | p50 ms | p99 ms | avg ms | p50 µs | p99 µs | errors | non-2xx | proxy CPU µs/req | GC µs/req | foreign CPU % | peak RSS MB |`)
    lines.push(`|---|---|--:|${lrefs.map(() => '--:').join('|')}|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|`)
    for (const s of large) lines.push(resultRow(s, lrefs.map(get)))
    lines.push('')
  }
  if (bigresp.length > 0) {
    const brefs = ['passthrough-bigresp', 'tee-bigresp-inline']
    lines.push(`## Results: ${BIG_RESPONSE_KB} KB responses (~300 B requests)`, '')
    lines.push('What the comparison thread (`compare.workerMinBytes`) is for: each comparison parses two ' +
      `${BIG_RESPONSE_KB} KB bodies, milliseconds of CPU that, on the event loop, every client request waits behind.`, '')
    lines.push(`| scenario | what | req/s | ${brefs.map((id) => `× ${id}`).join(' | ')} | p50 ms | p99 ms | avg ms | p50 µs | p99 µs | errors | non-2xx | proxy CPU µs/req | GC µs/req | foreign CPU % | peak RSS MB |`)
    lines.push(`|---|---|--:|${brefs.map(() => '--:').join('|')}|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|`)
    for (const s of bigresp) lines.push(resultRow(s, brefs.map(get)))
    lines.push('')
  }
  lines.push('Columns: *req/s* = completed responses / run duration (median over rounds); *× X* = req/s ratio to scenario X: each run over the run of X nearest to it in time (scenarios with targets get an extra run of their baseline right next to them in every round), then the median over rounds (paired: both runs of a ratio saw the same machine phase); ' +
    '*p50/p99 ms* = autocannon\'s percentiles, which are **whole milliseconds** (its histogram resolution); *avg ms* = autocannon\'s latency.average; ' +
    '*p50/p99 µs* = the same percentiles computed from autocannon\'s per-response float timings (2xx only), used for the latency targets; ' +
    '*proxy CPU µs/req* = user+system CPU time of the proxy process (tree) during the run / completed requests (robust against CPU contention, unlike req/s); ' +
    '*GC µs/req* = garbage-collection pause time of a penumbra process per completed request, from its own `nodejs_gc_duration_seconds` (— for baselines); ' +
    '*foreign CPU %* = share of the whole machine (all cores = 100%) used by processes the bench did not start during the run: high values mean the row was measured on a busy machine; ' +
    '*peak RSS* = max of 200 ms VmRSS polls (summed over the process tree) and the kernel\'s VmHWM, over the whole run including warm-up; — for direct (no proxy).', '')

  lines.push('## Targets', '')
  for (const t of rep.targets) lines.push(`- **${t.status}**${t.informational === true ? ' (informational)' : ''}: ${t.text.replace(' (informational)', '')}: ${t.detail}`)
  lines.push('')

  const withStats = rep.scenarios.filter((s) => s.shadowStats !== null && Object.keys(s.shadowStats).length > 0)
  if (withStats.length > 0) {
    lines.push('## Shadow accounting (penumbra /metrics after the last round, warm-up included, summed over shadows, zero counters left out)', '')
    lines.push('| scenario | counters |', '|---|---|')
    for (const s of withStats) {
      const parts = Object.entries(s.shadowStats!).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${fmtInt(v)}`)
      lines.push(`| \`${s.id}\` | ${parts.join('; ')} |`)
    }
    lines.push('')
  }

  if (rep.options.rounds > 1) {
    lines.push('## Per-round req/s (spread = (max − min) / median)', '')
    lines.push(`| scenario | ${Array.from({ length: rep.options.rounds }, (_, i) => `round ${i + 1}`).join(' | ')} | spread |`)
    lines.push(`|---|${Array.from({ length: rep.options.rounds }, () => '--:').join('|')}|--:|`)
    for (const s of rep.scenarios.filter((x) => x.status === 'ok' && x.median !== null)) {
      const v = s.rounds.map((r) => r.rps)
      const spread = (Math.max(...v) - Math.min(...v)) / s.median!.rps
      lines.push(`| \`${s.id}\` | ${v.map(fmtInt).join(' | ')} | ${(spread * 100).toFixed(1)}% |`)
    }
    lines.push('')
  }

  lines.push('## Comparator micro-bench', '')
  if ('skipped' in rep.compareBench) lines.push(`Skipped: ${rep.compareBench.skipped}`)
  else lines.push(`\`runCompareBench()\` (bench/compare/compare.bench.ts): median ${fmt(rep.compareBench.medianUs, 1)} µs, p99 ${fmt(rep.compareBench.p99Us, 1)} µs over ${fmtInt(rep.compareBench.iterations)} iterations.`)
  lines.push('')
  if (rep.notes.length > 0) {
    lines.push('## Notes', '')
    for (const n of rep.notes) lines.push(`- ${n}`)
    lines.push('')
  }
  return lines.join('\n')
}

/**
 * docs/benchmarks.md: the latest results as a page of the docs (the way pino publishes its
 * benchmark page), generated from bench/results/latest.md, never written by hand.
 */
export function benchmarksPage (latestMd: string): string {
  return [
    '<!-- Generated by `npm run bench` (or `npm run bench:docs` from bench/results/latest.md). Do not edit by hand. -->',
    '',
    latestMd.replace(/^# penumbra benchmark \(issue #6\)/, '# penumbra benchmarks: latest results'),
    '',
    'Method: [bench/README.md](../bench/README.md). History and findings: [performance-notes.md](performance-notes.md).',
    ''
  ].join('\n')
}
