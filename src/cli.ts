#!/usr/bin/env node
import cluster from 'node:cluster'
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { AggregatorRegistry, Registry } from 'prom-client'
import { loadConfigFile, validateConfig, ConfigError } from './config/load.js'
import type { Config } from './config/schema.js'
import { Penumbra, VERSION } from './index.js'
import { createLogger, type Logger } from './log/logger.js'
import { AdminServer } from './admin/admin-server.js'
import { ClusterBackend, serveWorkerAdmin } from './server/cluster.js'
import { listenOn } from './server/proxy-server.js'
import { OriginProbe, probeUpstreams } from './upstream/probe.js'
import { configWarnings } from './config/schema.js'
import { driftWorkersProblem } from './config/drift-schema.js'
import { statusPageHtml } from './admin/status-page.js'
import { startDemoModel } from './demo/model-server.js'
import { startDemoLlm } from './demo/llm-model-server.js'
import { runReport } from './admin/report-cli.js'
import { runGameDayCli } from './chaos/gameday-cli.js'
import { runCanaryCli } from './rollout/canary-cli.js'
import { canaryMetrics, configReloadsCounter, type CanaryMetrics } from './metrics/metrics.js'
import { CanaryController } from './rollout/canary-controller.js'
import { ClusterCanaryIO } from './rollout/cluster-canary.js'

const HELP = `penumbra ${VERSION}: shadow-release proxy for ML model endpoints

Usage:
  penumbra --config FILE [--workers N] [--check] [--demo]
  penumbra report [--admin URL] [--token TOKEN] [--json]
  penumbra report --prometheus URL --experiment NAME [--config FILE | --admin URL] [--json]
  penumbra gameday --scenario FILE --admin URL --prometheus URL [--token TOKEN] [--out FILE.json]
  penumbra canary --prometheus URL --admin URL [--admin URL ...] [--token TOKEN] [--selector S]

Options:
  -c, --config FILE   YAML or JSON config (default: $PENUMBRA_CONFIG)
  -w, --workers N     run N proxy processes with node:cluster (overrides config "workers")
      --check         validate the config, print a summary, exit 0 (valid) or 2 (invalid)
      --demo          also start the built-in demo model servers on the primary's and the
                      shadows' ports (npm start); OpenAI-compatible streaming LLM servers
                      when the config compares LLM answers (npm run start:llm)
  -h, --help          this help
  -v, --version       print the version

  report              print the shadows and experiments of a running penumbra as a table
      --admin URL     its admin address (default http://127.0.0.1:9901)
      --token TOKEN   the admin token, when reads need one (default: $PENUMBRA_ADMIN_TOKEN)
      --json          print the raw JSON instead
      --prometheus URL --experiment NAME
                      that experiment's verdicts from the counters of every replica Prometheus
                      scrapes, summed; its definition from --config FILE or the admin API

  gameday             run a chaos game day (docs/chaos.md): start the scenario's fault, wait
                      for its alert in Prometheus, always stop the fault; exit 0 pass, 1 fail
      --scenario FILE a scenario (config/gamedays/*.yaml)
      --prometheus URL  the Prometheus that evaluates penumbra's alert rules
      --out FILE      also write the result as JSON
      --poll-ms N     how often to ask Prometheus (default 5000)

  canary              run the canary (canary.controller: external) of several replicas from
                      Prometheus: every decision on every replica, one JSON line each; exit 0
                      promoted/completed, 1 rolled back/paused (docs/canary.md)
      --prometheus URL  the Prometheus that scrapes every replica
      --admin URL     a replica's admin address (repeat for each)
      --selector S    extra label matchers for the queries, e.g. job="penumbra"

Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config file.
Docs: README.md (config reference, admin API, metrics, error codes).
`

