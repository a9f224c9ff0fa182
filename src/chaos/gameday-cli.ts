import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { chaosExperimentSchema } from '../config/chaos-schema.js'

// `penumbra gameday` (issue #20): start a chaos experiment through the admin API, poll the
// Prometheus alerts API until the expected alert fires or the deadline passes, always stop the
// experiment (also on Ctrl-C and on error), and report time-to-detect, fault counts, pass/fail.

const USAGE = 'usage: penumbra gameday --scenario FILE --admin URL --prometheus URL [--token TOKEN] [--out FILE.json] [--poll-ms N]'

/** `5m`, `30s`, `1h`, `250ms`, or a number of milliseconds. */
const duration = z.union([
  z.number().int().min(1),
  z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/, 'must be a duration such as 30s, 5m, 1h')
]).transform((v) => typeof v === 'number' ? v : parseDuration(v))

function parseDuration (s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s)!
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h']
  return Math.round(Number(m[1]) * unit)
}

/** A scenario file: the experiment to run (a `POST /chaos/experiments` body) and the alert that must fire. */
export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  /** The experiment; its `durationMs` defaults to `within` plus a minute (it is stopped earlier when the alert fires). */
  experiment: z.looseObject({ name: z.string().min(1), durationMs: z.number().int().min(1).optional() }),
  expect: z.strictObject({
    alert: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'must be a Prometheus alert name'),
    /** The alert's labels must include these (e.g. `shadow: candidate`). */
    labels: z.record(z.string(), z.string()).default({}),
    within: duration
  })
})

export type Scenario = z.output<typeof scenarioSchema>

/** What a game day reports (printed, and written with --out). */
export interface GameDayResult {
  scenario: string
  experiment: string
  alert: string
  result: 'pass' | 'fail'
  reason: string
  startedAt: string | null
  stoppedAt: string | null
  detectedAt: string | null
  timeToDetectSeconds: number | null
  withinSeconds: number
  /** Faults injected by kind, summed over the workers (read just before the experiment was stopped). */
  faults: Record<string, number>
  /** Requests in scope that the blast-radius cap spared. */
  capped: number
}

class UsageError extends Error {}

interface Options { scenario: Scenario, admin: string, prometheus: string, token: string | null, out: string | null, pollMs: number }

