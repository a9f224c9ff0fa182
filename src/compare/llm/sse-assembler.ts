import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser'
import { isObject, type JsonObject } from '../formats/format.js'
import type { LlmApi } from './answer.js'

/**
 * What one API's stream events add up to. A reducer sees each event's parsed JSON `data` and
 * builds the body the same request would have got with `stream: false`.
 */
export interface StreamReducer {
  readonly api: LlmApi
  /**
   * Applies one event. Returns `token` when it carried generated content (a non-empty text,
   * refusal or tool-call delta: the time-to-first-token mark), `error` when the stream reports a
   * failure, else `other`.
   */
  apply (data: JsonObject, event: string | undefined): 'token' | 'error' | 'other'
  /** The `data: [DONE]` sentinel. */
  sentinel (): void
  /** Whether the stream reached its end marker (`[DONE]`, or the Responses terminal event). */
  readonly complete: boolean
  /** The equivalent non-streamed body. */
  build (): JsonObject
}

/** Why a stream could not be assembled: a fixed set, safe as a metric label. */
export type AssembleFailure =
  /** It ended before its end marker (no `[DONE]`, no `response.completed`): cut off, or aborted. */
  | 'truncated'
  /** More than `maxBytes` arrived: the assembler stopped reading it. */
  | 'too_large'
  /** Not an event stream of a known API: undecodable bytes, an event whose data is not JSON. */
  | 'invalid'
  /** The stream itself reported an error (an `error` event, `response.failed`). */
  | 'error'

/** Stream timing, in ms on the caller's clock from `startMs`. */
export interface StreamTiming {
  /** Offset of the first content or tool-call delta; null when none arrived. */
  firstTokenMs: number | null
  /** Offset of the last one. */
  lastTokenMs: number | null
  /** Content-carrying events seen. */
  tokenEvents: number
}

export type AssembleResult =
  | { ok: true, api: LlmApi, body: JsonObject, timing: StreamTiming }
  | { ok: false, reason: AssembleFailure, api: LlmApi | null, timing: StreamTiming }

export interface AssemblerOptions {
  /** Bytes accepted before the stream counts as `too_large` (default 4 MiB). */
  maxBytes?: number
  /** Clock in ms (default `performance.now`); TTFT is measured on it. */
  clock?: () => number
  /** The clock reading the offsets are measured from (default: when the assembler is made). */
  startMs?: number
}

/** Chooses a reducer from the first event (`auto`), given the factories of the known APIs. */
export type ReducerFactory = (first: JsonObject, event: string | undefined) => StreamReducer | null

const DEFAULT_MAX_BYTES = 4 * 1024 * 1024

/**
 * Incremental assembler of one Server-Sent Events stream (WHATWG HTML §9.2 "Server-sent
 * events", framing by `eventsource-parser`) into one answer. Feed it the bytes as they arrive,
 * in chunks of any size (a chunk may split a UTF-8 sequence, a line or an event), then call
 * {@link finish}. `feed` never throws and costs O(chunk): it is safe on the hot path of a
 * stream that flows on to a client. Memory is bounded by `maxBytes` (past it the input is
 * dropped and the result is `too_large`).
 */
export class SseAssembler {
  readonly #parser: EventSourceParser
  readonly #decoder = new TextDecoder('utf-8', { fatal: true })
  readonly #maxBytes: number
  readonly #clock: () => number
  readonly #start: number
  readonly #pick: ReducerFactory
  #reducer: StreamReducer | null = null
  #bytes = 0
  #failure: AssembleFailure | null = null
  #first: number | null = null
  #last: number | null = null
  #tokens = 0

  /** @param pick the reducer for the first event (a fixed API ignores its arguments). */
  constructor (pick: ReducerFactory, opts: AssemblerOptions = {}) {
    const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError('maxBytes must be a positive integer')
    this.#maxBytes = maxBytes
    this.#clock = opts.clock ?? (() => performance.now())
    this.#start = opts.startMs ?? this.#clock()
    this.#pick = pick
    this.#parser = createParser({
      onEvent: (ev) => { this.#event(ev) },
      // An unknown field is ignored, as the spec says (§9.2.6); only the buffer cap ends the stream.
      onError: (err) => { if (err.type === 'max-buffer-size-exceeded') this.#fail('too_large') },
      maxBufferSize: maxBytes
    })
  }