function fail (message: string, code = 2): never {
  process.stderr.write(`penumbra: ${message}\n`)
  process.exit(code)
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv[0] === 'report') {
    process.exitCode = await runReport(argv.slice(1))
    return
  }
  if (argv[0] === 'gameday') {
    process.exitCode = await runGameDayCli(argv.slice(1))
    return
  }
  if (argv[0] === 'canary') {
    process.exitCode = await runCanaryCli(argv.slice(1))
    return
  }
  let args
  try {
    args = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        workers: { type: 'string', short: 'w' },
        check: { type: 'boolean' },
        demo: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) {
    fail(`${(err as Error).message}\n${HELP}`)
  }
  if (args.help === true) { process.stdout.write(HELP); return }
  if (args.version === true) { process.stdout.write(`${VERSION}\n`); return }
  const file = args.config ?? process.env.PENUMBRA_CONFIG
  if (file === undefined || file === '') fail('no config: pass --config FILE or set PENUMBRA_CONFIG (see --help)')

  let config: Config
  try {
    // A cluster worker runs exactly the config its primary validated (and last reloaded), not
    // whatever the file says by the time the worker is (re)started.
    const inherited = cluster.isWorker ? process.env.PENUMBRA_WORKER_CONFIG : undefined
    config = inherited !== undefined ? validateConfig(JSON.parse(inherited)) : loadConfigFile(file)
  } catch (err) {
    if (err instanceof ConfigError) fail(`${file}: invalid config (${err.code})\n  ${err.problems.join('\n  ')}`)
    throw err
  }
  if (args.workers !== undefined) {
    const n = Number(args.workers)
    if (!Number.isInteger(n) || n < 1 || n > 64) fail('--workers: must be a whole number 1..64')
    config = { ...config, workers: n }
    const drift = driftWorkersProblem(config)
    if (drift !== null) fail(`${file}: invalid config (PENUMBRA_INVALID_CONFIG)\n  drift: ${drift}`)
  }
  const warnings = configWarnings(config)
  if (args.check === true) {
    process.stdout.write(summary(file, config) + warnings.map((w) => `  warning: ${w}\n`).join(''))
    return
  }

  const log = createLogger({ level: config.log.level, redact: config.log.redact })
  if (cluster.isPrimary) for (const w of warnings) log.warn(w)
  if (cluster.isPrimary && config.admin.enabled && config.admin.token === null && !['127.0.0.1', 'localhost', '::1'].includes(config.admin.host)) {
    log.warn({ admin: `${config.admin.host}:${config.admin.port}` }, 'the admin listener is reachable beyond loopback and admin.token is not set: anyone who reaches it can change shadow sampling (PATCH /shadows)')
  }
  if (config.workers > 1) {
    if (cluster.isPrimary) return runPrimary(file, config, log, args.demo === true)
    return runWorker(file, config, log)
  }
  if (args.demo === true) await startDemo(config, log)
  await runSingle(file, config, log)
}

