import type { IncomingHttpHeaders } from 'node:http'
import type { PrimaryTap } from '../capture/primary-tap.js'
import { ResponseCapture } from '../capture/response-capture.js'
import type { CapturedResponse } from '../compare/types.js'

/** Where a finished arm answer goes (the feedback room). */
export interface ArmSink {
  recordArm (requestId: string, url: string, backend: string, res: CapturedResponse): void
}

/**
 * Watches the answer of an experiment arm that nothing mirrored (a mirrored request's answer is
 * already in the shadow room's join record) and hands a bounded copy to the prediction log once
 * it has ended. Synchronous and throw-free, like every primary tap: the client's bytes flow on
 * regardless, and a copy past `limit` is dropped.
 */
export class ArmTap implements PrimaryTap {
  readonly #capture: ResponseCapture
  readonly #sink: ArmSink
  readonly #requestId: string
  readonly #url: string
  readonly #backend: string
  #done = false

  constructor (sink: ArmSink, requestId: string, url: string, backend: string, limit: number) {
    this.#sink = sink
    this.#requestId = requestId
    this.#url = url
    this.#backend = backend
    this.#capture = new ResponseCapture(limit)
  }

  onPrimaryStart (status: number, headers: IncomingHttpHeaders): void {
    this.#capture.start(status, headers)
  }

  onPrimaryData (chunk: Buffer): void {
    this.#capture.add(chunk)
  }

  onPrimaryEnd (durationMs: number): void {
    if (this.#done) return
    this.#done = true
    const res = this.#capture.finish(durationMs)
    if (!res.truncated) this.#sink.recordArm(this.#requestId, this.#url, this.#backend, res)
  }

  onPrimaryError (): void {
    this.#done = true
    this.#capture.discard()
  }

  onRequestBody (): void {}

  onRequestAborted (): void {
    this.onPrimaryError()
  }
}
