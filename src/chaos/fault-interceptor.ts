import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import type { ChaosRegistry } from './chaos-registry.js'
import { headerOf, type ChaosExperiment } from './chaos-experiment.js'
import { applyModelFaults } from './model-faults.js'
import { SseTruncator } from './sse-truncate.js'

/** A handler that can say a client-visible response was faulted (ForwardHandler: `x-penumbra-fault`). */
interface FaultAware { markFault?: (experiment: string) => void }

/** Largest answer a model fault buffers; a larger one passes through unchanged. */
const MAX_MODEL_BODY = 8 * 1024 * 1024

type Handler = Dispatcher.DispatchHandler & FaultAware

/**
 * The chaos interceptor of one dispatcher (a backend's, or a shadow's own pool): for each
 * request, the first running experiment whose target and scope match, drawn with its
 * probability and, for client requests, within the blast-radius cap, gets its faults. Client
 * requests (those without `x-penumbra-shadow`, which clients cannot send) on a backend are
 * counted for the cap. Composed only when `chaos.enabled`.
 */
export function faultInterceptor (registry: ChaosRegistry, backend: string | null): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const shadow = headerOf(opts.headers, 'x-penumbra-shadow')
    const client = shadow === undefined
    if (client && backend !== null) registry.radius.request()
    const list = registry.active
    // Upgrades are tunnels, not exchanges a fault could answer for.
    if (list.length === 0 || opts.upgrade != null) return dispatch(opts, handler)
    const target = client ? backend : `shadow:${shadow}`
    if (target === null) return dispatch(opts, handler)
    for (const e of list) {
      if (e.target !== target || !e.matches(opts)) continue
      if (Math.random() >= e.spec.scope.probability) return dispatch(opts, handler)
      // Shadows are not capped: the client never sees their answers.
      if (client && !registry.radius.tryFault()) { e.capped++; return dispatch(opts, handler) }
      // As undici does, never call the handler back from inside dispatch(): the caller finishes first.
      const ex = new FaultedExchange(registry, e, client, dispatch, opts, handler as Handler)
      queueMicrotask(ex.run)
      return true
    }
    return dispatch(opts, handler)
  }
}

/**
 * One faulted request. It is the handler's controller from the start (so the handler's own
 * deadline, ForwardHandler's or ShadowCall's, bounds a delay or a timeout through abort()), and
 * the upstream's handler once dispatched, between which it delays, answers instead, slows the
 * body or rewrites the answer.
 */
class FaultedExchange implements Dispatcher.DispatchHandler, Dispatcher.DispatchController {
  readonly #registry: ChaosRegistry
  readonly #e: ChaosExperiment
  readonly #client: boolean
  readonly #dispatch: Dispatcher.Dispatch
  readonly #opts: Dispatcher.DispatchOptions
  readonly #handler: Handler
  #real: Dispatcher.DispatchController | null = null
  #aborted = false
  #reason: Error | null = null
  #paused = false
  #done = false
  #timer: NodeJS.Timeout | null = null
  // A buffered answer (model faults).
  #head: { status: number, headers: IncomingHttpHeaders, message: string } | null = null
  #chunks: Buffer[] | null = null
  #bytes = 0
  /** truncate_text on a streamed LLM answer. */
  #sse: SseTruncator | null = null
  // slow_body.
  readonly #slice: number
  readonly #intervalMs: number
  #queue: Buffer[] = []
  #ended: IncomingHttpHeaders | null = null

  constructor (registry: ChaosRegistry, e: ChaosExperiment, client: boolean, dispatch: Dispatcher.Dispatch, opts: Dispatcher.DispatchOptions, handler: Handler) {
    this.#registry = registry
    this.#e = e
    this.#client = client
    this.#dispatch = dispatch
    this.#opts = opts
    this.#handler = handler
    const bps = e.bytesPerSecond
    this.#slice = bps > 0 ? Math.max(1, Math.floor(bps / 10)) : 0
    this.#intervalMs = bps > 0 ? (this.#slice * 1000) / bps : 0
  }

  // -- DispatchController (what the handler holds) ---------------------------------------------------