/** A one-screen summary for --check. */
function summary (file: string, c: Config): string {
  const lines = [
    `${file}: valid`,
    `  listen   ${c.listen.host}:${c.listen.port}${c.workers > 1 ? ` (${c.workers} workers)` : ''}`,
    `  admin    ${c.admin.enabled ? `${c.admin.host}:${c.admin.port}${c.admin.token !== null ? ' (token set)' : ''}` : 'disabled'}`,
    `  primary  ${c.primary}`,
    '  backends'
  ]
  for (const [name, b] of Object.entries(c.backends)) lines.push(`    - ${name}: ${b.url} (timeout ${b.timeoutMs} ms, ${b.connections} connections)${name === c.primary ? ' [primary]' : ''}`)
  lines.push(`  shadows  ${c.shadows.length === 0 ? 'none' : ''}`)
  for (const s of c.shadows) {
    lines.push(`    - ${s.name}: ${s.url ?? `backend ${s.backend!}`} sample ${s.sampleRate} by ${s.sampleBy}${s.enabled ? '' : ' (disabled)'}, ${s.match.methods.join('/')} ${s.match.paths.join(' ')}, timeout ${s.timeoutMs} ms, max ${s.maxConcurrency} in flight${s.llm.maxTokensPerMinute !== null ? `, ${s.llm.maxTokensPerMinute} tokens/min` : ''}${s.llm.stream === 'off' ? ', LLM stream off' : ''}`)
  }
  lines.push(`  compare  format ${c.compare.format}, tolerance abs ${c.compare.numeric.absTol} rel ${c.compare.numeric.relTol}, ${c.compare.ignore.length} ignore rules, noise ${c.compare.noise.enabled ? 'on' : 'off'}`)
  lines.push(`  log      ${c.log.level}${c.log.access ? ', access log on' : ''}`)
  if (c.chaos.enabled) {
    lines.push(`  chaos    enabled, client share cap ${c.chaos.maxClientShare}, max duration ${c.chaos.maxDurationMs} ms`)
    for (const e of c.chaos.experiments) lines.push(`    - ${e.name}: ${e.target}, ${e.faults.map((f) => f.kind).join(' + ')}, ${e.durationMs} ms${e.startAt !== undefined ? ` from ${e.startAt}` : ''}`)
  }
  return lines.join('\n') + '\n'
}

async function startDemo (config: Config, log: Logger): Promise<void> {
  if (isLlmDemo(config)) return await startLlmDemo(config, log)
  const port = (url: string): number => Number(new URL(url).port || 80)
  const primaryUrl = config.backends[config.primary]!.url
  await startDemoModel(port(primaryUrl), { role: 'primary' })
  const started = new Set([primaryUrl])
  for (const s of config.shadows) {
    const url = s.url ?? config.backends[s.backend!]!.url
    if (started.has(url)) continue
    started.add(url)
    await startDemoModel(port(url), { role: 'shadow', disagreeRate: 0.1 })
  }
  // The other backends (an experiment's candidate arm): model v2, 8 ms slower than v1, so the
  // demo experiment has a latency cost to weigh against its conversions.
  for (const b of Object.values(config.backends)) {
    if (started.has(b.url)) continue
    started.add(b.url)
    await startDemoModel(port(b.url), { role: 'shadow', disagreeRate: 0.1, delayMs: 8 })
  }
  log.info({ primary: primaryUrl, shadows: [...started].slice(1) }, 'demo model servers started')
  process.stderr.write(`penumbra demo: proxy http://${config.listen.host}:${config.listen.port}, admin http://${config.admin.host}:${config.admin.port}\n` +
    `  try: curl -s localhost:${config.listen.port}/v1/models/demo:predict -H 'content-type: application/json' -d '{"instances":[[5.1,3.5,1.4,0.2]]}'\n` +
    '  then: npm run demo:traffic\n')
}

/** The LLM demo (config/demo-llm.yaml): the shadows match `/v1/**` under an LLM-capable format. */
function isLlmDemo (config: Config): boolean {
  return config.shadows.length > 0 && config.shadows.every((s) => s.match.paths.includes('/v1/**')) && (config.compare.format === 'auto' || config.compare.format.startsWith('openai-'))
}

/** Demo OpenAI-compatible servers: the primary backend, and a candidate for each shadow. */
async function startLlmDemo (config: Config, log: Logger): Promise<void> {
  const port = (url: string): number => Number(new URL(url).port || 80)
  const primaryUrl = config.backends[config.primary]!.url
  await startDemoLlm(port(primaryUrl), { role: 'primary' })
  const started = new Set([primaryUrl])
  for (const s of config.shadows) {
    const url = s.url ?? config.backends[s.backend!]!.url
    if (started.has(url)) continue
    started.add(url)
    await startDemoLlm(port(url), { role: 'candidate' })
  }
  log.info({ primary: primaryUrl, candidates: [...started].slice(1) }, 'demo LLM servers started')
  process.stderr.write(`penumbra LLM demo: proxy http://${config.listen.host}:${config.listen.port}, admin http://${config.admin.host}:${config.admin.port}\n` +
    `  try: curl -sN localhost:${config.listen.port}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"Tell me about Paris"}]}'\n` +
    '  then: npm run demo:traffic:llm\n')
}

