import { normaliseAnswer, type LlmApi } from '../llm/answer.js'
import type { PathRuleSpec } from '../rules.js'
import type { ResponseFormat } from './format.js'

/**
 * Rules of the LLM formats, on the normalised answer document (see `LlmAnswer`): ids,
 * timestamps, usage and the fingerprint change per call or measure cost, not the answer; `/model`
 * names the deployment, and a shadow is by definition another one (turn it back on with
 * `compare.paths: {"/model": {ignore: false}}`). Tool-call ids are random per call. The text is
 * compared by similarity.
 */
export const LLM_RULES: readonly PathRuleSpec[] = [
  { pattern: '/id', ignore: true },
  { pattern: '/created', ignore: true },
  { pattern: '/usage', ignore: true },
  { pattern: '/system_fingerprint', ignore: true },
  { pattern: '/model', ignore: true },
  { pattern: '/choices/*/message/tool_calls/*/id', ignore: true },
  { pattern: '/choices/*/message/content', text: true },
  { pattern: '/choices/*/message/refusal', text: true },
  { pattern: '/choices/*/text', text: true }
]

/**
 * `summarise` of an LLM format, for when the comparator has only one side's body (the other
 * failed to decode and the statuses differ): every choice of that side is a disagreement. With
 * both bodies the comparator compares the normalised answers itself (`compareAnswers`).
 */
export function llmSummarise (api: LlmApi): ResponseFormat['summarise'] {
  return (primary, shadow, cmp, tally) => {
    const p = normaliseAnswer(api, primary)
    const s = normaliseAnswer(api, shadow)
    if (p === null && s === null) return false
    const n = Math.max(p?.choices.length ?? 0, s?.choices.length ?? 0)
    for (let i = 0; i < n; i++) cmp.absent(tally)
    return true
  }
}
