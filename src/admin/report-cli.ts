import { parseArgs } from 'node:util'
import { request } from 'undici'
import { renderLlm, type LlmSectionJson } from './report-cli-llm.js'
import { ConfigError, loadConfigFile } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { analyseExperiment } from '../experiments/analysis.js'
import { renderExperiments, type ExperimentJson } from './experiment-report.js'
import { experimentFromPrometheus, type ExperimentDefinition } from './prometheus-experiment.js'

interface Interval { rate: number, lower: number, upper: number, compared: number, disagreements: number }
interface ShadowReportJson {
  shadow: string
  mirrored: number
  requests: { ok: number, error: number, timeout: number } | null
  skipped: Record<string, number> | null
  comparisons: Record<string, number>
  /** Set when nothing was compared yet: why, in words. */
  noComparisons?: string | null
  disagreement: { requests: Interval, instances: Interval }
  topPaths: Array<{ path: string, count: number }>
  latencyMs: { primary: { p50: number | null, p99: number | null }, shadow: { p50: number | null, p99: number | null } }
  llm?: LlmSectionJson | null
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`
const ms = (x: number | null): string => (x === null ? '-' : `${x.toFixed(x < 10 ? 2 : 1)} ms`)

/** Renders `GET /report` as a readable table (`penumbra report`). */
export function renderReport (report: { generatedAt: string, shadows: ShadowReportJson[] }): string {
  const out: string[] = [`penumbra report, ${report.generatedAt}`]
  if (report.shadows.length === 0) out.push('', 'no shadows configured')
  for (const s of report.shadows) {
    const c = s.comparisons
    const r = s.disagreement.requests
    const i = s.disagreement.instances
    const skipped = Object.entries(s.skipped ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'
    out.push('',
      `shadow ${s.shadow}`,
      `  mirrored            ${s.mirrored} (ok ${s.requests?.ok ?? 0}, error ${s.requests?.error ?? 0}, timeout ${s.requests?.timeout ?? 0}); skipped: ${skipped}`,
      `  comparisons         ${c.total}: match ${c.match}, mismatch ${c.mismatch}, shadow_error ${c.shadow_error}, shadow_timeout ${c.shadow_timeout}, unparseable ${c.unparseable}, unsupported ${c.unsupported ?? 0}`,
      // A rate over nothing compared reads like agreement: say why there is none instead.
      ...(r.compared === 0
        ? [`  disagreement        ${s.noComparisons ?? 'no comparisons yet'}`]
        : [
            `  request disagreement   ${pct(r.rate).padStart(7)}  95% CI [${pct(r.lower)}, ${pct(r.upper)}]  (${r.disagreements}/${r.compared})`,
            `  instance disagreement  ${pct(i.rate).padStart(7)}  95% CI [${pct(i.lower)}, ${pct(i.upper)}]  (${i.disagreements}/${i.compared})`
          ]),
      `  latency p50/p99     primary ${ms(s.latencyMs.primary.p50)} / ${ms(s.latencyMs.primary.p99)}, shadow ${ms(s.latencyMs.shadow.p50)} / ${ms(s.latencyMs.shadow.p99)}`,
      '  top differing paths' + (s.topPaths.length === 0 ? ' none' : ''))
    for (const p of s.topPaths) out.push(`    ${String(p.count).padStart(8)}  ${p.path}`)
    if (s.llm != null) out.push(...renderLlm(s.shadow, s.llm))
  }
  return out.join('\n') + '\n'
}

interface QualityJson {
  models: Array<{ model: string, role: string, labelled: number, accuracy: { rate: number, lower: number, upper: number, correct: number } | null, regression: { n: number, mae: { value: number, lower: number, upper: number }, rmse: { value: number, lower: number, upper: number } } | null }>
  paired: Array<{ primary: string, shadow: string, verdict: string, summary: string }>
  coverage: { logged: number, labelled: number, rate: number | null, warnings: string[] }
  /** Output drift (GET /drift's shape), null when drift is not configured. */
  drift?: { reference: string, thresholds: { psi: { warn: number, alert: number } }, models: Array<{ model: string, state: string, psi: number | null, js: number | null, window: { n: number }, reference: { n: number } | null }> } | null
  /** Model assertions, null when none is configured. */
  assertions?: Array<{ name: string, rule: string, checked: number, violations: number, models: Array<{ model: string, checked: number, violations: number }> }> | null
}

const num = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '-')

/** Renders `GET /quality` (online quality from labels) as the report's second part. */
export function renderQuality (q: QualityJson): string {
  const out: string[] = ['', 'quality (labels posted to POST /feedback)']
  if (q.models.length === 0) out.push('  no labelled predictions yet')
  for (const m of q.models) {
    const acc = m.accuracy === null ? '' : `accuracy ${pct(m.accuracy.rate)}  95% CI [${pct(m.accuracy.lower)}, ${pct(m.accuracy.upper)}]  (${m.accuracy.correct}/${m.labelled})`
    const reg = m.regression === null ? '' : `MAE ${num(m.regression.mae.value)} [${num(m.regression.mae.lower)}, ${num(m.regression.mae.upper)}], RMSE ${num(m.regression.rmse.value)} [${num(m.regression.rmse.lower)}, ${num(m.regression.rmse.upper)}]  (n ${m.regression.n})`
    out.push(`  ${m.model.padEnd(20)} ${m.role.padEnd(8)} ${[acc, reg].filter((s) => s !== '').join('; ') || 'no judged label'}`)
  }
  for (const p of q.paired) out.push(`  ${p.primary} vs ${p.shadow}: ${p.summary}`)
  const c = q.coverage
  out.push(`  coverage ${c.rate === null ? '-' : pct(c.rate)} (${c.labelled} of ${c.logged} logged predictions labelled)`)
  for (const w of c.warnings) out.push(`  warning: ${w}`)
  const d = q.drift
  if (d != null) {
    out.push('', `drift (against the ${d.reference} reference; PSI warn ${d.thresholds.psi.warn}, alert ${d.thresholds.psi.alert})`)
    if (d.models.length === 0) out.push('  no predictions seen yet')
    for (const m of d.models) {
      const stats = m.psi === null ? '' : `  PSI ${num(m.psi)}, JS ${num(m.js ?? NaN)}`
      out.push(`  ${m.model.padEnd(20)} ${m.state.padEnd(12)}${stats}  (window n ${m.window.n}, reference n ${m.reference?.n ?? 0})`)
    }
  }
  const a = q.assertions
  if (a != null) {
    out.push('', 'model assertions')
    for (const x of a) {
      const share = x.checked === 0 ? '-' : pct(x.violations / x.checked)
      out.push(`  ${x.name.padEnd(20)} ${x.rule.padEnd(8)} ${x.violations} of ${x.checked} instances violated (${share})` +
        (x.models.length > 1 ? `: ${x.models.map((m) => `${m.model} ${m.violations}/${m.checked}`).join(', ')}` : ''))
    }
  }
  return out.join('\n') + '\n'
}

/** GET `path` of the admin API; the parsed JSON, or an error message (exit 1). */
async function adminGet (admin: string, path: string, token: string | undefined): Promise<{ ok: true, value: unknown, text: string } | { ok: false, status: number, message: string }> {
  const url = new URL(path, admin)
  try {
    const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    const text = await res.body.text()
    if (res.statusCode !== 200) {
      const hint = res.statusCode === 401 ? ' (give the admin token: --token TOKEN or PENUMBRA_ADMIN_TOKEN)' : ''
      return { ok: false, status: res.statusCode, message: `${url.href} answered ${res.statusCode}${hint}: ${text}` }
    }
    return { ok: true, value: JSON.parse(text), text }
  } catch (err) {
    return { ok: false, status: 0, message: `cannot reach ${url.href}: ${(err as Error).message}` }
  }
}

/**
 * `penumbra report [--admin URL] [--token TOKEN] [--json]`: the shadows and the experiments of a
 * running penumbra. With `--prometheus URL --experiment NAME`: that experiment's verdicts from
 * the counters Prometheus scraped from every replica, summed; its definition (variants, weights,
 * metrics, alpha, minEffect) from `--config FILE` or, by default, from the admin API. Returns the
 * exit code. The token defaults to PENUMBRA_ADMIN_TOKEN (reads need it when the admin API has one).
 */
export async function runReport (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: { admin?: string, token?: string, json?: boolean, prometheus?: string, experiment?: string, config?: string }
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: { admin: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, prometheus: { type: 'string' }, experiment: { type: 'string' }, config: { type: 'string' } }
    }).values
  } catch (err) {
    return usage((err as Error).message)
  }
  const admin = parsed.admin ?? 'http://127.0.0.1:9901'
  const asJson = parsed.json === true
  const token = parsed.token ?? (env.PENUMBRA_ADMIN_TOKEN !== '' ? env.PENUMBRA_ADMIN_TOKEN : undefined)
  for (const [key, value] of [['admin', admin], ['prometheus', parsed.prometheus]] as const) {
    if (value === undefined) continue
    try {
      void new URL(value)
    } catch {
      return usage(`--${key}: not a URL: ${value}`)
    }
  }
  if ((parsed.prometheus === undefined) !== (parsed.experiment === undefined)) return usage('--prometheus and --experiment go together')
  if (parsed.config !== undefined && parsed.prometheus === undefined) return usage('--config is only read with --prometheus')
  if (parsed.prometheus !== undefined) return await prometheusReport(parsed.prometheus, parsed.experiment!, parsed.config, admin, token, asJson)

  const report = await adminGet(admin, '/report', token)
  if (!report.ok) return failed(report.message)
  const experiments = await adminGet(admin, '/experiments', token)
  // An older penumbra has no /experiments: the shadow report alone is still a report.
  const list = experiments.ok ? experiments.value as ExperimentJson[] : []
  if (!experiments.ok && experiments.status !== 404) return failed(experiments.message)
  const q = await adminGet(admin, '/quality', token)
  const quality = q.ok ? q.value as QualityJson : null
  if (asJson) {
    process.stdout.write(JSON.stringify({ ...(report.value as object), experiments: list, ...(quality === null ? undefined : { quality }) }, null, 2) + '\n')
    return 0
  }
  process.stdout.write(renderReport(report.value as Parameters<typeof renderReport>[0]) + renderExperiments(list) + (quality === null ? '' : renderQuality(quality)))
  return 0
}

async function prometheusReport (prometheus: string, name: string, configFile: string | undefined, admin: string, token: string | undefined, asJson: boolean): Promise<number> {
  let def: ExperimentDefinition
  if (configFile !== undefined) {
    let config: Config
    try {
      config = loadConfigFile(configFile)
    } catch (err) {
      return usage(err instanceof ConfigError ? err.message : `--config: ${(err as Error).message}`)
    }
    const found = config.experiments.find((e) => e.name === name)
    if (found === undefined) return usage(`--experiment: no experiment named "${name}" in ${configFile}`)
    const total = found.variants.reduce((a, v) => a + v.weight, 0)
    def = { name, alpha: found.alpha, minEffect: found.minEffect, metrics: found.metrics, variants: found.variants.map((v) => ({ name: v.name, weight: v.weight / total })) }
  } else {
    const one = await adminGet(admin, `/experiments/${encodeURIComponent(name)}`, token)
    if (!one.ok) return failed(`${one.message}${one.status === 0 ? ' (or give the experiment\'s definition with --config FILE)' : ''}`)
    def = one.value as ExperimentDefinition
  }
  let described
  try {
    described = await experimentFromPrometheus(prometheus, def)
  } catch (err) {
    return failed(`cannot read ${prometheus}: ${(err as Error).message}`)
  }
  const ex = { ...described, analysis: analyseExperiment(described) }
  if (asJson) process.stdout.write(JSON.stringify(ex, null, 2) + '\n')
  else process.stdout.write(`penumbra report, ${new Date().toISOString()}\n` + renderExperiments([ex]))
  return 0
}

function usage (message: string): number {
  process.stderr.write(`penumbra report: ${message}\n`)
  return 2
}

function failed (message: string): number {
  process.stderr.write(`penumbra report: ${message}\n`)
  return 1
}
