import type { IncomingHttpHeaders } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import { classifyUpstreamError } from '../upstream/upstream-error.js'
import type { CapturedResponse } from '../compare/types.js'
import type { CallOutcome, CallResult } from '../compare/job-record.js'
import type { LiveLinks } from './live-list.js'
import { ResponseCapture } from '../capture/response-capture.js'

/** How a mirrored request ended (`penumbra_shadow_requests_total{outcome}`). */
export type ShadowOutcome = CallOutcome
/** The result of one mirrored request. */
export type ShadowResult = CallResult

/** Receives the result of a call exactly once, and the moment undici lets go of the request. */
export interface ShadowCallOwner {
  shadowResult (index: number, result: ShadowResult): void
  shadowReleased (index: number): void
}

const kTimeout = Object.assign(new Error('shadow timed out'), { code: 'PENUMBRA_SHADOW_TIMEOUT' })
const kTooLarge = Object.assign(new Error('shadow response too large'), { code: 'PENUMBRA_SHADOW_TOO_LARGE' })
const kShutdown = Object.assign(new Error('shadow abandoned at shutdown'), { code: 'PENUMBRA_SHADOW_ABANDONED' })

/**
 * One request mirrored to one shadow. Its failures are values reported to the owner, never
 * exceptions: nothing a shadow does can reach the client's response. The response body is read
 * up to `maxBytes` (then the request is aborted and the copy marked truncated), and a total
 * deadline bounds the call even while it waits in the pool's queue.
 */
export class ShadowCall implements Dispatcher.DispatchHandler, LiveLinks<ShadowCall> {
  /** Links of the owner's list of calls in flight; null outside it. */
  liveNext: ShadowCall | null = null
  livePrev: ShadowCall | null = null
  readonly #owner: ShadowCallOwner
  readonly #index: number
  readonly #capture: ResponseCapture
  readonly #start: number
  #ctl: Dispatcher.DispatchController | null = null
  #timer: NodeJS.Timeout | null = null
  #reported = false
  #released = false

  constructor (owner: ShadowCallOwner, index: number, maxBytes: number, timeoutMs: number) {
    this.#owner = owner
    this.#index = index
    this.#capture = new ResponseCapture(maxBytes)
    this.#start = performance.now()
    this.#timer = setTimeout(this.#onTimeout, timeoutMs)
    this.#timer.unref()
  }

  /** Sends the request; a synchronous dispatch failure is reported as an error outcome. */
  dispatch (pool: Dispatcher, opts: Dispatcher.DispatchOptions): void {
    try {
      pool.dispatch(opts, this)
    } catch (err) {
      this.onResponseError(null, err as Error)
    }
  }

  /** Abandons the call (graceful shutdown past its deadline). */
  abandon (): void {
    this.#ctl?.abort(kShutdown)
    this.#report('error', 'abandoned')
  }

  #onTimeout = (): void => {
    this.#timer = null
    this.#ctl?.abort(kTimeout)
    this.#report('timeout', 'timeout')
  }

  onRequestStart (ctl: Dispatcher.DispatchController): void {
    this.#ctl = ctl
    // Timed out while queued in the pool: let undici go on to the next request at once.
    if (this.#reported) ctl.abort(kTimeout)
  }

  onResponseStart (_ctl: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (status < 200) return
    this.#capture.start(status, headers)
  }

  onResponseData (ctl: Dispatcher.DispatchController, chunk: Buffer): void {
    // Over maxResponseBytes: nothing more is worth reading (a truncated answer is not compared).
    if (!this.#capture.add(chunk)) ctl.abort(kTooLarge)
  }

  onResponseEnd (): void {
    this.#report('ok', null)
    this.#release()
  }

  onResponseError (_ctl: Dispatcher.DispatchController | null, err: Error): void {
    if (err === kTooLarge) this.#report('ok', null)
    else if (err === kTimeout) this.#report('timeout', 'timeout')
    else {
      const reason = classifyUpstreamError(err)
      this.#report(reason === 'timeout' ? 'timeout' : 'error', reason)
    }
    this.#release()
  }

  #report (outcome: ShadowOutcome, reason: string | null): void {
    if (this.#reported) return
    this.#reported = true
    if (this.#timer !== null) { clearTimeout(this.#timer); this.#timer = null }
    const durationMs = performance.now() - this.#start
    let response: CapturedResponse | null = null
    if (outcome === 'ok') response = this.#capture.finish(durationMs)
    else this.#capture.discard()
    this.#owner.shadowResult(this.#index, { outcome, response, reason, durationMs })
  }

  #release (): void {
    if (this.#released) return
    this.#released = true
    this.#owner.shadowReleased(this.#index)
  }
}