  get aborted (): boolean { return this.#aborted }
  get paused (): boolean { return this.#paused }
  get reason (): Error | null { return this.#reason }

  abort (reason: Error): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#clearTimer()
    if (this.#real !== null && !this.#real.aborted) this.#real.abort(reason)
    // Nothing dispatched (delay, timeout, an answer of our own), or the upstream already done
    // while slow_body still paces its bytes: the handler hears it from us (once: #error is idempotent).
    queueMicrotask(() => this.#error(reason))
  }

  pause (): void {
    this.#paused = true
    if (this.#slice === 0) this.#real?.pause()
  }

  resume (): void {
    this.#paused = false
    if (this.#slice === 0) this.#real?.resume()
    else if (this.#timer === null) this.#pump()
  }

  // -- the exchange -------------------------------------------------------------------------------

  run = (): void => {
    const e = this.#e
    if (this.#client) this.#handler.markFault?.(e.name)
    this.#handler.onRequestStart?.(this, {})
    if (this.#aborted) return
    if (e.delay !== null) {
      this.#registry.injected(e, 'delay')
      this.#timer = setTimeout(this.#afterDelay, e.delayMs())
    } else this.#afterDelay()
  }

  #afterDelay = (): void => {
    this.#timer = null
    if (this.#aborted) return
    const e = this.#e
    if (e.abort !== null) {
      this.#registry.injected(e, 'abort')
      this.#drainBody()
      if (e.abort.reset === true) {
        this.#error(Object.assign(new Error(`connection reset by chaos experiment "${e.name}"`), { code: 'ECONNRESET' }))
        return
      }
      const status = e.abort.status!
      const body = Buffer.from(JSON.stringify(e.abort.body ?? { error: 'chaos_abort', experiment: e.name }))
      this.#handler.onResponseStart?.(this, status, { 'content-type': 'application/json', 'content-length': String(body.length) }, STATUS_CODES[status] ?? '')
      if (this.#aborted) return
      this.#handler.onResponseData?.(this, body)
      this.#end({})
      return
    }
    if (e.timeout) {
      // Never answers; the request's own deadline ends it. A streamed upload keeps undici's
      // headersTimeout, which we honour here since undici never sees this request.
      this.#registry.injected(e, 'timeout')
      this.#drainBody()
      const t = this.#opts.headersTimeout ?? 0
      if (t > 0) this.#timer = setTimeout(() => this.abort(Object.assign(new Error('no response head (chaos timeout)'), { code: 'UND_ERR_HEADERS_TIMEOUT' })), t)
      return
    }
    try {
      this.#dispatch(this.#opts, this)
    } catch (err) {
      this.#error(err as Error)
    }
  }

  /** A request body we will not send is still read, so the client's upload completes. */
  #drainBody (): void {
    const b = this.#opts.body as { resume?: () => void, on?: (ev: string, fn: () => void) => void } | null | undefined
    if (b != null && typeof b.resume === 'function') {
      b.on?.('error', () => {})
      b.resume()
    }
  }

  // -- DispatchHandler (what the upstream calls) -----------------------------------------------------

  onRequestStart (ctl: Dispatcher.DispatchController): void {
    this.#real = ctl
    if (this.#aborted) ctl.abort(this.#reason!)
  }

  onResponseStart (_ctl: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders, message: string): void {
    if (this.#done) return
    if (status < 200) { this.#handler.onResponseStart?.(this, status, headers, message); return }
    if (this.#e.model.length > 0 && status >= 200 && status < 300 && isPlainJson(headers)) {
      this.#head = { status, headers, message }
      this.#chunks = []
      return
    }
    const truncate = this.#e.model.find((f) => f.kind === 'truncate_text')
    if (truncate !== undefined && status >= 200 && status < 300 && isEventStream(headers)) {
      this.#sse = new SseTruncator(truncate.tokens)
      headers = { ...headers }
      delete headers['content-length']
    }
    if (this.#slice > 0) this.#registry.injected(this.#e, 'slow_body')
    this.#handler.onResponseStart?.(this, status, headers, message)
  }

  onResponseData (_ctl: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#done) return
    if (this.#chunks !== null) {
      this.#chunks.push(chunk)
      this.#bytes += chunk.length
      if (this.#bytes > MAX_MODEL_BODY) this.#passThrough()
      return
    }
    if (this.#sse !== null) { this.#sseData(chunk); return }
    this.#emit(chunk)
  }

  #sseData (chunk: Buffer): void {
    const sse = this.#sse!
    const out = sse.push(chunk)
    if (out.length > 0) this.#emit(out)
    if (!sse.done || this.#done) return
    // Cut: the client's stream ends here; the upstream is told to stop generating.
    this.#registry.injected(this.#e, 'truncate_text')
    const real = this.#real
    this.#end({})
    if (real !== null && !real.aborted) real.abort(Object.assign(new Error('stream cut by truncate_text'), { code: 'UND_ERR_ABORTED' }))
  }

  onResponseEnd (_ctl: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.#done) return
    if (this.#chunks !== null) { this.#rewrite(trailers); return }
    if (this.#sse !== null) {
      const rest = this.#sse.flush()
      if (rest.length > 0) this.#emit(rest)
    }
    this.#end(trailers)
  }

  onResponseError (_ctl: Dispatcher.DispatchController | null, err: Error): void {
    this.#error(err)
  }

  // -- model faults --------------------------------------------------------------------------------

  /** Too large to rewrite: what was held goes out unchanged, and the rest streams. */
  #passThrough (): void {
    const head = this.#head!
    const chunks = this.#chunks!
    this.#head = null
    this.#chunks = null
    this.#handler.onResponseStart?.(this, head.status, head.headers, head.message)
    for (const c of chunks) this.#emit(c)
  }

  #rewrite (trailers: IncomingHttpHeaders): void {
    const head = this.#head!
    const raw = Buffer.concat(this.#chunks!, this.#bytes)
    const text = raw.toString('utf8')
    this.#head = null
    this.#chunks = null
    let out: Buffer | null = null
    try {
      const { doc, applied } = applyModelFaults(JSON.parse(text), this.#e.model, this.#e.state, text)
      for (const kind of applied) this.#registry.injected(this.#e, kind)
      if (applied.length > 0) out = Buffer.from(JSON.stringify(doc))
    } catch {
      // Not JSON after all (or not a shape the faults know): the answer goes out as it came.
    }
    // Unchanged: the upstream's bytes as they came (not re-encoded).
    const body = out ?? raw
    const headers: IncomingHttpHeaders = { ...head.headers }
    delete headers['transfer-encoding']
    delete headers.etag
    headers['content-length'] = String(body.length)
    if (this.#slice > 0) this.#registry.injected(this.#e, 'slow_body')
    this.#handler.onResponseStart?.(this, head.status, headers, head.message)
    if (this.#done || this.#aborted) return
    this.#emit(body)
    this.#end(trailers)
  }

  // -- delivery (slow_body paces it) ------------------------------------------------------------------

  #emit (chunk: Buffer): void {
    if (this.#slice === 0) { this.#handler.onResponseData?.(this, chunk); return }
    this.#queue.push(chunk)
    this.#real?.pause()
    if (this.#timer === null && !this.#paused) this.#timer = setTimeout(this.#pump, this.#intervalMs)
  }

  #end (trailers: IncomingHttpHeaders): void {
    if (this.#slice > 0 && this.#queue.length > 0) { this.#ended = trailers; return }
    if (this.#done) return
    this.#done = true
    this.#clearTimer()
    this.#handler.onResponseEnd?.(this, trailers)
  }

  #pump = (): void => {
    this.#timer = null
    if (this.#done || this.#aborted || this.#paused) return
    let budget = this.#slice
    while (budget > 0 && this.#queue.length > 0) {
      const head = this.#queue[0]!
      const part = head.length <= budget ? head : head.subarray(0, budget)
      if (part === head) this.#queue.shift()
      else this.#queue[0] = head.subarray(budget)
      budget -= part.length
      this.#handler.onResponseData?.(this, part)
      if (this.#done || this.#aborted) return
    }
    if (this.#queue.length > 0) {
      if (!this.#paused) this.#timer = setTimeout(this.#pump, this.#intervalMs)
      return
    }
    if (this.#ended !== null) { const t = this.#ended; this.#ended = null; this.#end(t); return }
    this.#real?.resume()
  }

  #error (err: Error): void {
    if (this.#done) return
    this.#done = true
    this.#clearTimer()
    this.#handler.onResponseError?.(this, err)
  }

  #clearTimer (): void {
    if (this.#timer === null) return
    clearTimeout(this.#timer)
    this.#timer = null
  }
}

function isEventStream (h: IncomingHttpHeaders): boolean {
  const ct = h['content-type']
  const ce = h['content-encoding']
  return typeof ct === 'string' && /^text\/event-stream\b/i.test(ct) && (ce === undefined || ce === 'identity')
}

/** A JSON answer sent as is (model faults cannot rewrite a compressed or streamed one). */
function isPlainJson (h: IncomingHttpHeaders): boolean {
  const ct = h['content-type']
  if (typeof ct !== 'string' || !/\bjson\b/i.test(ct)) return false
  const ce = h['content-encoding']
  return ce === undefined || ce === 'identity'
}
