// `npm run bench [-- --quick ...]`: the benchmark of issue #6. Starts fake model servers, penumbra
// (one process per scenario, generated configs in a temp dir), the baselines and, if installed,
// nginx, all on 127.0.0.1; loads them with autocannon in alternating rounds; writes
// bench/results/latest.md (committed) and latest.json (gitignored). Reports targets, never asserts
// timings. Every child process is stopped on success, error, Ctrl-C and SIGTERM.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, release, tmpdir, totalmem, type as osType } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseBenchArgs, UsageError, USAGE, type BenchOptions } from './lib/args.js'
import { predictBody, runLoad, type LoadResult } from './lib/load.js'
import { findNginx, nginxVersion, startNginx } from './lib/nginx.js'
import { getText, waitForHttp } from './lib/probe.js'
import {
  explainStartFailure, freePort, installCleanupHandlers, spawnManaged, stopAll, waitForIpcReady, type Managed
} from './lib/processes.js'
import {
  benchmarksPage, evaluateTargets, medianOf, renderMarkdown, type BenchReport, type CompareBench, type Machine, type ScenarioResult
} from './lib/report.js'
import { cpuDelta, snapshotCpu } from './lib/cpu.js'
import { sampleRss } from './lib/rss.js'
import { startSwitcher } from './lib/switcher.js'
import { penumbraConfig, SCENARIO_IDS, SCENARIOS, serverArgs, serversFor, type Scenario, type ServerId } from './lib/scenarios.js'

const HERE = dirname(fileURLToPath(import.meta.url)) // .build/bench
const ROOT = join(HERE, '..', '..')
const PENUMBRA_CLI = join(ROOT, 'dist', 'cli.js')
const SMALL_BYTES = 300
const LARGE_BYTES = 1024 * 1024

const log = (msg: string): void => { process.stderr.write(`${msg}\n`) }

/** A started target: where to send load, and which process (tree) to watch. */
interface Target { url: string, proc: Managed | null, adminUrl: string | null }

class FatalError extends Error {}

async function startModelServer (id: ServerId, opts: BenchOptions): Promise<number> {
  const m = spawnManaged(`model server "${id}"`, process.execPath, [join(HERE, 'lib', 'model-server.js'), ...serverArgs(id, opts.modelDelay)], { ipc: true })
  return waitForIpcReady(m)
}

async function startTarget (s: Scenario, servers: Map<ServerId, number>, tmp: string, nginxBin: string | null): Promise<Target> {
  const primary = `http://127.0.0.1:${servers.get(s.primaryServer ?? 'primary')!}`
  const path = '/v1/models/demo:predict'
  const probeBody = predictBody(SMALL_BYTES)
  switch (s.target) {
    case 'direct':
      return { url: primary + path, proc: null, adminUrl: null }
    case 'undici-minimal':
    case 'http-proxy': {
      const args = [join(HERE, 'baselines', `${s.target}.js`), '--target', primary]
      if (s.baselineBuffer === true) args.push('--buffer')
      if (s.baselineShadow !== undefined) args.push('--shadow', `http://127.0.0.1:${servers.get(s.baselineShadow)!}`)
      if (s.baselineShadowCap !== undefined) args.push('--shadow-cap', String(s.baselineShadowCap))
      const m = spawnManaged(s.id, process.execPath, args, { ipc: true })
      const port = await waitForIpcReady(m)
      const url = `http://127.0.0.1:${port}${path}`
      await waitForHttp(url, probeBody, m)
      return { url, proc: m, adminUrl: null }
    }
    case 'nginx':
    case 'nginx-mirror': {
      if (nginxBin === null) throw new Error('nginx not installed')
      const port = await freePort()
      const m = startNginx(s.id, {
        bin: nginxBin,
        dir: join(tmp, s.id),
        port,
        primaryPort: servers.get('primary')!,
        mirrorPort: s.target === 'nginx-mirror' ? servers.get('slow')! : null
      })
      const url = `http://127.0.0.1:${port}${path}`
      await waitForHttp(url, probeBody, m)
      return { url, proc: m, adminUrl: null }
    }
    case 'penumbra': {
      if (!existsSync(PENUMBRA_CLI)) throw new Error(`${relative(process.cwd(), PENUMBRA_CLI)} is missing: run \`npm run build\` first`)
      // Fixed ports (cluster workers share one listen port, so port 0 would not be observable);
      // picked by binding :0 first.
      const ports = { listen: await freePort(), admin: await freePort() }
      const file = join(tmp, `${s.id}.json`)
      writeFileSync(file, JSON.stringify(penumbraConfig(s, ports, servers), null, 2))
      const args = [PENUMBRA_CLI, '--config', file, ...(s.workers !== undefined ? ['--workers', String(s.workers)] : [])]
      const m = spawnManaged(s.id, process.execPath, args)
      const url = `http://127.0.0.1:${ports.listen}${path}`
      await waitForHttp(url, probeBody, m)
      return { url, proc: m, adminUrl: `http://127.0.0.1:${ports.admin}` }
    }
  }
}

