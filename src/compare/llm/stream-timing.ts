import type { CapturedResponse } from '../types.js'
import { createAssembler, isEventStream } from './assemble.js'
import { timePerOutputTokenMs } from './sse-assembler.js'
import { normaliseAnswer } from './answer.js'
import { decodeBody } from '../body.js'

/** What a streamed LLM answer's capture says about its speed and size. */
export interface StreamStats {
  /** Dispatch to the first content or tool-call delta, ms. */
  timeToFirstTokenMs: number | null
  /** (last − first token time) / (output tokens − 1), ms; null without usage. */
  timePerOutputTokenMs: number | null
  inputTokens: number | null
  outputTokens: number | null
}

/**
 * Replays a captured event stream through the assembler chunk by chunk, with the clock reading
 * each chunk's arrival time, so time to first token is what the client would have seen. Null
 * for a response that is not a complete event stream. A complete stream of at most `maxBytes`
 * keeps its assembled answer on `res.assembled`, so the comparison does not assemble it again.
 */
export function streamStats (res: CapturedResponse, maxBytes: number): StreamStats | null {
  const arrivals = res.arrivals
  if (arrivals === undefined || !isEventStream(res.headers)) return null
  let now = 0
  const asm = createAssembler('auto', { maxBytes, clock: () => now, startMs: 0 })
  for (let i = 0; i < arrivals.length; i += 2) {
    const from = arrivals[i]!
    const to = i + 2 < arrivals.length ? arrivals[i + 2]! : res.body.length
    now = arrivals[i + 1]!
    asm.feed(res.body.subarray(from, to))
  }
  const r = asm.finish()
  if (!r.ok) return null
  // Kept for the comparator (see `assembled`), unless the stream is larger than a comparison takes.
  if (res.body.length <= maxBytes) res.assembled = { api: r.api, body: r.body }
  const answer = normaliseAnswer(r.api, r.body)
  const input = answer?.usage?.input_tokens ?? null
  const output = answer?.usage?.output_tokens ?? null
  return {
    timeToFirstTokenMs: r.timing.firstTokenMs,
    timePerOutputTokenMs: timePerOutputTokenMs(r.timing, output),
    inputTokens: input,
    outputTokens: output
  }
}

/**
 * The usage a non-streamed JSON answer reports (`usage.prompt_tokens`/`completion_tokens` of Chat
 * Completions and Completions, `input_tokens`/`output_tokens` of Responses), for a shadow's token
 * budget; null when the body is not JSON or reports none.
 */
export function answerUsage (res: CapturedResponse, maxBytes: number): Pick<StreamStats, 'inputTokens' | 'outputTokens'> | null {
  const d = decodeBody(res, maxBytes)
  if (!d.ok || typeof d.value !== 'object' || d.value === null) return null
  const u = (d.value as { usage?: unknown }).usage
  if (typeof u !== 'object' || u === null) return null
  const o = u as Record<string, unknown>
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null)
  const input = num(o.prompt_tokens) ?? num(o.input_tokens)
  const output = num(o.completion_tokens) ?? num(o.output_tokens)
  return input === null && output === null ? null : { inputTokens: input, outputTokens: output }
}
