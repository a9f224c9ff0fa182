// Shared plumbing of the observability tests (issue #5): a real loopback stack (primary, a
// disagreeing shadow, penumbra in-process), traffic with known mismatches, external tools
// (promtool, prometheus, chromium) with skip-or-fail semantics, and bounded child processes.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { Penumbra } from '../../src/index.js'
import { validateConfig } from '../../src/config/load.js'
import { predict, startDemoModel } from '../../src/demo/model-server.js'
import { freePort, waitForValue } from './common.js'

/** The repository root (this file runs from .build/test/helpers/ or test/helpers/). */
export const ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'config', 'prometheus'))) return dir
    dir = dirname(dir)
  }
  return process.cwd()
})()

export const RULES_FILE = join(ROOT, 'config', 'prometheus', 'penumbra.rules.yml')
export const RULES_TEST_FILE = join(ROOT, 'config', 'prometheus', 'penumbra.rules.test.yml')
export const DASHBOARD_FILE = join(ROOT, 'config', 'grafana', 'penumbra.json')

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1'

// --- External tools ------------------------------------------------------------------------------

/** Finds an executable on PATH (or an absolute path); null when missing. */
export function findExecutable (name: string, extra: string[] = []): string | null {
  const candidates = name.includes('/') ? [name] : [...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, name)), ...extra]
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK)
      return c
    } catch {}
  }
  return null
}

/**
 * A tool a test needs. On a developer machine without it, the test is skipped with `skip` (a
 * message saying how to install it); in CI (CI=true) it is never skipped: the test runs and
 * `path()` throws, so a missing tool fails the build.
 */
export interface Tool { path (): string, skip: string | false }

export function tool (name: string, install: string, extra: string[] = []): Tool {
  const found = findExecutable(name, extra)
  const message = `${name} not found on PATH; install it (${install}) to run this test`
  return {
    skip: found === null && !IN_CI ? message : false,
    path () {
      if (found === null) throw new Error(`${message}. CI=true, so this is a failure, not a skip (.ci/run installs it).`)
      return found
    }
  }
}

export const PROMTOOL = tool('promtool', 'apt-get install prometheus')
export const PROMETHEUS = tool('prometheus', 'apt-get install prometheus')
export const CHROMIUM = tool(process.env.PENUMBRA_CHROMIUM ?? '/usr/bin/chromium', 'apt-get install chromium')

/** Runs a command to completion, bounded in time; never rejects (look at `code`). */
export function run (cmd: string, args: string[], opts: { cwd?: string, timeoutMs?: number, input?: string } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : null
      resolvePromise({ code, stdout: String(stdout), stderr: String(stderr) + (err !== null && code === null ? `\n${err.message}` : '') })
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

/** A long-running child process (prometheus) that is always stopped: SIGTERM, then SIGKILL. */
export class Daemon {
  readonly child: ChildProcess
  output = ''
  readonly exited: Promise<number | null>

  constructor (cmd: string, args: string[], opts: { cwd?: string } = {}) {
    this.child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    const keep = (c: Buffer): void => {
      this.output += c.toString('utf8')
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000)
    }
    this.child.stdout?.on('data', keep)
    this.child.stderr?.on('data', keep)
    this.exited = new Promise((resolvePromise) => {
      this.child.once('exit', (code) => resolvePromise(code))
      this.child.once('error', (err) => {
        this.output += `\nspawn error: ${err.message}`
        resolvePromise(null)
      })
    })
  }

  get running (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined
  }

  async stop (graceMs = 5000): Promise<void> {
    if (!this.running) return
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => { if (this.running) this.child.kill('SIGKILL') }, graceMs)
    await this.exited
    clearTimeout(timer)
  }
}

export { freePort, sleep, tempDir, waitForValue } from './common.js'

// --- HTTP ----------------------------------------------------------------------------------------

