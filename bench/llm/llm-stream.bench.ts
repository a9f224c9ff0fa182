// The LLM streaming scenario of issue #16 (`npm run bench:llm`, and at the end of `npm run bench`):
// a fake OpenAI-compatible server streams 20 chat.completion.chunk events of ~20 bytes of content,
// 5 ms apart; 32 connections stream answers in a loop. Measured: time to first token (request
// sent → first event received) direct, through penumbra, and through penumbra with the stream
// mirrored to a shadow (same fake), in alternating rounds; the added TTFT is penumbra's p50/p99
// minus direct's. Then, in-process, the CPU of reassembling both streams and comparing them per
// streamed answer (what the comparison stage does per mirrored stream). Reported, not asserted.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Pool } from 'undici'
import { freePort, spawnManaged, stopAll, waitForIpcReady, installCleanupHandlers } from '../lib/processes.js'
import { waitForHttp } from '../lib/probe.js'
import { cpuDelta, snapshotCpu } from '../lib/cpu.js'
import { compareSchema } from '../../src/config/schema.js'
import { Comparator, releasePrimaryCache } from '../../src/compare/comparator.js'
import { streamStats } from '../../src/compare/llm/stream-timing.js'
import type { CapturedResponse } from '../../src/compare/types.js'

const HERE = dirname(fileURLToPath(import.meta.url)) // .build/bench/llm
const ROOT = join(HERE, '..', '..', '..')
const PENUMBRA_CLI = join(ROOT, 'dist', 'cli.js')

export interface Quantiles { p50: number, p99: number, n: number }

export interface LlmStreamBenchResult {
  connections: number
  events: number
  gapMs: number
  rounds: number
  durationS: number
  /** TTFT in ms, per target, over all rounds. */
  ttft: { direct: Quantiles, penumbra: Quantiles, mirrored: Quantiles }
  /** penumbra minus direct, ms (p50 and p99 of each, per round, then the median over rounds). */
  addedMs: { penumbra: { p50: number, p99: number }, mirrored: { p50: number, p99: number } }
  /** Per round, for the spread. */
  perRound: Array<{ direct: Quantiles, penumbra: Quantiles, mirrored: Quantiles }>
  /** Streams whose answer did not complete (errors), per target. */
  errors: { direct: number, penumbra: number, mirrored: number }
  /** penumbra's process CPU per streamed answer, µs (median over rounds): steadier than latency on a shared machine. */
  proxyCpuUsPerStream: { penumbra: number, mirrored: number }
  /** % of the machine used by processes the bench did not start, median over the runs. */
  foreignCpuPct: number
  /** Reassembly (both streams' timing replay) + comparison, µs per streamed answer. */
  cpuUs: { median: number, p99: number, iterations: number, reassemblyMedian: number }
  /** Mirrored streams penumbra compared (from its /metrics), to show they were not skipped. */
  mirroredCompared: number | null
  /** The machine's 1-minute load average when the scenario started (2 cores here: > 2 is busy). */
  loadAverage: number
}

