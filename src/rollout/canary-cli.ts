import { parseArgs } from 'node:util'
import { request } from 'undici'
import { canarySchema, type CanaryConfig } from '../config/canary-schema.js'
import { createLogger, type Logger } from '../log/logger.js'
import { CanaryController, type DecisionRecord } from './canary-controller.js'
import { PrometheusCanaryIO } from './prometheus-io.js'

/** Options of the external controller. */
export interface ExternalCanaryOptions {
  prometheus: string
  admins: string[]
  token?: string
  /** Extra label matchers for every query, e.g. `job="penumbra"`. */
  selector?: string
  log?: Logger
  /** Told every decision (tests, the CLI's output). */
  onDecision?: (d: DecisionRecord) => void
}

/** How a run ended. */
export interface ExternalCanaryResult {
  phase: string
  reason: string | null
  decisions: DecisionRecord[]
}

async function getJson (url: string, token: string | undefined): Promise<unknown> {
  const res = await request(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}${res.statusCode === 401 ? ' (give the admin token: --token TOKEN or PENUMBRA_ADMIN_TOKEN)' : ''}: ${text.slice(0, 300)}`)
  return JSON.parse(text)
}

/**
 * Runs one canary from outside the proxies: reads its config from the first replica (`GET
 * /config`, which must say `canary.controller: external`), starts it from the first step on
 * every replica, analyses every `intervalMs` from Prometheus with the same engine as the
 * in-process controller, and returns when it is promoted, completed, rolled back or paused.
 */
export async function runExternalCanary (opts: ExternalCanaryOptions): Promise<ExternalCanaryResult> {
  const log = opts.log ?? createLogger({ level: 'info' })
  const first = opts.admins[0]
  if (first === undefined) throw new Error('--admin: give every replica\'s admin URL (at least one)')
  const config = await getJson(`${first}/config`, opts.token) as { canary?: unknown, primary?: string }
  if (config.canary === null || config.canary === undefined) throw new Error(`${first}: no canary configured (add a \`canary:\` section)`)
  const cfg: CanaryConfig = canarySchema.parse(config.canary)
  if (cfg.controller !== 'external') throw new Error(`${first}: canary.controller is ${cfg.controller}: set controller: external, or the proxies decide by themselves`)
  const primary = await getJson(`${first}/primary`, opts.token) as { backend: string }
  const baseline = cfg.baseline ?? primary.backend
  const io = new PrometheusCanaryIO({ prometheus: opts.prometheus, admins: opts.admins, token: opts.token, cfg, baseline, selector: opts.selector })
  const controller = new CanaryController(cfg, io, { log, autonomous: true, unref: false })
  const decisions: DecisionRecord[] = []
  const terminal = new Set(['promoted', 'completed', 'rolled_back', 'paused'])
  await new Promise<void>((resolve, reject) => {
    const watch = (): void => {
      controller.nextDecision().then((d) => {
        decisions.push(d)
        opts.onDecision?.(d)
        if (terminal.has(controller.state.phase)) resolve()
        else watch()
      }, reject)
    }
    watch()
    controller.start('penumbra canary').catch(reject)
  })
  controller.close()
  return { phase: controller.state.phase, reason: controller.state.reason, decisions }
}

/**
 * `penumbra canary --prometheus URL --admin URL [--admin URL …] [--token T] [--selector S]`;
 * returns the exit code: 0 promoted or completed, 1 rolled back or paused, 2 bad arguments.
 * Each decision is printed as one JSON line.
 */
export async function runCanaryCli (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: { prometheus?: string, admin?: string[], token?: string, selector?: string }
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: { prometheus: { type: 'string' }, admin: { type: 'string', multiple: true }, token: { type: 'string' }, selector: { type: 'string' } }
    }).values
  } catch (err) {
    process.stderr.write(`penumbra canary: ${(err as Error).message}\n`)
    return 2
  }
  if (parsed.prometheus === undefined || parsed.admin === undefined || parsed.admin.length === 0) {
    process.stderr.write('penumbra canary: give --prometheus URL and --admin URL (one per replica)\n')
    return 2
  }
  for (const u of [parsed.prometheus, ...parsed.admin]) {
    if (!URL.canParse(u)) { process.stderr.write(`penumbra canary: not a URL: ${u}\n`); return 2 }
  }
  const token = parsed.token ?? (env.PENUMBRA_ADMIN_TOKEN !== '' ? env.PENUMBRA_ADMIN_TOKEN : undefined)
  try {
    const r = await runExternalCanary({ prometheus: parsed.prometheus, admins: parsed.admin, token, selector: parsed.selector, log: createLogger({ level: 'info' }) })
    return r.phase === 'promoted' || r.phase === 'completed' ? 0 : 1
  } catch (err) {
    process.stderr.write(`penumbra canary: ${(err as Error).message}\n`)
    return 1
  }
}
