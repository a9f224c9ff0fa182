import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { PrimaryTap } from '../capture/primary-tap.js'
import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import { clientResponseHeaders, type RequestHeaderOptions } from './headers.js'
import { classifyUpstreamError, upstreamFailure, type UpstreamErrorReason } from '../upstream/upstream-error.js'
import { sendError } from './send-error.js'
import { PenumbraError } from '../errors.js'
import type { Backend } from '../upstream/backend.js'
import type { Route } from '../experiments/experiment.js'

/** Told once per exchange, when the client response is finished or abandoned. */
export interface ExchangeSink {
  exchangeDone (ex: ForwardHandler): void
  /** A body read with `bufferBody` is complete: dispatch it. */
  bodyBuffered (ex: ForwardHandler, body: Buffer): void
}

/** What Node accepts in a reason phrase: HTAB, SP and visible ASCII. */
const REASON = /^[\t\x20-\x7e]*$/

const kClientClosed = Object.freeze(Object.assign(new Error('client closed the connection'), { code: 'UND_ERR_ABORTED' }))
// undici's own codes, so classifyUpstreamError reads them as it reads undici's timeouts.
const kHeadersTimeout = Object.freeze(Object.assign(new Error('no response head within primary.timeoutMs'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))
const kBodyTimeout = Object.freeze(Object.assign(new Error('no response body data within primary.timeoutMs'), { code: 'UND_ERR_BODY_TIMEOUT' }))

/**
 * One client request forwarded to the primary: an undici dispatch handler (v7 "new hooks", which
 * undici 8 keeps) that streams the response to the client with backpressure in both directions.
 * All per-request state lives in fields, so the hot path allocates this one object and two
 * bound listeners.
 */
export class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly requestId: string
  readonly start: number
  /** Status sent to the client (0 until the head is written). */
  status = 0
  /** Why the exchange failed, when it did. */
  errorReason: UpstreamErrorReason | null = null
  upstreamStart = 0
  upstreamMs = -1
  tap: PrimaryTap | null = null
  /** The backend the router picked (null when the request was refused before routing). */
  backend: Backend | null = null
  /** The route the router picked: its experiment arm, when one assigned the request. */
  route: Route | null = null
  /** The client connection it arrived on, told when the exchange is done (req.socket is gone by then). */
  connection: { done (ex: ForwardHandler): void } | null = null
  /** The header list sent upstream (built once, shared with the shadows). */
  headers: string[] = []
  /**
   * primary.timeoutMs when this handler keeps the deadline itself (the request body, if any, is
   * written in one go); 0 when undici's headersTimeout/bodyTimeout do it (streamed bodies, whose
   * upload progress undici sees and we do not).
   */
  deadlineMs = 0
  /** The chaos experiment that faulted this exchange (`x-penumbra-fault`), if one did. */
  fault: string | null = null

  #ctl: Dispatcher.DispatchController | null = null
  #sink: ExchangeSink
  #chunks: Buffer[] | null = null
  #bytes = 0
  #opts: RequestHeaderOptions
  #done = false
  #timer: NodeJS.Timeout | null = null
  #headReceived = false

  constructor (req: IncomingMessage, res: ServerResponse, requestId: string, start: number, opts: RequestHeaderOptions, sink: ExchangeSink) {
    this.req = req
    this.res = res
    this.requestId = requestId
    this.start = start
    this.#opts = opts
    this.#sink = sink
    res.once('close', this.#onClose)
  }

  #onClose = (): void => {
    // The client went away before the response was complete: cancel the upstream request, so
    // the model stops computing for nobody.
    if (!this.res.writableFinished && this.#ctl !== null && !this.#ctl.aborted) this.#ctl.abort(kClientClosed)
    this.#finish()
  }

  /** The request was read whole (ClientConnection: a later parse error is another request's). */
  get requestComplete (): boolean {
    return this.req.complete
  }

  /**
   * The client connection closed while this response was queued behind a pipelined one: Node
   * emits no 'close' on a response that never got the socket, so the connection tells us.
   */
  abandon (): void {
    if (this.#done) return
    if (!this.res.destroyed) this.res.destroy()
    this.#onClose()
  }

  #onDrain = (): void => {
    this.#timer?.refresh()
    this.#ctl?.resume()
  }

  /**
   * The deadline with undici's semantics: time to the response head, then the longest gap between
   * body chunks, not counted while the client holds the body back (backpressure). A native timer
   * rather than undici's: each undici per-phase timer is a FastTimer that stays in undici's list
   * for up to 500 ms after it is cleared, so it outlives young GCs (measured in passthrough: 60-70%
   * fewer bytes promoted per scavenge without them). A native timer is unlinked when cleared.
   */
  static #onDeadline (h: ForwardHandler): void {
    h.#timer = null
    if (h.#done) return
    // Paused by us (client backpressure, onResponseData): undici's controller says so until resume.
    if (h.#ctl?.paused === true) { h.#armDeadline(); return }
    h.#ctl?.abort(h.#headReceived ? kBodyTimeout : kHeadersTimeout)
  }

  #armDeadline (): void {
    this.#timer = setTimeout(ForwardHandler.#onDeadline, this.deadlineMs, this).unref()
  }

  #clearDeadline (): void {
    if (this.#timer === null) return
    clearTimeout(this.#timer)
    this.#timer = null
  }

  /**
   * Reads a small request body (Content-Length known and under the buffering limit) into one
   * Buffer before dispatching: undici then writes head and body in one go, and a mirrored
   * request needs no stream copy. The client's upload is read at its own pace, as with streaming.
   */
  bufferBody (): void {
    this.#chunks = []
    this.req.on('data', this.#onBodyData)
    this.req.once('end', this.#onBodyEnd)
  }

  #onBodyData = (chunk: Buffer): void => {
    this.#chunks!.push(chunk)
    this.#bytes += chunk.length
  }

  #onBodyEnd = (): void => {
    const chunks = this.#chunks!
    this.#chunks = null
    this.#sink.bodyBuffered(this, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#bytes))
  }

  /** Told by the chaos interceptor: the client's response is faulted by `experiment`. */
  markFault (experiment: string): void {
    this.fault = experiment
  }

  onRequestStart (ctl: Dispatcher.DispatchController): void {
    this.#ctl = ctl
    this.upstreamStart = performance.now()
    if (this.res.destroyed) { ctl.abort(kClientClosed); return }
    if (this.deadlineMs > 0) this.#armDeadline()
  }

  onResponseStart (_ctl: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (status < 200) return // 1xx interim responses are not relayed (Node answers 100-continue itself)
    this.#headReceived = true
    this.#timer?.refresh()
    if (this.tap !== null) this.tap.onPrimaryStart(status, { ...headers })
    const res = this.res
    if (res.destroyed) return
    // The reason phrase is relayed only when Node can send it as is (RFC 9112 §4: a client
    // should ignore it anyway); otherwise Node's standard phrase for the status goes out.
    const reason = statusMessage !== undefined && statusMessage !== '' && REASON.test(statusMessage) ? statusMessage : undefined
    try {
      const out = clientResponseHeaders(headers, '1.1', this.requestId, this.#opts)
      // The client learns its arm (`name=variant`), e.g. to attach it to the outcome it reports.
      if (this.route !== null && this.route.header !== null) out['x-penumbra-experiment'] = this.route.header
      // Only penumbra says a response was faulted: an upstream's own copy is not relayed.
      if (this.fault !== null) out['x-penumbra-fault'] = this.fault
      else if (out['x-penumbra-fault'] !== undefined) delete out['x-penumbra-fault']
      res.writeHead(status, reason, out)
      this.status = status
    } catch (err) {
      // A header Node refuses to send (e.g. a character outside Latin-1): the upstream's
      // response is not valid for this hop, so it is a 502, never a hanging client.
      res.statusMessage = ''
      for (const name of res.getHeaderNames()) res.removeHeader(name)
      this.#ctl?.abort(Object.assign(new Error(`invalid upstream response head: ${(err as Error).message}`), { code: 'UND_ERR_INFO' }))
    }
  }

  onResponseData (ctl: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#timer?.refresh()
    if (this.tap !== null) this.tap.onPrimaryData(chunk)
    const res = this.res
    if (res.destroyed || this.status === 0) return
    if (!res.write(chunk)) {
      ctl.pause()
      res.once('drain', this.#onDrain)
    }
  }

  onResponseEnd (): void {
    this.#clearDeadline()
    this.upstreamMs = performance.now() - this.upstreamStart
    if (this.tap !== null) this.tap.onPrimaryEnd(this.upstreamMs)
    this.res.end()
  }

  onResponseError (_ctl: Dispatcher.DispatchController | null, err: Error): void {
    this.#clearDeadline()
    const reason = err === kClientClosed ? 'aborted' : classifyUpstreamError(err)
    this.errorReason = reason
    if (this.upstreamStart !== 0) this.upstreamMs = performance.now() - this.upstreamStart
    if (this.tap !== null) this.tap.onPrimaryError(reason)
    const res = this.res
    if (res.destroyed) { this.#finish(); return }
    // After the head went out the status cannot change: sendError destroys the connection then.
    // A refusal of penumbra's own (e.g. the body limit failing the upload) is answered as itself.
    const failure = err instanceof PenumbraError ? err : upstreamFailure(reason, this.backend?.label ?? 'primary', err)
    if (!res.headersSent) this.status = failure.statusCode
    if (this.fault !== null && !res.headersSent) res.setHeader('x-penumbra-fault', this.fault)
    sendError(res, failure, this.requestId, this.#opts.requestIdHeader)
  }

  #finish (): void {
    if (this.#done) return
    this.#done = true
    this.#clearDeadline()
    if (this.#chunks !== null) {
      // Closed while the body was still being read: nothing was dispatched.
      this.#chunks = null
      this.req.off('data', this.#onBodyData)
      this.tap?.onRequestAborted()
    }
    this.res.off('drain', this.#onDrain)
    this.#sink.exchangeDone(this)
  }
}