const BODY = Buffer.from(JSON.stringify({ model: 'bench', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Say twenty things.' }] }))

function quantiles (xs: number[]): Quantiles {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number): number => s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!
  return { p50: round3(at(0.5)), p99: round3(at(0.99)), n: s.length }
}
const round3 = (x: number): number => Math.round(x * 1000) / 1000
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }

/** `connections` loops streaming answers from `origin + path` for `durationS`; the TTFTs in ms. */
async function load (origin: string, path: string, connections: number, durationS: number): Promise<{ ttft: number[], errors: number }> {
  const pool = new Pool(origin, { connections, pipelining: 1 })
  const ttft: number[] = []
  let errors = 0
  const until = performance.now() + durationS * 1000
  const loop = async (): Promise<void> => {
    while (performance.now() < until) {
      const t0 = performance.now()
      try {
        const res = await pool.request({ method: 'POST', path, body: BODY, headers: { 'content-type': 'application/json' } })
        let first = true
        let bytes = ''
        for await (const chunk of res.body) {
          if (first) { ttft.push(performance.now() - t0); first = false }
          bytes = (bytes + (chunk as Buffer).toString('latin1')).slice(-16)
        }
        if (!bytes.includes('[DONE]')) errors++
      } catch {
        errors++
      }
    }
  }
  await Promise.all(Array.from({ length: connections }, loop))
  await pool.close()
  return { ttft, errors }
}

/** A captured event stream as the proxy keeps it: one chunk per event, with its arrival time. */
function capturedStream (contentSuffix: string, events: number, gapMs: number): CapturedResponse {
  const parts: Buffer[] = []
  const arrivals: number[] = []
  let off = 0
  for (let i = 0; i < events; i++) {
    const delta = i === 0 ? { role: 'assistant', content: 'tok00 tok01 tok02 ' } : { content: `tok${String(i).padStart(2, '0')} word${String(i).padStart(2, '0')}${i === events - 1 ? contentSuffix : ''} ab ` }
    const b = Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-b', object: 'chat.completion.chunk', created: 1, model: 'bench', choices: [{ index: 0, delta, finish_reason: i === events - 1 ? 'stop' : null }] })}\n\n`)
    arrivals.push(off, 1 + i * gapMs)
    parts.push(b)
    off += b.length
  }
  const end = Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-b', object: 'chat.completion.chunk', created: 1, model: 'bench', choices: [], usage: { prompt_tokens: 10, completion_tokens: events, total_tokens: 10 + events } })}\n\ndata: [DONE]\n\n`)
  arrivals.push(off, 1 + events * gapMs)
  parts.push(end)
  return { status: 200, headers: { 'content-type': 'text/event-stream' }, body: Buffer.concat(parts), truncated: false, durationMs: 2 + events * gapMs, arrivals }
}

/** CPU per streamed answer: both captures replayed for their timing, then the comparison. */
function cpuBench (iterations: number, events: number, gapMs: number): LlmStreamBenchResult['cpuUs'] {
  const comparator = new Comparator(compareSchema.parse({}))
  const primary = capturedStream('', events, gapMs)
  const shadow = capturedStream(' x', events, gapMs)
  const job = { shadow: 's', requestId: 'r', method: 'POST', url: '/v1/chat/completions', requestHeaders: { 'content-type': 'application/json' }, requestBody: BODY, primary, shadowResponse: shadow }
  const total: number[] = []
  const reassembly: number[] = []
  for (let i = 0; i < iterations + iterations / 5; i++) {
    const t0 = performance.now()
    streamStats(primary, 16 * 1024 * 1024)
    streamStats(shadow, 16 * 1024 * 1024)
    const t1 = performance.now()
    const r = comparator.compare(job)
    releasePrimaryCache()
    const t2 = performance.now()
    if (r.outcome !== 'match' && r.outcome !== 'mismatch') throw new Error(`bench streams did not compare: ${r.outcome}`)
    if (i < iterations / 5) continue // warm-up
    total.push((t2 - t0) * 1000)
    reassembly.push((t1 - t0) * 1000)
  }
  const q = quantiles(total)
  return { median: round3(q.p50), p99: round3(q.p99), iterations, reassemblyMedian: round3(median(reassembly)) }
}

/** Runs the scenario; every child it starts is stopped before it returns. */
export async function runLlmStreamBench (opts: { quick?: boolean, connections?: number, log?: (m: string) => void } = {}): Promise<LlmStreamBenchResult> {
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'))
  const connections = opts.connections ?? 32
  const rounds = opts.quick === true ? 1 : 3
  const durationS = opts.quick === true ? 2 : 3
  const events = 20
  const gapMs = 5
  const loadAverage = round3(loadavg()[0]!)
  const tmp = mkdtempSync(join(tmpdir(), 'penumbra-llm-bench-'))
  const started: Array<ReturnType<typeof spawnManaged>> = []
  try {
    const serverJs = join(HERE, 'sse-server.js')
    const primary = spawnManaged('sse primary', process.execPath, [serverJs, '--events', String(events), '--gap', String(gapMs)], { ipc: true })
    const shadow = spawnManaged('sse shadow', process.execPath, [serverJs, '--events', String(events), '--gap', String(gapMs)], { ipc: true })
    started.push(primary, shadow)
    const [pp, sp] = await Promise.all([waitForIpcReady(primary), waitForIpcReady(shadow)])
    const listen = await freePort()
    const admin = await freePort()
    const config = {
      listen: { host: '127.0.0.1', port: listen },
      admin: { enabled: true, host: '127.0.0.1', port: admin },
      primary: { url: `http://127.0.0.1:${pp}`, timeoutMs: 30_000, connections: 128 },
      // Mirrored: requests under /v1/; the plain penumbra runs use /plain/v1/… on the same process.
      shadows: [{ name: 'cand', url: `http://127.0.0.1:${sp}`, sampleRate: 1, match: { methods: ['POST'], paths: ['/v1/**'] }, timeoutMs: 5000, maxConcurrency: 64 }],
      compare: { enabled: true, format: 'auto' },
      log: { level: 'warn', access: false }
    }
    const file = join(tmp, 'penumbra.json')
    writeFileSync(file, JSON.stringify(config))
    const p = spawnManaged('penumbra', process.execPath, [PENUMBRA_CLI, '--config', file])
    started.push(p)
    const via = `http://127.0.0.1:${listen}`
    await waitForHttp(`${via}/plain/v1/chat/completions`, BODY, p)
    const direct = `http://127.0.0.1:${pp}`
    const targets = [
      { id: 'direct' as const, origin: direct, path: '/v1/chat/completions' },
      { id: 'penumbra' as const, origin: via, path: '/plain/v1/chat/completions' },
      { id: 'mirrored' as const, origin: via, path: '/v1/chat/completions' }
    ]
    log(`llm-stream: ${connections} connections, ${events} events ${gapMs} ms apart, ${rounds} round(s) of ${durationS} s per target`)
    for (const t of targets) await load(t.origin, t.path, connections, 1) // warm-up, discarded
    const all = { direct: [] as number[], penumbra: [] as number[], mirrored: [] as number[] }
    const errors = { direct: 0, penumbra: 0, mirrored: 0 }
    const perRound: LlmStreamBenchResult['perRound'] = []
    const cpuPer = { penumbra: [] as number[], mirrored: [] as number[] }
    const foreign: number[] = []
    const ours = [process.pid, primary.pid, shadow.pid, p.pid]
    for (let r = 0; r < rounds; r++) {
      const order = [...targets.slice(r % 3), ...targets.slice(0, r % 3)]
      const got: Partial<Record<'direct' | 'penumbra' | 'mirrored', Quantiles>> = {}
      for (const t of order) {
        const before = snapshotCpu(p.pid, ours)
        const res = await load(t.origin, t.path, connections, durationS)
        const cpu = cpuDelta(before, snapshotCpu(p.pid, ours))
        if (Number.isFinite(cpu.foreignPct)) foreign.push(cpu.foreignPct)
        if (t.id !== 'direct' && res.ttft.length > 0) cpuPer[t.id].push(cpu.targetS * 1e6 / res.ttft.length)
        all[t.id].push(...res.ttft)
        errors[t.id] += res.errors
        got[t.id] = quantiles(res.ttft)
        log(`  round ${r + 1} ${t.id.padEnd(9)} TTFT p50 ${got[t.id]!.p50} ms p99 ${got[t.id]!.p99} ms (${res.ttft.length} streams${res.errors > 0 ? `, ${res.errors} errors` : ''})`)
      }
      perRound.push(got as LlmStreamBenchResult['perRound'][number])
    }
    let mirroredCompared: number | null = null
    try {
      const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text()
      mirroredCompared = 0
      for (const m of text.matchAll(/^penumbra_comparisons_total\{[^}]*shadow="cand"[^}]*\} (\d+)/gm)) mirroredCompared += Number(m[1])
    } catch { /* reported as null */ }
    const added = (id: 'penumbra' | 'mirrored', q: 'p50' | 'p99'): number => round3(median(perRound.map((x) => x[id][q] - x.direct[q])))
    log('llm-stream: reassembly + comparison CPU...')
    const cpuUs = cpuBench(opts.quick === true ? 2000 : 10_000, events, gapMs)
    return {
      connections,
      events,
      gapMs,
      rounds,
      durationS,
      ttft: { direct: quantiles(all.direct), penumbra: quantiles(all.penumbra), mirrored: quantiles(all.mirrored) },
      addedMs: { penumbra: { p50: added('penumbra', 'p50'), p99: added('penumbra', 'p99') }, mirrored: { p50: added('mirrored', 'p50'), p99: added('mirrored', 'p99') } },
      perRound,
      errors,
      proxyCpuUsPerStream: { penumbra: Math.round(median(cpuPer.penumbra)), mirrored: Math.round(median(cpuPer.mirrored)) },
      foreignCpuPct: foreign.length > 0 ? Math.round(median(foreign)) : NaN,
      cpuUs,
      mirroredCompared,
      loadAverage
    }
  } finally {
    await stopAll()
    rmSync(tmp, { recursive: true, force: true })
  }
}

