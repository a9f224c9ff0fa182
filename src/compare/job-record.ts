import type { IncomingHttpHeaders } from 'node:http'
import type { CompareConfig } from '../config/schema.js'
import type { CapturedResponse } from './types.js'

/** How one target's call ended (`penumbra_shadow_requests_total{outcome}`). */
export type CallOutcome = 'ok' | 'error' | 'timeout'

/** The result of one call to a target; `response` is null unless the outcome is ok. */
export interface CallResult {
  outcome: CallOutcome
  response: CapturedResponse | null
  /** Upstream error reason when the outcome is not ok. */
  reason: string | null
  durationMs: number
}

/**
 * What a target is: `shadow`, a configured shadow whose answers are compared, counted and
 * reported under its name; `noise`, the primary's backend asked again (primary-vs-primary), which
 * only teaches the noise tracker which paths differ by themselves.
 */
export type TargetKind = 'shadow' | 'noise'

/** One target of a mirrored request, as the comparison stage sees it. */
export interface CompareTarget {
  kind: TargetKind
  name: string
  /** The target's comparison settings (the global `compare` merged with its own). */
  compare: CompareConfig
  /** The call's result; undefined when it was never sent (body too large, upload failed). */
  result: CallResult | undefined
  /** The shadow's token budget (`llm.maxTokensPerMinute`): its answers' reported usage is spent on it. */
  budget?: { spend (tokens: number): void } | null
}

/**
 * The plain record of one finished mirrored request, handed from the shadow room to the
 * comparison stage: the request, the serving backend and its captured answer, and each
 * target's result. Nothing in it calls back into the proxy.
 */
export interface JobRecord {
  requestId: string
  method: string
  /** Path and query as the client sent them. */
  url: string
  requestHeaders: IncomingHttpHeaders
  requestBody: Buffer | null
  /** The backend that answered the client. */
  backend: string
  primary: { response: CapturedResponse | null, error: string | null }
  targets: CompareTarget[]
  /** Bytes held while queued for comparison (set by the comparison stage). */
  bytes: number
}

/** Receives finished mirrored requests (the comparison stage). */
export interface JobConsumer {
  consume (job: JobRecord): void
}
