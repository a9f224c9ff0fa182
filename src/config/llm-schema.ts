import { z } from 'zod'

// LLM shadow safety (issue #16, docs/llm.md "Shadow safety"). The process-wide `llm:` section
// holds the default of `mirrorStateful`; `shadows[].llm` overrides it per shadow and holds the
// per-shadow keys (a token budget and the stream mode of the copy).

/** Top-level `llm:`. */
export const llmSchema = z.strictObject({
  /**
   * Mirror stateful calls (`store: true`, `previous_response_id`, `conversation`) too. Off by
   * default: such a copy would write into the provider's stored conversations and responses.
   */
  mirrorStateful: z.boolean().default(false)
})

/** `shadows[].llm`. */
export const shadowLlmSchema = z.strictObject({
  /** Overrides the top-level `llm.mirrorStateful` for this shadow. */
  mirrorStateful: z.boolean().optional(),
  /**
   * Tokens (input + output, as the shadow reports them in its usage) this shadow may spend per
   * wall-clock minute; once spent, copies are skipped (`reason="budget"`) until the minute rolls
   * over. null: no budget. With `--workers N` each worker holds 1/N of it.
   */
  maxTokensPerMinute: z.number().int().min(1, 'must be >= 1').nullable().default(null),
  /** `off`: the copy asks for a non-streamed answer (`stream: false`, no `stream_options`). */
  stream: z.enum(['keep', 'off']).default('keep')
})

export type LlmConfig = z.output<typeof llmSchema>
export type ShadowLlmConfig = z.output<typeof shadowLlmSchema>
