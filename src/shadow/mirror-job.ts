import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import type { PrimaryTap } from '../capture/primary-tap.js'
import type { Backend } from '../upstream/backend.js'
import type { UpstreamErrorReason } from '../upstream/upstream-error.js'
import type { CapturedResponse } from '../compare/types.js'
import type { ShadowRuntime } from './shadow-runtime.js'
import { ShadowCall, type ShadowCallOwner, type ShadowResult } from './shadow-call.js'
import { ResponseCapture } from '../capture/response-capture.js'
import type { CompareTarget, JobRecord } from '../compare/job-record.js'

/** Where a finished job goes: the comparison stage (off the client path) and bookkeeping. */
export interface MirrorJobSink {
  /** One target's call ended (its result is final). */
  shadowDone (rt: ShadowRuntime, result: ShadowResult): void
  jobDone (job: MirrorJob): void
  callStarted (call: ShadowCall): void
  callEnded (call: ShadowCall): void
}

/** What the primary did for a mirrored request. */
export interface PrimaryCapture {
  response: CapturedResponse | null
  error: UpstreamErrorReason | null
}

/**
 * The join record of one mirrored request (docs/architecture.md, step 5): it watches the primary response
 * (as a PrimaryTap, keeping a copy up to `captureLimit`), fires each shadow once the request body
 * copy is complete, and hands itself to the sink when the primary and every shadow are done.
 * Shadow results are values; nothing here throws into the request path.
 */
export class MirrorJob implements PrimaryTap, ShadowCallOwner {
  readonly requestId: string
  readonly method: string
  readonly url: string
  readonly requestHeaders: IncomingHttpHeaders
  /** The targets; index i of `results` belongs to `targets[i]`. The last may be the noise replay. */
  readonly targets: ShadowRuntime[]
  readonly results: Array<ShadowResult | undefined>
  /** The backend that answered the client: the noise replay goes to it again. */
  readonly backend: Backend
  requestBody: Buffer | null = null
  primary: PrimaryCapture = { response: null, error: null }

  readonly #upstreamHeaders: string[]
  readonly #capture: ResponseCapture
  readonly #sink: MirrorJobSink
  readonly #calls: Array<ShadowCall | null>
  #pending: number
  #primaryDone = false
  #bodyDone = false

  constructor (init: {
    requestId: string
    method: string
    url: string
    requestHeaders: IncomingHttpHeaders
    upstreamHeaders: string[]
    targets: ShadowRuntime[]
    backend: Backend
    captureLimit: number
    sink: MirrorJobSink
  }) {
    this.requestId = init.requestId
    this.method = init.method
    this.url = init.url
    this.requestHeaders = init.requestHeaders
    this.#upstreamHeaders = init.upstreamHeaders
    this.targets = init.targets
    this.backend = init.backend
    this.#capture = new ResponseCapture(init.captureLimit)
    this.#sink = init.sink
    this.results = new Array(init.targets.length).fill(undefined)
    this.#calls = new Array(init.targets.length).fill(null)
    this.#pending = init.targets.length + 1 // + the primary
  }

  /** The plain record the comparison stage gets once the primary and every target are done. */
  record (): JobRecord {
    const targets: CompareTarget[] = new Array(this.targets.length)
    for (let i = 0; i < targets.length; i++) {
      const rt = this.targets[i]!
      targets[i] = { kind: rt.kind, name: rt.name, compare: rt.compare, result: this.results[i], budget: rt.budget }
    }
    return {
      requestId: this.requestId,
      method: this.method,
      url: this.url,
      requestHeaders: this.requestHeaders,
      requestBody: this.requestBody,
      backend: this.backend.name,
      primary: this.primary,
      targets,
      bytes: 0
    }
  }

  // -- the request body ----------------------------------------------------------------------