const COUNTERS: Record<string, string> = {
  penumbra_shadow_requests_total: 'mirrored',
  penumbra_shadow_skipped_total: 'skipped',
  penumbra_comparisons_total: 'compared',
  penumbra_comparisons_dropped_total: 'compare-dropped'
}

/**
 * Total GC pause time of a penumbra process so far (s), from its /metrics; NaN when unreadable.
 * A GC-heavy run is how a retention bug shows up here (issue #3: a Set of in-flight calls).
 */
async function gcSeconds (adminUrl: string): Promise<number> {
  try {
    let sum = 0
    for (const m of (await getText(`${adminUrl}/metrics`)).matchAll(/^nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm)) sum += Number(m[1])
    return sum
  } catch {
    return Number.NaN
  }
}

/** Shadow counters from /metrics, summed over shadows, keyed like `mirrored{ok}`. */
async function scrapeShadowStats (adminUrl: string): Promise<Record<string, number>> {
  const text = await getText(`${adminUrl}/metrics`)
  const out: Record<string, number> = {}
  for (const line of text.split('\n')) {
    const m = /^(penumbra_[a-z_]+)\{([^}]*)\}\s+(\S+)/.exec(line)
    if (m === null || COUNTERS[m[1]] === undefined) continue
    const label = /(?:outcome|reason)="([^"]*)"/.exec(m[2])?.[1] ?? '?'
    const key = `${COUNTERS[m[1]]}{${label}}`
    out[key] = (out[key] ?? 0) + Number(m[3])
  }
  return out
}

function machineInfo (nginxBin: string | null, usesNginx: boolean): Machine {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  let autocannonVersion = '?'
  try {
    autocannonVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'autocannon', 'package.json'), 'utf8')) as { version: string }).version
  } catch { /* keep ? */ }
  let commit = 'no commit'
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    if (dirty !== '') commit += ' + uncommitted src changes'
  } catch { /* not a git checkout or no commits yet */ }
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: availableParallelism(),
    node: process.version,
    os: `${osType()} ${release()}`,
    memGb: Math.round(totalmem() / 1024 ** 3),
    penumbra: pkg.version,
    commit,
    autocannon: autocannonVersion,
    nginx: nginxBin !== null && usesNginx ? `${nginxVersion(nginxBin)} (1 worker)` : null
  }
}

async function runCompareMicroBench (iterations: number | undefined): Promise<CompareBench | { skipped: string }> {
  const js = join(HERE, 'compare', 'compare.bench.js')
  if (!existsSync(js)) {
    return { skipped: existsSync(join(ROOT, 'bench', 'compare', 'compare.bench.ts')) ? 'bench/compare/compare.bench.ts exists but is not compiled (run `npm run build:test`)' : 'bench/compare/compare.bench.ts not present yet' }
  }
  try {
    const mod = await import(pathToFileURL(js).href) as { runCompareBench?: (o?: { iterations?: number }) => Promise<CompareBench> }
    if (typeof mod.runCompareBench !== 'function') return { skipped: 'bench/compare/compare.bench.ts does not export runCompareBench()' }
    const r = await Promise.race([
      mod.runCompareBench(iterations === undefined ? undefined : { iterations }),
      sleep(180_000, undefined, { ref: false }).then(() => { throw new Error('runCompareBench() took longer than 180 s') })
    ])
    return { medianUs: r.medianUs, p99Us: r.p99Us, iterations: r.iterations }
  } catch (err) {
    return { skipped: `runCompareBench() failed: ${(err as Error).message}` }
  }
}

/**
 * One round's runs: the scenarios rotated by the round number (so that none always runs first or
 * last), each `follows` scenario moved right behind its leader, and an anchor run of each
 * scenario's `anchor` (baseline) next to it: before it in even rounds, after it in odd ones.
 */
