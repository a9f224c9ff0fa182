import type { CapturedResponse } from '../types.js'
import { createAssembler, isEventStream } from './assemble.js'
import { timePerOutputTokenMs } from './sse-assembler.js'
import { normaliseAnswer } from './answer.js'

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
 * for a response that is not a complete event stream.
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