/** The scenario's section of the bench report (markdown). */
export function renderLlmStreamBench (r: LlmStreamBenchResult): string {
  const row = (id: string, q: Quantiles, add?: { p50: number, p99: number }): string =>
    `| ${id} | ${q.p50} | ${q.p99} | ${add === undefined ? '–' : `${add.p50 >= 0 ? '+' : ''}${add.p50}`} | ${add === undefined ? '–' : `${add.p99 >= 0 ? '+' : ''}${add.p99}`} | ${q.n} |`
  const ok = (x: number, limit: number): string => (x <= limit ? 'met' : 'MISSED')
  return [
    '## LLM streaming (issue #16)',
    '',
    `${r.connections} connections stream chat completions of ${r.events} events (~20 bytes of content each) ${r.gapMs} ms apart; ` +
      `${r.rounds} round(s) of ${r.durationS} s per target, in rotated order. TTFT: request sent → first event received, ms. ` +
      'Added = penumbra − direct, per round, median over rounds. The load generator, the fake servers and penumbra share the machine ' +
      `(1-minute load average at the start: ${r.loadAverage}), so on a busy machine the added time is mostly waiting for a core.`,
    '',
    '| target | TTFT p50 | TTFT p99 | added p50 | added p99 | streams |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('direct', r.ttft.direct),
    row('penumbra', r.ttft.penumbra, r.addedMs.penumbra),
    row('penumbra, mirrored to a shadow', r.ttft.mirrored, r.addedMs.mirrored),
    '',
    `Targets (issue #16): added p50 ≤ 1 ms: ${ok(r.addedMs.mirrored.p50, 1)} (mirrored ${r.addedMs.mirrored.p50} ms, plain ${r.addedMs.penumbra.p50} ms); ` +
      `added p99 ≤ 3 ms: ${ok(r.addedMs.mirrored.p99, 3)} (mirrored ${r.addedMs.mirrored.p99} ms, plain ${r.addedMs.penumbra.p99} ms).`,
    `penumbra's CPU per streamed answer: ${r.proxyCpuUsPerStream.penumbra} µs plain, ${r.proxyCpuUsPerStream.mirrored} µs mirrored and compared (process CPU / streams, median over rounds; ` +
      `processes the bench did not start used a median ${r.foreignCpuPct}% of the machine during the runs).`,
    `Incomplete streams: direct ${r.errors.direct}, penumbra ${r.errors.penumbra}, mirrored ${r.errors.mirrored}. Mirrored streams compared by penumbra: ${r.mirroredCompared ?? 'unknown'}.`,
    '',
    `Reassembly and comparison CPU per streamed answer (both captures replayed for their timing, which assembles them, then compared; ${r.cpuUs.iterations} iterations): ` +
      `median ${r.cpuUs.median} µs, p99 ${r.cpuUs.p99} µs (of which the timing replay of both streams: median ${r.cpuUs.reassemblyMedian} µs).`,
    ''
  ].join('\n')
}

// `node .build/bench/llm/llm-stream.bench.js [--quick]` (`npm run bench:llm`).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  installCleanupHandlers((m) => process.stderr.write(m + '\n'))
  runLlmStreamBench({ quick: process.argv.includes('--quick') }).then((r) => {
    const md = renderLlmStreamBench(r)
    const out = join(ROOT, 'bench', 'results')
    mkdirSync(out, { recursive: true })
    writeFileSync(join(out, 'llm-stream.md'), `# LLM streaming bench (${new Date().toISOString()}, Node ${process.version})\n\n` + md)
    process.stdout.write(md)
  }, async (err: Error) => {
    process.stderr.write(`bench:llm: ${err.stack ?? err.message}\n`)
    await stopAll()
    process.exit(1)
  })
}