function reloadFrom (file: string, log: Logger): Config | null {
  try {
    return loadConfigFile(file)
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message]
    log.error({ problems }, 'config reload failed: kept the running config')
    return null
  }
}

async function runSingle (file: string, config: Config, log: Logger): Promise<void> {
  const app = new Penumbra(config, { logger: log })
  try {
    await app.start()
  } catch (err) {
    fail((err as Error).message, 1)
  }
  log.info({ listen: `${config.listen.host}:${app.port}`, admin: app.admin !== null ? `${config.admin.host}:${app.adminPort}` : null, primary: config.primary, shadows: config.shadows.map((s) => s.name) }, 'penumbra listening')
  void probeUpstreams(config, log)
  process.on('SIGHUP', () => {
    const next = reloadFrom(file, log)
    if (next === null) { app.metrics.configReloads.inc({ result: 'invalid' }); return }
    const notes = app.reload(next)
    app.metrics.configReloads.inc({ result: 'ok' })
    log.info({ notes, shadows: next.shadows.map((s) => s.name) }, 'config reloaded')
  })
  onStopSignal(async () => {
    log.info('shutting down: draining in-flight requests')
    await app.stop()
  })
}

function onStopSignal (stop: () => Promise<void>): void {
  let stopping = false
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    stop().then(() => process.exit(0), (err) => {
      process.stderr.write(`penumbra: shutdown failed after ${signal}: ${(err as Error).message}\n`)
      process.exit(1)
    })
  }
  process.on('SIGTERM', handler)
  process.on('SIGINT', handler)
}

async function runWorker (file: string, config: Config, log: Logger): Promise<void> {
  const inherited = process.env.PENUMBRA_WORKER_PRIMARY
  const canaryState = process.env.PENUMBRA_WORKER_CANARY
  const app = new Penumbra(config, {
    logger: log,
    admin: false,
    primary: inherited !== undefined ? JSON.parse(inherited) : null,
    // canary.controller: internal is decided by the primary process (its counters summed over us).
    canaryInPrimary: true,
    canaryState: canaryState !== undefined ? JSON.parse(canaryState) : null
  })
  // Let the primary's AggregatorRegistry collect this worker's registry.
  // eslint-disable-next-line no-new
  new AggregatorRegistry()
  AggregatorRegistry.setRegistries([app.metrics.registry])
  serveWorkerAdmin(app)
  try {
    await app.start()
  } catch (err) {
    fail((err as Error).message, 1)
  }
  process.on('SIGHUP', () => {}) // the primary reloads and tells the workers over IPC
  onStopSignal(() => app.stop())
  void file
}

