import type { IncomingHttpHeaders } from 'node:http'
import { decompress, headerValue, type DecodedBody } from '../body.js'
import type { JsonObject } from '../formats/format.js'
import type { LlmApi } from './answer.js'
import { SseAssembler, type AssembleResult, type AssemblerOptions, type StreamReducer } from './sse-assembler.js'
import { ChatReducer } from './sse-assembler-chat.js'
import { CompletionsReducer } from './sse-assembler-completions.js'
import { ResponsesReducer } from './sse-assembler-responses.js'

/** A new reducer for a known API. */
export function reducerFor (api: LlmApi): StreamReducer {
  return api === 'chat' ? new ChatReducer() : api === 'completions' ? new CompletionsReducer() : new ResponsesReducer()
}

/**
 * The API of a stream, recognised from its first event: `object: "chat.completion.chunk"`,
 * `object: "text_completion"`, or a `response.*` event type. Null for anything else.
 */
export function detectStreamApi (first: JsonObject, event: string | undefined): LlmApi | null {
  const o = first.object
  if (o === 'chat.completion.chunk' || o === 'chat.completion') return 'chat'
  if (o === 'text_completion') return 'completions'
  const t = typeof first.type === 'string' ? first.type : event
  if (typeof t === 'string' && t.startsWith('response.')) return 'responses'
  // Some servers leave `object` out of chunks: a delta says chat, a bare text says completions.
  if (Array.isArray(first.choices)) {
    const c = first.choices[0] as { delta?: unknown, text?: unknown } | undefined
    if (c !== undefined && typeof c === 'object' && c !== null) {
      if (c.delta !== undefined) return 'chat'
      if (typeof c.text === 'string') return 'completions'
    }
  }
  return null
}

/**
 * An assembler for one stream. With `auto` the API is recognised from the first event
 * ({@link detectStreamApi}); a stream of another kind then fails as `invalid`.
 */
export function createAssembler (api: LlmApi | 'auto', opts: AssemblerOptions = {}): SseAssembler {
  if (api !== 'auto') {
    const fixed = reducerFor(api)
    return new SseAssembler(() => fixed, opts)
  }
  return new SseAssembler((first, event) => {
    const a = detectStreamApi(first, event)
    return a === null ? null : reducerFor(a)
  }, opts)
}

/** The API a request path names (`…/chat/completions`, `…/completions`, `…/responses`), or null. */
export function apiForPath (urlPath: string): LlmApi | null {
  if (urlPath.endsWith('/chat/completions')) return 'chat'
  if (urlPath.endsWith('/completions')) return 'completions'
  if (urlPath.endsWith('/responses')) return 'responses'
  return null
}

/** Whether a response is an event stream (`Content-Type: text/event-stream`, any parameters). */
export function isEventStream (headers: IncomingHttpHeaders): boolean {
  const ct = headerValue(headers, 'content-type')
  return ct !== undefined && ct.trimStart().toLowerCase().startsWith('text/event-stream')
}

/** Assembles a whole captured stream at once (what the comparator does with a buffered SSE body). */
export function assembleBytes (bytes: Uint8Array, api: LlmApi | 'auto', maxBytes: number): AssembleResult {
  const a = createAssembler(api, { maxBytes, clock: () => 0 })
  a.feed(bytes)
  return a.finish()
}

/**
 * Decodes a captured SSE body into the equivalent non-streamed JSON body: content codings undone
 * (capped at `maxBytes`), then assembled. A cut-off stream is `stream truncated`.
 */
export function decodeEventStream (res: { headers: IncomingHttpHeaders, body: Buffer, truncated?: boolean }, api: LlmApi | 'auto', maxBytes: number): DecodedBody {
  if (res.truncated === true) return { ok: false, reason: 'body truncated at capture limit' }
  const raw = decompress(res.body, headerValue(res.headers, 'content-encoding'), maxBytes)
  if (!raw.ok) return raw
  const r = assembleBytes(raw.bytes, api, maxBytes)
  if (r.ok) return { ok: true, value: r.body }
  switch (r.reason) {
    case 'truncated': return { ok: false, reason: 'stream truncated' }
    case 'too_large': return { ok: false, reason: 'body exceeds maxBodyBytes' }
    case 'error': return { ok: false, reason: 'stream reported an error' }
    default: return { ok: false, reason: 'invalid event stream' }
  }
}