  /** The API the stream turned out to be (null before its first event). */
  get api (): LlmApi | null {
    return this.#reducer?.api ?? null
  }

  /** Offset (ms from `startMs`) of the first content delta, or null. */
  get firstTokenMs (): number | null {
    return this.#first
  }

  /** Bytes fed so far. */
  get bytes (): number {
    return this.#bytes
  }

  /** Feeds the next chunk of the stream. */
  feed (chunk: Uint8Array | string): void {
    if (this.#failure !== null) return
    const n = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength
    this.#bytes += n
    if (this.#bytes > this.#maxBytes) { this.#fail('too_large'); return }
    let text: string
    if (typeof chunk === 'string') {
      text = chunk
    } else {
      try {
        text = this.#decoder.decode(chunk, { stream: true })
      } catch {
        this.#fail('invalid')
        return
      }
    }
    try {
      this.#parser.feed(text)
    } catch {
      // The parser throws once it has terminated (buffer cap): already recorded.
      if (this.#failure === null) this.#fail('invalid')
    }
  }

  /** Ends the stream: its one assembled answer, or why there is none. */
  finish (): AssembleResult {
    const timing: StreamTiming = { firstTokenMs: this.#first, lastTokenMs: this.#last, tokenEvents: this.#tokens }
    if (this.#failure === null) {
      try {
        this.#decoder.decode()
      } catch {
        this.#fail('invalid')
      }
    }
    const r = this.#reducer
    if (this.#failure !== null) return { ok: false, reason: this.#failure, api: r?.api ?? null, timing }
    if (r === null || !r.complete) return { ok: false, reason: 'truncated', api: r?.api ?? null, timing }
    return { ok: true, api: r.api, body: r.build(), timing }
  }

  #fail (reason: AssembleFailure): void {
    if (this.#failure !== null) return
    this.#failure = reason
    // Drop what was gathered: a failed stream is never assembled, and must not hold memory.
    this.#reducer = null
  }

  #event (ev: EventSourceMessage): void {
    if (this.#failure !== null) return
    const data = ev.data
    if (data === '[DONE]') {
      this.#reducer?.sentinel()
      return
    }
    if (data === '') return
    let v: unknown
    try {
      v = JSON.parse(data)
    } catch {
      this.#fail('invalid')
      return
    }
    if (!isObject(v)) { this.#fail('invalid'); return }
    let r = this.#reducer
    if (r === null) {
      r = this.#reducer = this.#pick(v, ev.event)
      if (r === null) { this.#fail(isErrorEvent(v, ev.event) ? 'error' : 'invalid'); return }
    }
    const kind = r.apply(v, ev.event)
    if (kind === 'token') {
      const t = this.#clock() - this.#start
      if (this.#first === null) this.#first = t
      this.#last = t
      this.#tokens++
    } else if (kind === 'error') {
      this.#fail('error')
    }
  }
}

/** `data: {"error": …}` (OpenAI, vLLM mid-stream errors) or an `error` event (Responses). */
export function isErrorEvent (data: JsonObject, event: string | undefined): boolean {
  return event === 'error' || data.type === 'error' || (data.error !== undefined && data.error !== null && data.choices === undefined)
}

/**
 * Time per output token in ms, as the OpenTelemetry GenAI conventions define it:
 * (last token time − first token time) / (output tokens − 1), with the output token count the
 * server reported. Null when it cannot be known (no tokens timed, fewer than 2 output tokens, or
 * no usage reported: never estimated).
 */
export function timePerOutputTokenMs (timing: StreamTiming, outputTokens: number | null | undefined): number | null {
  if (timing.firstTokenMs === null || timing.lastTokenMs === null) return null
  if (typeof outputTokens !== 'number' || !Number.isFinite(outputTokens) || outputTokens < 2) return null
  return (timing.lastTokenMs - timing.firstTokenMs) / (outputTokens - 1)
}