function roundOrder (runnable: Scenario[], round: number): Array<{ s: Scenario, anchor: boolean }> {
  const shift = runnable.length === 0 ? 0 : round % runnable.length
  const rotated = [...runnable.slice(shift), ...runnable.slice(0, shift)]
  const ids = new Set(rotated.map((s) => s.id))
  const order: Scenario[] = []
  for (const s of rotated) {
    if (s.follows !== undefined && ids.has(s.follows)) continue
    order.push(s)
    for (const f of rotated) if (f.follows === s.id) order.push(f)
  }
  const out: Array<{ s: Scenario, anchor: boolean }> = []
  for (const s of order) {
    const base = s.anchor === undefined ? undefined : runnable.find((x) => x.id === s.anchor)
    if (base !== undefined && round % 2 === 0) out.push({ s: base, anchor: true })
    out.push({ s, anchor: false })
    if (base !== undefined && round % 2 === 1) out.push({ s: base, anchor: true })
  }
  return out
}

function fmtLine (id: string, r: LoadResult): string {
  return `${id.padEnd(16)} ${Math.round(r.rps).toString().padStart(7)} req/s  p50 ${r.p50Ms} ms (${Math.round(r.p50Us)} µs)  p99 ${r.p99Ms} ms (${Math.round(r.p99Us)} µs)  avg ${r.avgMs.toFixed(2)} ms  cpu ${Number.isNaN(r.cpuUsPerReq) ? '-' : Math.round(r.cpuUsPerReq)} µs/req  gc ${Number.isNaN(r.gcUsPerReq) ? '-' : r.gcUsPerReq.toFixed(1)} µs/req  foreign ${r.foreignCpuPct.toFixed(0)}%` +
    (r.errors + r.non2xx > 0 ? `  errors ${r.errors} non2xx ${r.non2xx}` : '')
}

