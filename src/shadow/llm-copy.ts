import type { CompareFormat } from '../config/schema.js'
import type { ShadowLlmConfig } from '../config/llm-schema.js'
import { apiForPath } from '../compare/llm/assemble.js'

/** Body keys that make an OpenAI-compatible call stateful (it writes into the provider's store). */
const STATEFUL_KEYS = [Buffer.from('"store"'), Buffer.from('"previous_response_id"'), Buffer.from('"conversation"')]
const STREAM_KEY = Buffer.from('"stream"')

/**
 * The LLM rules for a shadow's copy (issue #16, docs/llm.md "Shadow safety"), compiled once per
 * config load. They apply to LLM requests only: every request when the shadow's `compare.format`
 * is an `openai-*` one, requests to `…/chat/completions`, `…/completions` or `…/responses` under
 * `auto`, never under other formats (a tabular model's `store` field is not a stateful call).
 *
 * - stateful calls (`store: true`, a `previous_response_id`, a `conversation`) are skipped unless
 *   `mirrorStateful` is set;
 * - with `stream: off` the copy asks for a non-streamed answer.
 *
 * The body is parsed only when it names one of these keys (a byte search first), so a request
 * that needs nothing costs a few `indexOf`s.
 */
export class LlmCopyPolicy {
  readonly mirrorStateful: boolean
  readonly streamOff: boolean
  readonly #format: CompareFormat

  constructor (cfg: ShadowLlmConfig, mirrorStatefulDefault: boolean, format: CompareFormat) {
    this.mirrorStateful = cfg.mirrorStateful ?? mirrorStatefulDefault
    this.streamOff = cfg.stream === 'off'
    this.#format = format
  }

  /** Is there anything to check at all (else the copy is never looked at)? */
  get active (): boolean {
    return !this.mirrorStateful || this.streamOff
  }

  /** Is a request to `path` an LLM call for this shadow? */
  applies (path: string): boolean {
    const f = this.#format
    if (f === 'openai-chat' || f === 'openai-completions' || f === 'openai-responses') return true
    return f === 'auto' && apiForPath(path) !== null
  }

  /** Whether the client's body is a stateful call (checked before any rewrite of the copy). */
  stateful (body: Buffer): boolean {
    if (this.mirrorStateful) return false
    if (!STATEFUL_KEYS.some((k) => body.includes(k))) return false
    const doc = parseObject(body)
    if (doc === null) return false
    const prev = doc.previous_response_id
    const conv = doc.conversation
    return doc.store === true || (typeof prev === 'string' && prev !== '') || (conv !== undefined && conv !== null && conv !== '')
  }

  /**
   * The copy to send, with `stream: off` applied: `stream: true` becomes `stream: false` and
   * `stream_options` goes (a non-streamed request may not carry it). Unchanged otherwise.
   */
  copy (body: Buffer): Buffer {
    if (!this.streamOff || !body.includes(STREAM_KEY)) return body
    const doc = parseObject(body)
    if (doc === null || doc.stream !== true) return body
    doc.stream = false
    delete doc.stream_options
    return Buffer.from(JSON.stringify(doc), 'utf8')
  }
}

function parseObject (body: Buffer): Record<string, unknown> | null {
  try {
    const doc: unknown = JSON.parse(body.toString('utf8'))
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? doc as Record<string, unknown> : null
  } catch {
    return null
  }
}
