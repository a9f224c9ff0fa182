import type { ExperimentAnalysis, MetricAnalysis } from '../experiments/analysis.js'

/** An experiment as `GET /experiments` shows it (the fields the report reads). */
export interface ExperimentJson {
  name: string
  state?: { enabled: boolean, traffic: number }
  alpha: number
  minEffect: number
  variants: Array<{ name: string, backend?: string, weight: number, units: number, exposures?: number, requests?: number, errors?: number }>
  analysis: ExperimentAnalysis
  /** Set by `penumbra report --prometheus`: where the counts came from. */
  source?: string
}

const num = (x: number): string => Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : String(x)
const pct = (x: number): string => `${(x * 100).toFixed(2)}%`

/** An effect on its metric's scale, in words: percentage points, a lift, ms or a ratio. */
function effect (m: MetricAnalysis, x: number): string {
  switch (m.kind) {
    case 'binary':
    case 'errors': return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} pp`
    case 'mean': return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`
    case 'latency': return `${x >= 0 ? '+' : ''}${num(x)} ms`
    case 'latency_p99': return `×${num(x)}`
  }
}

function metricLine (m: MetricAnalysis): string[] {
  const head = `  ${m.metric.padEnd(12)} ${m.variant} vs control: `
  const v = m.verdict
  if (v === null || v.verdict === 'no_data') {
    const n = v === null ? '' : ` (n = ${v.n.treatment}/${v.n.control})`
    return [`${head}${m.state}${n}`]
  }
  const iv = (i: { lower: number, upper: number }): string => `[${effect(m, i.lower)}, ${effect(m, i.upper)}]`
  const lines = [
    `${head}${effect(m, v.estimate)}  ${Math.round((1 - v.alpha) * 100)}% always-valid CI ${iv(v.interval)} → ${m.state}`,
    `  ${''.padEnd(12)} n = ${v.n.treatment}/${v.n.control}; fixed-horizon CI ${iv(v.fixedInterval)}, p = ${num(v.fixedPValue)} (always-valid p = ${num(v.pValue)}); ${v.test}`
  ]
  // No spread yet (e.g. no error in either arm) projects nothing: say nothing rather than "0 more".
  if (m.state === 'inconclusive' && m.unitsNeeded !== null && m.unitsNeeded.total > 0) {
    const band = m.kind === 'latency_p99' ? `${num(m.minEffect * 100)}%` : effect(m, m.minEffect).replace(/^\+/, '')
    lines.push(`  ${''.padEnd(12)} about ${Number.isFinite(m.unitsNeeded.total) ? m.unitsNeeded.total : '∞'} more units to resolve ±${band} at 80% power`)
  }
  return lines
}

/** Renders experiments (`GET /experiments`) as readable text for `penumbra report`. */
export function renderExperiments (list: readonly ExperimentJson[]): string {
  const out: string[] = []
  for (const e of list) {
    const state = e.state === undefined ? '' : `, ${e.state.enabled ? 'enabled' : 'DISABLED (everyone on the control)'}, traffic ${pct(e.state.traffic)}`
    out.push('', `experiment ${e.name}${state}${e.source !== undefined ? ` (from ${e.source})` : ''}`)
    for (const v of e.variants) {
      const served = v.requests === undefined ? '' : `, requests ${v.requests}, 5xx ${v.errors ?? 0}`
      out.push(`  variant ${v.name.padEnd(12)} weight ${num(v.weight)}, units ${v.units}${served}`)
    }
    const srm = e.analysis.srm
    out.push(srm === null || !srm.tested
      ? '  sample ratio  not tested yet (too few units)'
      : `  sample ratio  χ² = ${num(srm.chiSquare)}, p = ${num(srm.pValue)}${srm.mismatch ? ' → SRM: every verdict is withheld (check assignment and logging)' : ' (ok)'}`)
    for (const m of e.analysis.metrics) out.push(...metricLine(m))
    for (const m of e.analysis.guardrails) out.push(...metricLine(m))
  }
  return out.join('\n') + (out.length > 0 ? '\n' : '')
}
