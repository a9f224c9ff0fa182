import type { DiffSink, JsonDiffer } from '../json-diff.js'
import type { InstanceTally } from '../instance.js'
import type { LlmAnswer, LlmApi, LlmChoice, LlmUsage } from './answer.js'
import { satisfies, type JsonRequirement } from './json-valid.js'

/** The agreement kinds of an LLM comparison (`penumbra_llm_agreement_total{kind}`). */
export const LLM_KINDS = ['content', 'tool_calls', 'finish_reason', 'json_valid', 'refusal'] as const
export type LlmKind = (typeof LLM_KINDS)[number]

/** Choices that agreed and disagreed on one kind. */
export interface KindCount {
  agree: number
  disagree: number
}

/** One side of an LLM comparison, for speed and cost accounting. */
export interface LlmSide {
  api: LlmApi
  /** Whether the answer arrived as an event stream (and was assembled). */
  streamed: boolean
  /** Token counts the server reported; null when it reported none (counted as unknown, never estimated). */
  usage: LlmUsage | null
}

/** The LLM part of a comparison result (formats `openai-*`). */
export interface LlmComparison {
  /** Per kind, over the compared choices; a kind that did not apply to any choice is absent. */
  kinds: Partial<Record<LlmKind, KindCount>>
  primary: LlmSide
  shadow: LlmSide
}

/**
 * Compares two normalised answers choice by choice, into the diff `sink` (paths in the normalised
 * document, so the rules, tolerances and noise predicate apply) and the instance `tally` (a
 * choice is an instance; it disagrees when any kind does). Per choice:
 *
 * - `content`: the text (`message.content`, or `text`), by normalised similarity ≥
 *   `compare.textSimilarity` (the format marks it a text path); applies when either side has text.
 * - `tool_calls`: the calls, sorted by function name, pair up by position: the same names, and
 *   arguments JSON-equal (parsed: key order and whitespace do not matter, numeric tolerance
 *   applies, per path as well); call ids are ignored. Applies when either side proposes calls.
 * - `finish_reason`: equal; applies when either side has one.
 * - `refusal`: both refused or neither did (the wording of two refusals is not compared).
 * - `json_valid`: with a request that asked for JSON (`req`), each side's text is valid JSON (and
 *   valid against the schema); they agree when both are or both are not.
 *
 * A choice on one side only is a missing/extra difference at `/choices/<i>` and disagrees on
 * `content` and `finish_reason`.
 */
export function compareAnswers (p: LlmAnswer, s: LlmAnswer, differ: JsonDiffer, sink: DiffSink, tally: InstanceTally, req: JsonRequirement | null): Partial<Record<LlmKind, KindCount>> {
  const kinds: Partial<Record<LlmKind, KindCount>> = {}
  // Document level (`/model`, `/id` …: ignored by default), without the choices.
  differ.diff(withoutChoices(p), withoutChoices(s), sink)
  const n = Math.max(p.choices.length, s.choices.length)
  for (let i = 0; i < n; i++) {
    const pc = p.choices[i]
    const sc = s.choices[i]
    if (pc === undefined || sc === undefined) {
      sink.add({ path: `/choices/${i}`, kind: pc === undefined ? 'extra' : 'missing', primary: pc, shadow: sc })
      tally.compared++
      tally.disagreements++
      count(kinds, 'content', false)
      count(kinds, 'finish_reason', false)
      continue
    }
    const before = sink.count
    choice(pc, sc, i, differ, sink, kinds, req)
    tally.compared++
    if (sink.count > before) tally.disagreements++
  }
  return kinds
}

function choice (pc: LlmChoice, sc: LlmChoice, i: number, differ: JsonDiffer, sink: DiffSink, kinds: Partial<Record<LlmKind, KindCount>>, req: JsonRequirement | null): void {
  const rules = differ.rules
  const pm = pc.message
  const sm = sc.message
  // content
  const pt = pm !== undefined ? pm.content : pc.text ?? null
  const st = sm !== undefined ? sm.content : sc.text ?? null
  const contentPath = pm !== undefined || sm !== undefined ? ['choices', i, 'message', 'content'] : ['choices', i, 'text']
  if ((pt !== null || st !== null) && !rules.ignored(rules.cursorAt(contentPath))) {
    count(kinds, 'content', agreeOn(differ, sink, pt, st, contentPath))
  }
  // tool_calls
  const pCalls = pm?.tool_calls ?? []
  const sCalls = sm?.tool_calls ?? []
  const callsPath = ['choices', i, 'message', 'tool_calls']
  if ((pCalls.length > 0 || sCalls.length > 0) && !rules.ignored(rules.cursorAt(callsPath))) {
    count(kinds, 'tool_calls', agreeOn(differ, sink, pCalls, sCalls, callsPath))
  }
  // finish_reason
  const finishPath = ['choices', i, 'finish_reason']
  if ((pc.finish_reason !== null || sc.finish_reason !== null) && !rules.ignored(rules.cursorAt(finishPath))) {
    count(kinds, 'finish_reason', agreeOn(differ, sink, pc.finish_reason, sc.finish_reason, finishPath))
  }
  // refusal: only whether each side refused.
  if (pm !== undefined || sm !== undefined) {
    const refusalPath = ['choices', i, 'message', 'refusal']
    if (!rules.ignored(rules.cursorAt(refusalPath))) {
      const pr = pm?.refusal ?? null
      const sr = sm?.refusal ?? null
      const agree = (pr === null) === (sr === null)
      if (!agree) sink.add({ path: `/choices/${i}/message/refusal`, kind: 'type', primary: pr, shadow: sr })
      count(kinds, 'refusal', agree)
    }
  }
  // json_valid
  if (req !== null && (pt !== null || st !== null)) {
    const pv = satisfies(pt, req)
    const sv = satisfies(st, req)
    const agree = pv === sv
    if (!agree) sink.add({ path: `/choices/${i}/json_valid`, kind: 'value', primary: pv, shadow: sv })
    count(kinds, 'json_valid', agree)
  }
}

/** Diffs one part into the sink; true when it added no (non-noisy) difference. */
function agreeOn (differ: JsonDiffer, sink: DiffSink, p: unknown, s: unknown, path: Array<string | number>): boolean {
  const before = sink.count
  differ.diff(p, s, sink, path)
  return sink.count === before
}

function count (kinds: Partial<Record<LlmKind, KindCount>>, kind: LlmKind, agree: boolean): void {
  const c = kinds[kind] ?? (kinds[kind] = { agree: 0, disagree: 0 })
  if (agree) c.agree++
  else c.disagree++
}

function withoutChoices (a: LlmAnswer): Omit<LlmAnswer, 'choices'> {
  const { choices: _, ...rest } = a
  return rest
}
