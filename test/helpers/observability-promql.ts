// Metric names referenced by a PromQL expression (dashboard panels, rules), without a PromQL
// parser: strings, label matchers, ranges and grouping clauses are stripped, then every remaining
// identifier that is not a function call, a keyword or part of a number is a metric name.

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan'])

/** Grafana's template variables: $var, ${var}, ${var:fmt}, [[var]], $__rate_interval. */
const GRAFANA_VARIABLE = /\$\{[^}]*\}|\$__\w+|\$\w+|\[\[\w+\]\]/g

/** The metric names a PromQL expression selects (deduplicated, in order of appearance). */
export function promqlMetricNames (expr: string): string[] {
  let s = expr.replace(GRAFANA_VARIABLE, '')
  // Grafana variable queries: label_values(<selector>, label) / label_values(label).
  const lv = /^\s*label_values\s*\(([\s\S]*)\)\s*$/.exec(s)
  if (lv !== null) {
    const args = lv[1]!
    const comma = args.lastIndexOf(',')
    if (comma < 0) return []
    s = args.slice(0, comma)
  }
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
  s = s.replace(/\{[^}]*\}/g, ' ')
  s = s.replace(/\[[^\]]*\]/g, ' ')
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  s = s.replace(/#[^\n]*/g, ' ')
  const out: string[] = []
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0]
    const at = m.index
    const before = at > 0 ? s[at - 1]! : ''
    if (/[0-9.]/.test(before)) continue // 1e6, 0.5e-3, offset 1d
    if (/^\s*\(/.test(s.slice(at + word.length))) continue // function call
    if (KEYWORDS.has(word.toLowerCase())) continue
    if (!out.includes(word)) out.push(word)
  }
  return out
}

/** Replaces Grafana variables with values Prometheus accepts, to run a panel's query for real. */
export function substituteGrafanaVariables (expr: string, vars: Record<string, string> = {}): string {
  return expr.replace(GRAFANA_VARIABLE, (v) => {
    const name = v.replace(/^\$\{?|\}$|^\[\[|\]\]$/g, '').split(':')[0]!
    if (name in vars) return vars[name]!
    if (name === '__rate_interval' || name === '__interval' || name === '__range') return '1m'
    return '.+'
  })
}

/** Every PromQL expression of a Grafana dashboard: panel targets (rows included), variable queries, annotations. */
export function dashboardExpressions (dashboard: unknown): Array<{ where: string, expr: string }> {
  const out: Array<{ where: string, expr: string }> = []
  const d = dashboard as {
    panels?: Array<{ title?: string, targets?: Array<{ expr?: string, refId?: string }>, panels?: unknown[] }>
    templating?: { list?: Array<{ name: string, type: string, query?: unknown, definition?: string }> }
    annotations?: { list?: Array<{ name?: string, expr?: string }> }
  }
  const walk = (panels: typeof d.panels): void => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (typeof t.expr === 'string') out.push({ where: `panel "${p.title ?? '?'}" target ${t.refId ?? '?'}`, expr: t.expr })
      walk(p.panels as typeof d.panels)
    }
  }
  walk(d.panels)
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query ?? v.definition
    if (typeof q === 'string') out.push({ where: `variable $${v.name}`, expr: q })
  }
  for (const a of d.annotations?.list ?? []) if (typeof a.expr === 'string') out.push({ where: `annotation "${a.name ?? '?'}"`, expr: a.expr })
  return out
}