async function runPrimary (file: string, config: Config, log: Logger, demo: boolean): Promise<void> {
  if (demo) await startDemo(config, log)
  // Fail early, in the primary, when the proxy port is taken: the workers would only loop.
  await probePort(config.listen.host, config.listen.port)
  const probe = new OriginProbe()
  let current = config
  // The primary's own metrics: it reads the config file, so it counts the reloads.
  const own = new Registry()
  const reloads = configReloadsCounter([own])
  const backend: ClusterBackend = new ClusterBackend(config, () => {
    const name = backend.primaryStatus.backend
    return probe.check(current.backends[name]!.url, name === 'primary' ? 'primary' : `primary backend "${name}"`)
  }, { statusPage: statusPageHtml, own, log })
  // canary.controller: internal with --workers: the controller runs here, on the workers' summed counters.
  let canary: CanaryController | null = null
  const setCanary = (c: Config): void => {
    if (c.canary === null || c.canary.controller !== 'internal') {
      canary?.close()
      canary = null
      backend.setCanaryController(null)
      return
    }
    if (canary !== null) { void canary.reconfigure(c.canary).catch((err: unknown) => log.error({ err }, 'canary reload failed')); return }
    const io = new ClusterCanaryIO(c.canary, async (op, args) => await backend.ask(op, args), async (b, who) => await backend.switchPrimary({ backend: b }, who))
    canary = new CanaryController(c.canary, io, { log, metrics: canaryMetricsOf() })
    backend.setCanaryController(canary)
  }
  let ownCanaryMetrics: CanaryMetrics | null = null
  const canaryMetricsOf = (): CanaryMetrics => (ownCanaryMetrics ??= canaryMetrics([own]))
  setCanary(config)
  let listening = 0
  cluster.on('listening', () => {
    // autoStart once every worker routes (a start before that would not reach them all).
    if (++listening === config.workers && canary !== null && current.canary?.autoStart === true) void canary.start('autoStart').catch((err: unknown) => log.error({ err }, 'canary autoStart failed'))
  })
  const admin = config.admin.enabled ? new AdminServer(backend, log, config.admin) : null
  if (admin !== null) {
    try {
      await listenOn(admin.server, config.admin.host, config.admin.port, 'admin')
    } catch (err) {
      fail((err as Error).message, 1)
    }
  }
  void probeUpstreams(config, log, probe)
  let stopping = false
  const fork = (): void => { cluster.fork({ PENUMBRA_WORKER_CONFIG: JSON.stringify(current), PENUMBRA_WORKER_PRIMARY: JSON.stringify(backend.primaryStatus), PENUMBRA_WORKER_CANARY: JSON.stringify(canary?.state ?? null) }) }
  // A worker that keeps dying is restarted with a growing delay (0.5 s doubling to 30 s), so a
  // crash loop does not eat the machine.
  let recentExits: number[] = []
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return
    const now = Date.now()
    recentExits = recentExits.filter((t) => now - t < 60_000)
    recentExits.push(now)
    const delay = Math.min(30_000, 500 * 2 ** (recentExits.length - 1))
    log.error({ worker: worker.id, code, signal, restartInMs: delay }, 'worker exited: starting a new one')
    setTimeout(() => { if (!stopping) fork() }, delay).unref()
  })
  for (let i = 0; i < config.workers; i++) fork()
  log.info({ listen: `${config.listen.host}:${config.listen.port}`, workers: config.workers, admin: `${config.admin.host}:${config.admin.port}` }, 'penumbra listening')

  process.on('SIGHUP', () => {
    const next = reloadFrom(file, log)
    if (next === null) { reloads.inc({ result: 'invalid' }); return }
    reloads.inc({ result: 'ok' })
    current = { ...next, workers: config.workers }
    const note = backend.setConfig(current)
    if (note !== null) log.warn(note)
    admin?.setAuth(next.admin)
    // `current`, not `next`: the workers keep the --workers count (a token budget is split by it).
    void backend.ask('reload', current).then((answers) => {
      const failed = answers.filter((a) => !a.ok).length
      if (failed > 0) log.error({ failed, workers: answers.length }, 'config reload did not reach every worker')
      else log.info({ workers: answers.length }, 'config reloaded in every worker')
      // After the workers reloaded: a changed canary restarts and tells them its first step.
      setCanary(current)
    })
  })
  onStopSignal(async () => {
    stopping = true
    canary?.close()
    admin?.stopping()
    const workers = Object.values(cluster.workers ?? {})
    await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
      if (w === undefined || w.isDead()) { resolve(); return }
      w.once('exit', () => resolve())
      w.process.kill('SIGTERM')
    })))
    await admin?.close()
    log.flush()
  })
}

function probePort (host: string, port: number): Promise<void> {
  const s = createServer()
  return listenOn(s, host, port, 'listen').then(() => new Promise<void>((resolve) => s.close(() => resolve())), (err: Error) => fail(err.message, 1))
}

main().catch((err: Error) => {
  fail(err.stack ?? err.message, 1)
})