export async function getJson<T = unknown> (url: string, timeoutMs = 5000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  const text = await res.text()
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}: ${text.slice(0, 300)}`)
  return JSON.parse(text) as T
}

export async function getText (url: string, timeoutMs = 5000): Promise<{ status: number, contentType: string, body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() }
}

function listen (server: Server): Promise<Server> {
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolvePromise(server))
  })
}

function portOf (s: Server): number {
  return (s.address() as { port: number }).port
}

function closeServer (s: Server): Promise<void> {
  return new Promise((resolvePromise) => {
    s.close(() => resolvePromise())
    s.closeAllConnections()
  })
}

/** An instance the custom shadow answers with markup in a field, to prove the page escapes it. */
export const XSS_INSTANCE = [6.66, 6.66, 6.66, 6.66]
export const XSS_TEXT = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

/**
 * A shadow model like the demo one (KServe v1, disagreeing on `disagreeRate` of inputs), which
 * also answers XSS_INSTANCE with an extra field holding markup and an odd key (`a/b~c`), so the
 * page's escaping and JSON Pointer escaping are exercised with real model output.
 */
export function startHostileShadow (disagreeRate: number): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let doc: { instances?: unknown }
      try {
        doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { instances?: unknown }
      } catch {
        doc = {}
      }
      const instances = Array.isArray(doc.instances) ? doc.instances as number[][] : []
      const predictions: Array<Record<string, unknown>> = instances.map((x) => predict(x, { role: 'shadow', disagreeRate }))
      const body: Record<string, unknown> = { model_name: 'demo', model_version: 'v2', predictions }
      if (instances.some((x) => JSON.stringify(x) === JSON.stringify(XSS_INSTANCE))) {
        body.note = XSS_TEXT
        body['a/b~c'] = '</pre><b>bold</b>'
      }
      const text = JSON.stringify(body)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    })
  })
  return listen(server)
}

// --- The stack -----------------------------------------------------------------------------------

export interface Stack {
  app: Penumbra
  proxyUrl: string
  adminUrl: string
  primary: Server
  shadows: Server[]
  stop (): Promise<void>
}

/**
 * Starts a primary demo model, the given shadows (a disagreeing demo model `v2` by default; `hostile`
 * adds markup to some answers; `dead` points at a closed port) and penumbra in-process, everything
 * on 127.0.0.1 port 0, log level silent.
 */
export async function startStack (opts: { shadows?: Array<{ name: string, server: 'demo' | 'hostile' | 'dead', disagreeRate?: number }>, adminToken?: string } = {}): Promise<Stack> {
  const specs = opts.shadows ?? [{ name: 'v2', server: 'demo' as const, disagreeRate: 0.3 }]
  const started: Server[] = []
  try {
    const primary = await startDemoModel(0, { role: 'primary' })
    started.push(primary)
    const shadowServers: Server[] = []
    const shadowConfigs: unknown[] = []
    for (const s of specs) {
      if (s.server === 'dead') {
        // Nothing listens there: every mirrored request ends in error (refused).
        shadowConfigs.push({ name: s.name, url: `http://127.0.0.1:${await freePort()}`, sampleRate: 1, match: { methods: ['POST'], paths: ['/v1/models/*'] }, timeoutMs: 2000 })
        continue
      }
      const srv = s.server === 'hostile' ? await startHostileShadow(s.disagreeRate ?? 0.3) : await startDemoModel(0, { role: 'shadow', disagreeRate: s.disagreeRate ?? 0.3 })
      started.push(srv)
      shadowServers.push(srv)
      shadowConfigs.push({
        name: s.name,
        url: `http://127.0.0.1:${portOf(srv)}`,
        sampleRate: 1,
        match: { methods: ['POST'], paths: ['/v1/models/*'] },
        timeoutMs: 5000
      })
    }
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0, token: opts.adminToken ?? null },
      primary: { url: `http://127.0.0.1:${portOf(primary)}` },
      shadows: shadowConfigs,
      compare: {
        format: 'auto',
        ignore: ['/model_version', '/predictions/*/latency_ms'],
        numeric: { absTol: 1e-6, relTol: 1e-3 },
        mismatches: { keep: 500 }
      },
      log: { level: 'silent', access: false },
      shutdown: { timeoutMs: 3000 }
    })
    const app = new Penumbra(config)
    await app.start()
    return {
      app,
      proxyUrl: `http://127.0.0.1:${app.port}`,
      adminUrl: `http://127.0.0.1:${app.adminPort}`,
      primary,
      shadows: shadowServers,
      async stop () {
        await app.stop()
        await Promise.all(started.map(closeServer))
      }
    }
  } catch (err) {
    await Promise.all(started.map(closeServer))
    throw err
  }
}

