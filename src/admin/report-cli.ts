import { parseArgs } from 'node:util'
import { request } from 'undici'

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
  }
  return out.join('\n') + '\n'
}

interface QualityJson {
  models: Array<{ model: string, role: string, labelled: number, accuracy: { rate: number, lower: number, upper: number, correct: number } | null, regression: { n: number, mae: { value: number, lower: number, upper: number }, rmse: { value: number, lower: number, upper: number } } | null }>
  paired: Array<{ primary: string, shadow: string, verdict: string, summary: string }>
  coverage: { logged: number, labelled: number, rate: number | null, warnings: string[] }
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
  return out.join('\n') + '\n'
}

/** GET a JSON admin endpoint; null on 404 (an older penumbra, or the capability is absent). */
async function getJson (url: URL, token: string | undefined): Promise<unknown> {
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  if (res.statusCode !== 200) return null
  return JSON.parse(text)
}

/**
 * `penumbra report [--admin URL] [--token TOKEN] [--json]`; returns the exit code. The token
 * defaults to PENUMBRA_ADMIN_TOKEN (reads need it when the admin API has one).
 */
export async function runReport (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: { admin?: string, token?: string, json?: boolean }
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: { admin: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } }
    }).values
  } catch (err) {
    process.stderr.write(`penumbra report: ${(err as Error).message}\n`)
    return 2
  }
  const admin = parsed.admin ?? 'http://127.0.0.1:9901'
  const asJson = parsed.json === true
  const token = parsed.token ?? (env.PENUMBRA_ADMIN_TOKEN !== '' ? env.PENUMBRA_ADMIN_TOKEN : undefined)
  let url: URL
  try {
    url = new URL('/report', admin)
  } catch {
    process.stderr.write(`penumbra report: --admin: not a URL: ${admin}\n`)
    return 2
  }
  try {
    const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    const text = await res.body.text()
    if (res.statusCode !== 200) {
      const hint = res.statusCode === 401 ? ' (give the admin token: --token TOKEN or PENUMBRA_ADMIN_TOKEN)' : ''
      process.stderr.write(`penumbra report: ${url.href} answered ${res.statusCode}${hint}: ${text}\n`)
      return 1
    }
    const quality = await getJson(new URL('/quality', admin), token).catch(() => null) as QualityJson | null
    if (asJson) {
      process.stdout.write(quality === null ? text : JSON.stringify({ ...JSON.parse(text), quality }, null, 2) + '\n')
    } else {
      process.stdout.write(renderReport(JSON.parse(text)) + (quality === null ? '' : renderQuality(quality)))
    }
    return 0
  } catch (err) {
    process.stderr.write(`penumbra report: cannot reach ${url.href}: ${(err as Error).message}\n`)
    return 1
  }
}