  /** The body copy is complete (null: no body): send every shadow its copy now. */
  bodyReady (body: Buffer | null): void {
    if (this.#bodyDone) return
    this.#bodyDone = true
    this.requestBody = body
    for (let i = 0; i < this.targets.length; i++) {
      const rt = this.targets[i]!
      if (body !== null && body.length > rt.cfg.maxBodyBytes) {
        rt.skip('body_too_large')
        this.#drop(i)
        continue
      }
      // LLM rules (issue #16): a stateful call is not copied; `stream: off` rewrites the copy.
      const llm = body !== null && rt.llm.active && rt.llm.applies(this.#path())
      if (llm && rt.llm.stateful(body)) {
        rt.skip('stateful')
        this.#drop(i)
        continue
      }
      let copy = body
      if (body !== null && rt.rewrite.rewritesBody) {
        copy = rt.rewrite.body(body)
        if (copy === null) {
          rt.skip('rewrite_failed')
          this.#drop(i)
          continue
        }
      }
      if (llm && copy !== null) copy = rt.llm.copy(copy)
      try {
        this.#send(i, rt, copy)
      } catch {
        // Whatever goes wrong preparing one shadow's copy stays with that shadow.
        if (this.#calls[i] === null) this.#drop(i)
      }
    }
  }

  /** The body outgrew the copy limit, or the client upload failed: no shadow is sent. */
  bodyFailed (tooLarge: boolean): void {
    if (this.#bodyDone) return
    this.#bodyDone = true
    for (let i = 0; i < this.targets.length; i++) {
      if (tooLarge) this.targets[i]!.skip('body_too_large')
      this.#drop(i)
    }
  }

  #send (i: number, rt: ShadowRuntime, body: Buffer | null): void {
    const headers: string[] = []
    const src = this.#upstreamHeaders
    for (let k = 0; k < src.length; k += 2) {
      const lower = src[k]!.toLowerCase()
      // The shadow's Host is its own (undici sets it from the pool origin); undici frames the
      // (possibly rewritten) body itself, so the client's framing headers do not apply.
      if (lower === 'host' || lower === 'content-length' || rt.removeHeaders.has(lower) || rt.setHeaderNames.has(lower)) continue
      headers.push(src[k]!, src[k + 1]!)
    }
    for (const [name, value] of rt.setHeaders) headers.push(name, value)
    headers.push('x-penumbra-shadow', rt.name)
    rt.counters.mirrored++
    const call = new ShadowCall(this, i, rt.cfg.maxResponseBytes, rt.cfg.timeoutMs)
    this.#calls[i] = call
    this.#sink.callStarted(call)
    call.dispatch(rt.kind === 'noise' ? this.backend.dispatcher : rt.pool, {
      method: this.method as Dispatcher.HttpMethod,
      path: rt.rewrite.path(this.url),
      headers,
      body,
      // The call's own deadline (ShadowCall) bounds the whole exchange, so undici's per-phase
      // timers are off: each would be a FastTimer that stays in undici's timer list for up to
      // 500 ms after it is cleared, surviving young-generation GCs (measured: one per request).
      headersTimeout: 0,
      bodyTimeout: 0
    })
  }

  /** The request path without its query (for the LLM rules, which look at the API it names). */
  #path (): string {
    const q = this.url.indexOf('?')
    return q === -1 ? this.url : this.url.slice(0, q)
  }

  /** A target that will not be sent: give back its semaphore place and stop waiting for it. */
  #drop (i: number): void {
    this.targets[i]!.release()
    this.#step()
  }

  // -- ShadowCallOwner -----------------------------------------------------------------------

  shadowResult (index: number, result: ShadowResult): void {
    this.results[index] = result
    this.#sink.shadowDone(this.targets[index]!, result)
    this.#step()
  }

  shadowReleased (index: number): void {
    this.targets[index]!.release()
    const call = this.#calls[index]
    if (call != null) {
      this.#calls[index] = null
      this.#sink.callEnded(call)
    }
  }

  // -- PrimaryTap ----------------------------------------------------------------------------

  onPrimaryStart (status: number, headers: IncomingHttpHeaders): void {
    this.#capture.start(status, headers)
  }

  onPrimaryData (chunk: Buffer): void {
    this.#capture.add(chunk) // past the limit the client still gets every byte; the copy is dropped
  }

  onPrimaryEnd (durationMs: number): void {
    if (this.#primaryDone) return
    this.#primaryDone = true
    this.primary = { response: this.#capture.finish(durationMs), error: null }
    this.#step()
  }

  onPrimaryError (reason: UpstreamErrorReason): void {
    if (this.#primaryDone) return
    this.#primaryDone = true
    this.primary = { response: null, error: reason }
    this.#capture.discard()
    this.#step()
  }

  onRequestBody (body: Buffer | null): void {
    this.bodyReady(body)
  }

  onRequestAborted (): void {
    this.bodyFailed(false)
    this.onPrimaryError('aborted')
  }

  #step (): void {
    if (--this.#pending === 0) this.#sink.jobDone(this)
  }
}
