// The LLM lines of `penumbra report` (issue #16), under each shadow that saw LLM answers.

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`
const ms = (x: number | null): string => (x === null ? '-' : `${x.toFixed(x < 10 ? 2 : 1)} ms`)

interface Quantiles { p50: number | null, p99: number | null }
interface TokensJson { input: number | null, output: number | null, answersWithoutUsage: number }
/** The `llm` section of a shadow in `GET /report` (src/compare/llm/llm-report.ts). */
export interface LlmSectionJson {
  agreement: Record<string, { agree: number, disagree: number, compared: number, rate: number, lower: number, upper: number }>
  timeToFirstTokenMs: { samples: number, primary: Quantiles, shadow: Quantiles, note: string | null }
  tokensPerAnswer: { answers: number, primary: TokensJson, shadow: TokensJson }
  settings: { stream: string, budget: { tokensPerMinute: number, spentThisMinute: number } | null } | null
}

const tok = (x: number | null): string => (x === null ? '-' : String(x))

/** A shadow's LLM lines: each agreement kind with its interval, TTFT and tokens beside the primary's. */
export function renderLlm (name: string, l: LlmSectionJson): string[] {
  const out = ['  LLM agreement (disagreement, 95% Wilson CI, n)']
  const kinds = Object.entries(l.agreement)
  if (kinds.length === 0) out.push('    none compared yet')
  for (const [kind, k] of kinds) out.push(`    ${kind.padEnd(14)} ${pct(k.rate).padStart(7)}  [${pct(k.lower)}, ${pct(k.upper)}]  (${k.disagree}/${k.compared})`)
  const t = l.timeToFirstTokenMs
  out.push(`  TTFT p50/p99        primary ${ms(t.primary.p50)} / ${ms(t.primary.p99)}, ${name} ${ms(t.shadow.p50)} / ${ms(t.shadow.p99)} (${t.samples} requests)${t.note !== null ? `; ${t.note}` : ''}`)
  const a = l.tokensPerAnswer
  out.push(`  tokens per answer   primary in ${tok(a.primary.input)} out ${tok(a.primary.output)}, ${name} in ${tok(a.shadow.input)} out ${tok(a.shadow.output)} (${a.answers} answers${a.primary.answersWithoutUsage + a.shadow.answersWithoutUsage > 0 ? `; without usage: primary ${a.primary.answersWithoutUsage}, ${name} ${a.shadow.answersWithoutUsage}` : ''})`)
  const b = l.settings?.budget
  if (b != null) out.push(`  token budget        ${b.spentThisMinute} of ${b.tokensPerMinute} spent this minute`)
  return out
}