async function main (): Promise<number> {
  const started = Date.now()
  let opts: BenchOptions
  try {
    opts = parseBenchArgs(process.argv.slice(2), SCENARIO_IDS)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n\n${USAGE}`)
      return 2
    }
    throw err
  }
  if (opts.help) { process.stdout.write(USAGE); return 0 }
  if (opts.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.id.padEnd(16)} ${s.title}\n`)
    return 0
  }
  installCleanupHandlers(log)

  const nginxBin = findNginx()
  const notes: string[] = []
  const results = new Map<string, ScenarioResult>()
  const chosen = SCENARIOS.filter((s) => (opts.only.length === 0 || opts.only.includes(s.id)) && !opts.skip.includes(s.id))
  const active: Scenario[] = []
  for (const s of chosen) {
    const r: ScenarioResult = { id: s.id, title: s.title, body: s.body, status: 'ok', rounds: [], anchors: [], median: null, rss: null, shadowStats: null }
    results.set(s.id, r)
    if (s.target === 'nginx' || s.target === 'nginx-mirror') {
      if (!opts.nginx) { r.status = 'skipped'; r.note = '--no-nginx'; continue }
      if (nginxBin === null) { r.status = 'skipped'; r.note = 'nginx not installed'; continue }
    }
    active.push(s)
  }
  if (nginxBin === null && chosen.some((s) => s.target.startsWith('nginx'))) {
    notes.push('nginx scenarios skipped: `command -v nginx` found no nginx on this machine (install it, e.g. `apt-get install -y nginx`, to get those rows).')
  }

  const tmp = mkdtempSync(join(tmpdir(), 'penumbra-bench-'))
  const small = predictBody(SMALL_BYTES)
  const bodies = { small, '1mb': predictBody(LARGE_BYTES), bigresp: small }
  log(`penumbra bench: ${active.length} scenario(s), ${opts.rounds} round(s) × ${opts.duration} s, warm-up ${opts.warmup} s, re-warm ${opts.rewarm} s, ${opts.connections} connections; temp dir ${tmp}`)

  let exitCode = 0
  try {
    // 1. Fake model servers, one process each.
    const serverIds = new Set<ServerId>(active.flatMap(serversFor))
    const servers = new Map<ServerId, number>()
    for (const id of serverIds) servers.set(id, await startModelServer(id, opts))
    log(`model servers: ${[...servers].map(([id, p]) => `${id}=:${p}`).join(' ')}`)

    // 2. Every target up front, so rounds can alternate between them without restarts.
    // Started concurrently: startup time is not measured, and 16 sequential starts add ~10 s.
    const targets = new Map<string, Target>()
    const started = await Promise.allSettled(active.map(async (s) => startTarget(s, servers, tmp, nginxBin)))
    for (const [i, st] of started.entries()) {
      const s = active[i]
      if (st.status === 'fulfilled') { targets.set(s.id, st.value); continue }
      const msg = (st.reason as Error).message
      const why = explainStartFailure(s.id, msg)
      if (/port .* is taken/.test(why)) throw new FatalError(`${why}\n${msg}`)
      const r = results.get(s.id)!
      r.status = 'failed'
      r.note = msg.split('\n')[0]
      log(`FAILED to start ${s.id}: ${msg}`)
      exitCode = 1
    }
    log(`started: ${[...targets.keys()].join(', ')}`)
    const runnable = active.filter((s) => targets.has(s.id))

    // 3. Rounds: every scenario once per round, order rotated per round so that slow drift
    // (thermal, noisy neighbours, GC of long-lived processes) spreads over all scenarios alike.
    const rssPeaks = new Map<string, number>()
    const warmed = new Set<string>()
    for (let round = 0; round < opts.rounds; round++) {
      for (const { s, anchor } of roundOrder(runnable, round)) {
        const t = targets.get(s.id)!
        const r = results.get(s.id)!
        if (r.status !== 'ok') continue
        const body = bodies[s.body]
        const load = { url: t.url, connections: opts.connections, body, timeoutS: 10, ...(s.experiment === true ? { headers: { 'x-user-id': 'bench-user-1' } } : undefined) }
        const settleMs = opts.quick ? Math.min(s.settleMs, 500) : s.settleMs
        if (!warmed.has(s.id) && opts.warmup > 0) {
          warmed.add(s.id)
          await runLoad({ ...load, durationS: opts.warmup }) // JIT, sockets, pools: discarded
          await sleep(settleMs)
        }
        // A process that idled since its last run (the other scenarios' turns) measures cold:
        // --rewarm loads it again first, so the measured run sees steady state.
        if (opts.rewarm > 0) await runLoad({ ...load, durationS: opts.rewarm })
        const sampler = t.proc !== null ? sampleRss(t.proc.pid) : null
        const ours = [process.pid] // its process tree: autocannon in here plus every child we started
        const gc0 = t.adminUrl === null ? Number.NaN : await gcSeconds(t.adminUrl)
        const cpu0 = snapshotCpu(t.proc?.pid ?? null, ours)
        // Blue/green: the switch loop runs during the measured run only (its own CPU is the bench
        // process's, so it does not count as the proxy's).
        const switcher = s.switchEveryMs !== undefined && t.adminUrl !== null ? startSwitcher(t.adminUrl, ['blue', 'green'], s.switchEveryMs) : null
        const res = await runLoad({ ...load, durationS: opts.duration })
        const cpu = cpuDelta(cpu0, snapshotCpu(t.proc?.pid ?? null, ours))
        if (switcher !== null) {
          const st = await switcher.stop()
          const sw = (r.switches ??= { switches: 0, failures: 0, lastError: null })
          sw.switches += st.switches
          sw.failures += st.failures
          sw.lastError = st.lastError ?? sw.lastError
          res.switches = st.switches
        }
        if (t.adminUrl !== null && res.total > 0) res.gcUsPerReq = (await gcSeconds(t.adminUrl) - gc0) * 1e6 / res.total
        res.foreignCpuPct = cpu.foreignPct
        if (t.proc !== null && res.total > 0) res.cpuUsPerReq = cpu.targetS * 1e6 / res.total
        if (sampler !== null) rssPeaks.set(s.id, Math.max(rssPeaks.get(s.id) ?? 0, sampler.stop().sampledPeakBytes))
        if (anchor) (r.anchors ??= []).push(res)
        else r.rounds.push(res)
        log(`[${round + 1}/${opts.rounds}] ${fmtLine(anchor ? `(${s.id})` : s.id, res)}`)
        if (t.proc !== null && !t.proc.isRunning()) {
          r.status = 'failed'
          r.note = 'process died during the run'
          log(`${s.id} died during the run:\n${t.proc.output()}`)
          exitCode = 1
        }
        await sleep(settleMs)
      }
    }

    // 4. Post-run facts: lifetime memory peaks and shadow counters, before stopping anything.
    for (const s of runnable) {
      const t = targets.get(s.id)!
      const r = results.get(s.id)!
      r.median = medianOf(r.rounds)
      if (t.proc !== null && t.proc.isRunning()) {
        const final = sampleRss(t.proc.pid).stop()
        r.rss = { sampledPeakBytes: Math.max(rssPeaks.get(s.id) ?? 0, final.sampledPeakBytes), hwmBytes: final.hwmBytes }
      }
      if (t.adminUrl !== null && s.shadows.length > 0) {
        try { r.shadowStats = await scrapeShadowStats(t.adminUrl) } catch (err) { log(`could not scrape ${s.id} /metrics: ${(err as Error).message}`) }
      }
    }
  } finally {
    await stopAll()
    rmSync(tmp, { recursive: true, force: true })
  }

  // 5. The comparator micro-bench runs alone, after every load process has stopped.
  log('comparator micro-bench...')
  const compareBench = await runCompareMicroBench(opts.quick ? 5000 : undefined)

  // 6. The LLM streaming scenario (issue #16, bench/llm/): its own processes, after the others.
  let llmSection = ''
  if (opts.only.length === 0 && opts.skip.length === 0) {
    log('LLM streaming scenario...')
    try {
      const llm = await import(pathToFileURL(join(HERE, 'llm', 'llm-stream.bench.js')).href) as typeof import('./llm/llm-stream.bench.js')
      llmSection = '\n' + llm.renderLlmStreamBench(await llm.runLlmStreamBench({ quick: opts.quick, log }))
    } catch (err) {
      llmSection = `\n## LLM streaming (issue #16)\n\nSkipped: ${(err as Error).message}\n`
    }
  }

  const scenarios = SCENARIOS.filter((s) => results.has(s.id)).map((s) => results.get(s.id)!)
  if (opts.modelDelay === 0) notes.push('The primary model server answers immediately (--model-delay 0), so every scenario is CPU-bound on the shared cores: req/s ratios measure proxy CPU cost per request.')
  notes.push('Latency targets use the µs-resolution percentiles; autocannon\'s own p50/p99 are whole milliseconds, so at ~1–3 ms a one-step change is already 33–100%.')
  if (results.get('shadow-100ms')?.shadowStats != null || results.get('shadow-hang')?.shadowStats != null) {
    notes.push('With a 100 ms or hanging shadow and maxConcurrency 64, only ~640 (100 ms) or ~32 (2 s timeout) mirrored requests per second can be in flight; the rest are skipped by design (see shadow accounting).')
  }
  if (results.has('nginx-mirror')) notes.push('nginx `mirror` keeps the client\'s keep-alive connection busy until the mirror subrequest finishes (mirroring-anchors §3.2), so with a 100 ms mirror each connection can do at most ~10 req/s.')
  const foreign = scenarios.flatMap((x) => x.rounds.map((r) => r.foreignCpuPct)).filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (foreign.length > 0) {
    const med = foreign[Math.floor(foreign.length / 2)]
    if (med >= 10) {
      notes.push(`**Busy machine:** processes the bench did not start (other test suites, browsers, compilers) used a median ${med.toFixed(0)}% (max ${foreign[foreign.length - 1].toFixed(0)}%) of the machine's CPU during the runs, so req/s and latency vary a lot between rounds (see the spread column). ` +
        'The *proxy CPU µs/req* column is the steadier comparison; the targets quote it next to the req/s ratios.')
    }
  }
  const mode = opts.only.length > 0 || opts.skip.length > 0 ? 'custom' : opts.quick ? 'quick' : 'full'
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    mode,
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
    machine: machineInfo(nginxBin, active.some((s) => s.target.startsWith('nginx'))),
    options: { connections: opts.connections, durationS: opts.duration, warmupS: opts.warmup, rewarmS: opts.rewarm, rounds: opts.rounds, modelDelayMs: opts.modelDelay, requestBytes: bodies.small.length, largeRequestBytes: bodies['1mb'].length },
    scenarios,
    compareBench,
    targets: evaluateTargets(scenarios, compareBench),
    notes,
    wallClockS: (Date.now() - started) / 1000
  }
  const outDir = opts.outDir ?? join(ROOT, 'bench', 'results')
  mkdirSync(outDir, { recursive: true })
  const md = renderMarkdown(report) + llmSection
  writeFileSync(join(outDir, 'latest.md'), md)
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n')
  // A default run publishes its results as docs/benchmarks.md (README links it).
  if (opts.outDir === null) writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), benchmarksPage(md))
  process.stdout.write(md)
  log(`\nwrote ${relative(process.cwd(), join(outDir, 'latest.md'))} and latest.json in ${Math.round(report.wallClockS)} s`)
  return exitCode
}

main().then((code) => { process.exitCode = code }, async (err: Error) => {
  process.stderr.write(`bench: ${err instanceof FatalError ? err.message : (err.stack ?? err.message)}\n`)
  await stopAll()
  process.exit(1)
})