/** The i-th instance of the traffic: deterministic iris-like inputs spread over all classes. */
export function instance (i: number): number[] {
  const r = (k: number): number => Math.round((((i * 7919 + k * 104729) % 1000) / 1000) * 100) / 100
  return [4.3 + 3.6 * r(1), 2 + 2.4 * r(2), 1 + 5.9 * r(3), 0.1 + 2.4 * r(4)].map((v) => Math.round(v * 100) / 100)
}

/**
 * Sends `requests` predict requests through the proxy, `batch` instances each, `concurrency` at a
 * time; returns the number of 200 answers. `extra` instances are added to the first request.
 */
export async function sendTraffic (proxyUrl: string, requests: number, opts: { batch?: number, concurrency?: number, offset?: number, extra?: number[][] } = {}): Promise<number> {
  const batch = opts.batch ?? 2
  const concurrency = opts.concurrency ?? 8
  const offset = opts.offset ?? 0
  let next = 0
  let ok = 0
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++
      if (i >= requests) return
      const instances = Array.from({ length: batch }, (_, k) => instance(offset + i * batch + k))
      if (i === 0 && opts.extra !== undefined) instances.push(...opts.extra)
      const res = await fetch(`${proxyUrl}/v1/models/demo:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances }),
        signal: AbortSignal.timeout(10_000)
      })
      await res.arrayBuffer()
      if (res.status === 200) ok++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return ok
}

export interface ReportShadow {
  shadow: string
  mirrored: number
  requests: { ok: number, error: number, timeout: number } | null
  skipped: Record<string, number> | null
  comparisons: { match: number, mismatch: number, shadow_error: number, shadow_timeout: number, unparseable: number, total: number }
  comparisonsDropped?: Record<string, number>
  disagreement: {
    requests: { rate: number, lower: number, upper: number, compared: number, disagreements: number }
    instances: { rate: number, lower: number, upper: number, compared: number, disagreements: number }
  }
  topPaths: Array<{ path: string, count: number }>
  latencyMs: { primary: { p50: number | null, p99: number | null }, shadow: { p50: number | null, p99: number | null } }
}
export interface Report { generatedAt: string, shadows: ReportShadow[] }

/** Waits until every shadow has finished comparing `mirrored` requests (and nothing is pending). */
export async function waitSettled (adminUrl: string, mirrored: number, timeoutMs = 15_000): Promise<Report> {
  return waitForValue(async () => {
    const r = await getJson<Report & { comparisonsPending?: number }>(`${adminUrl}/report`)
    const done = r.shadows.every((s) => s.mirrored >= mirrored && s.comparisons.total >= mirrored) && (r.comparisonsPending ?? 0) === 0
    return done ? r : undefined
  }, timeoutMs, `all ${mirrored} comparisons to finish`, 100)
}

/** Metric sample names (as exposed, e.g. `x_bucket`) and family names (`# TYPE`) of a scrape. */
export function metricNames (exposition: string): { samples: Set<string>, families: Set<string> } {
  const samples = new Set<string>()
  const families = new Set<string>()
  for (const line of exposition.split('\n')) {
    if (line.startsWith('# TYPE ')) families.add(line.split(' ')[2]!)
    else if (line !== '' && !line.startsWith('#')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)
      if (m !== null) samples.add(m[1]!)
    }
  }
  return { samples, families }
}

export interface RuleGroup { name: string, rules: Array<{ record?: string, alert?: string, expr: string, for?: string, labels?: Record<string, string>, annotations?: Record<string, string> }> }

/** The groups of a Prometheus rules file. */
export function ruleGroups (rulesYaml: string): RuleGroup[] {
  return (parseYaml(rulesYaml) as { groups: RuleGroup[] }).groups
}

/** Recording rule names (`record:`) in a rules file. */
export function recordingRuleNames (rulesYaml: string): Set<string> {
  return new Set(ruleGroups(rulesYaml).flatMap((g) => g.rules.map((r) => r.record).filter((r): r is string => r !== undefined)))
}

export function resolveRoot (...parts: string[]): string {
  return resolve(ROOT, ...parts)
}