function parseOptions (args: string[], env: NodeJS.ProcessEnv): Options {
  let v: { scenario?: string, admin?: string, prometheus?: string, token?: string, out?: string, 'poll-ms'?: string }
  try {
    v = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: { scenario: { type: 'string' }, admin: { type: 'string' }, prometheus: { type: 'string' }, token: { type: 'string' }, out: { type: 'string' }, 'poll-ms': { type: 'string' } }
    }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`)
  }
  for (const k of ['scenario', 'admin', 'prometheus'] as const) if (v[k] === undefined) throw new UsageError(`--${k} is required\n${USAGE}`)
  for (const k of ['admin', 'prometheus'] as const) if (!URL.canParse(v[k]!)) throw new UsageError(`--${k}: not a URL: ${v[k]!}`)
  const pollMs = v['poll-ms'] === undefined ? 5000 : Number(v['poll-ms'])
  if (!Number.isInteger(pollMs) || pollMs < 10) throw new UsageError('--poll-ms: must be a whole number >= 10')
  return { scenario: loadScenario(v.scenario!), admin: v.admin!.replace(/\/$/, ''), prometheus: v.prometheus!.replace(/\/$/, ''), token: v.token ?? (env.PENUMBRA_ADMIN_TOKEN || null), out: v.out ?? null, pollMs }
}

/** Reads and validates a scenario file; a UsageError names the file and each bad key. */
export function loadScenario (file: string): Scenario {
  let doc: unknown
  try {
    doc = parseYaml(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new UsageError(`${file}: ${(err as Error).message.split('\n')[0]}`)
  }
  const r = scenarioSchema.safeParse(doc)
  const issues = r.success ? [] : r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
  if (r.success) {
    // The experiment as the admin API will see it, so a bad one is named here, before anything starts.
    const e = chaosExperimentSchema.safeParse({ ...r.data.experiment, durationMs: r.data.experiment.durationMs ?? r.data.expect.within + 60_000 })
    if (e.success) return r.data
    for (const i of e.error.issues) issues.push(`experiment.${i.path.join('.') || '(root)'}: ${i.message}`)
  }
  throw new UsageError(`${file}: invalid scenario\n  ${issues.join('\n  ')}`)
}

async function http (method: string, url: string, token: string | null, body?: unknown): Promise<{ status: number, json: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (token !== null) headers.authorization = `Bearer ${token}`
  const res = await request(url, { method: method as 'GET', headers, body: body === undefined ? undefined : JSON.stringify(body), headersTimeout: 10_000, bodyTimeout: 10_000 })
  const text = await res.body.text()
  let json: unknown = null
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.statusCode, json }
}

interface PromAlert { labels: Record<string, string>, state: string, activeAt?: string }

async function firing (o: Options): Promise<PromAlert | null> {
  const r = await http('GET', `${o.prometheus}/api/v1/alerts`, null)
  if (r.status !== 200 || r.json?.status !== 'success') throw new Error(`GET ${o.prometheus}/api/v1/alerts: HTTP ${r.status}`)
  const alerts = (r.json.data?.alerts ?? []) as PromAlert[]
  const want = o.scenario.expect
  return alerts.find((a) => a.state === 'firing' && a.labels.alertname === want.alert && Object.entries(want.labels).every(([k, v]) => a.labels[k] === v)) ?? null
}

/** Runs one game day; resolves with its result (the experiment is stopped whatever happens). */
export async function runGameDay (o: Options, log: (line: string) => void, interrupted: Promise<string>): Promise<GameDayResult> {
  const s = o.scenario
  const name = s.experiment.name
  const within = s.expect.within
  const result: GameDayResult = {
    scenario: s.name,
    experiment: name,
    alert: s.expect.alert,
    result: 'fail',
    reason: '',
    startedAt: null,
    stoppedAt: null,
    detectedAt: null,
    timeToDetectSeconds: null,
    withinSeconds: within / 1000,
    faults: {},
    capped: 0
  }
  // An alert firing before the fault says nothing about the fault.
  if (await firing(o) !== null) {
    result.reason = `${s.expect.alert} was already firing before the experiment: the game day proves nothing`
    return result
  }
  const body = { ...s.experiment, durationMs: s.experiment.durationMs ?? within + 60_000 }
  const started = await http('POST', `${o.admin}/chaos/experiments`, o.token, body)
  if (started.status !== 201) {
    const err = new Error(`POST /chaos/experiments: HTTP ${started.status}: ${started.json?.message ?? JSON.stringify(started.json)}`)
    throw started.status === 400 ? new UsageError(err.message) : err
  }
  const t0 = Date.now()
  result.startedAt = new Date(t0).toISOString()
  log(`gameday ${s.name}: started experiment ${name}; waiting up to ${within / 1000}s for ${s.expect.alert} to fire`)
  try {
    const deadline = t0 + within
    let stop: string | null = null
    void interrupted.then((why) => { stop = why })
    for (;;) {
      if (stop !== null) { result.reason = `interrupted (${stop as string})`; break }
      let alert: PromAlert | null = null
      try {
        alert = await firing(o)
      } catch (err) {
        log(`gameday: ${(err as Error).message} (retrying)`)
      }
      if (alert !== null) {
        const now = Date.now()
        result.detectedAt = new Date(now).toISOString()
        result.timeToDetectSeconds = Math.round((now - t0) / 100) / 10
        result.result = 'pass'
        result.reason = `${s.expect.alert} fired after ${result.timeToDetectSeconds}s (within ${within / 1000}s)`
        break
      }
      if (Date.now() >= deadline) { result.reason = `${s.expect.alert} did not fire within ${within / 1000}s`; break }
      await Promise.race([new Promise((resolve) => setTimeout(resolve, Math.min(o.pollMs, Math.max(0, deadline - Date.now())))), interrupted])
    }
  } finally {
    await stopExperiment(o, name, result, log)
  }
  return result
}

async function stopExperiment (o: Options, name: string, result: GameDayResult, log: (line: string) => void): Promise<void> {
  try {
    const list = await http('GET', `${o.admin}/chaos/experiments`, o.token)
    const e = (list.json?.experiments as Array<{ name: string, injected: Record<string, number>, capped: number }> | undefined)?.find((x) => x.name === name)
    if (e !== undefined) { result.faults = e.injected; result.capped = e.capped }
  } catch (err) {
    log(`gameday: could not read the fault counts: ${(err as Error).message}`)
  }
  // Stopping is retried: a fault must not outlive its game day because of one failed call.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const r = await http('DELETE', `${o.admin}/chaos/experiments/${encodeURIComponent(name)}`, o.token)
      if (r.status === 200 || r.status === 404) break
      log(`gameday: DELETE /chaos/experiments/${name}: HTTP ${r.status}`)
    } catch (err) {
      log(`gameday: DELETE /chaos/experiments/${name}: ${(err as Error).message}`)
    }
  }
  result.stoppedAt = new Date().toISOString()
}

function summary (r: GameDayResult): string {
  const faults = Object.entries(r.faults).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'
  return [
    `gameday ${r.scenario}: ${r.result.toUpperCase()}`,
    `  ${r.reason}`,
    `  experiment     ${r.experiment} (${r.startedAt ?? '-'} .. ${r.stoppedAt ?? '-'})`,
    `  time to detect ${r.timeToDetectSeconds === null ? '-' : `${r.timeToDetectSeconds}s`} (alert ${r.alert}, within ${r.withinSeconds}s)`,
    `  faults         ${faults}${r.capped > 0 ? `; ${r.capped} spared by chaos.maxClientShare` : ''}`
  ].join('\n') + '\n'
}

/**
 * `penumbra gameday …`; returns the exit code: 0 pass, 1 fail (or an error), 2 bad arguments or
 * scenario. SIGINT/SIGTERM stop the experiment and end the run as a fail.
 */
export async function runGameDayCli (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let o: Options
  try {
    o = parseOptions(args, env)
  } catch (err) {
    process.stderr.write(`penumbra gameday: ${(err as Error).message}\n`)
    return 2
  }
  let onSignal: (s: NodeJS.Signals) => void = () => {}
  const interrupted = new Promise<string>((resolve) => { onSignal = (sig) => resolve(sig) })
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const log = (line: string): void => { process.stderr.write(line + '\n') }
  try {
    const r = await runGameDay(o, log, interrupted)
    process.stdout.write(summary(r))
    if (o.out !== null) writeFileSync(o.out, JSON.stringify(r, null, 2) + '\n')
    return r.result === 'pass' ? 0 : 1
  } catch (err) {
    process.stderr.write(`penumbra gameday: ${(err as Error).message}\n`)
    return err instanceof UsageError ? 2 : 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
