import type { IncomingHttpHeaders } from 'node:http'
import type { LlmComparison } from './llm/agreement.js'
import type { LlmApi } from './llm/answer.js'
import type { JsonObject } from './formats/format.js'
import type { AnswerDigest } from '../drift/digest.js'

/** A response as captured for comparison: status, headers and a bounded copy of the body. */
export interface CapturedResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The raw body bytes as received (possibly still content-encoded). */
  body: Buffer
  /** True when the body was cut off at the capture limit: such a response is `unparseable`. */
  truncated: boolean
  /** Milliseconds from dispatch to the end of the body. */
  durationMs: number
  /**
   * For event streams: when each chunk arrived, as flat pairs [byte offset, ms since dispatch,
   * ...], so an LLM answer's time to first token can be measured after the fact.
   */
  arrivals?: number[]
  /**
   * An event stream already assembled (by the comparison stage replaying it for its timing,
   * `timeStream`): the comparator uses it instead of assembling the same bytes again.
   */
  assembled?: { api: LlmApi, body: JsonObject }
}

/** One comparison job: the request that was mirrored and both responses. */
export interface CompareJob {
  shadow: string
  requestId: string
  method: string
  /** Path and query as the client sent them. */
  url: string
  requestHeaders: IncomingHttpHeaders
  /** The request body (bounded copy), or null when there was none. */
  requestBody: Buffer | null
  primary: CapturedResponse
  shadowResponse: CapturedResponse
}

export type DifferenceKind = 'value' | 'type' | 'missing' | 'extra' | 'status' | 'header'

/** One difference between the primary and the shadow response. */
export interface Difference {
  /** JSON Pointer into the body (e.g. `/predictions/3/label`); for status/header kinds `/status`, `/headers/<name>`. */
  path: string
  kind: DifferenceKind
  primary?: unknown
  shadow?: unknown
}

export type CompareOutcome = 'match' | 'mismatch' | 'unparseable' | 'unsupported'

/** Per-instance view of a batch prediction. */
export interface InstanceSummary {
  /** Instances compared (a batch of 32 gives 32). */
  compared: number
  /** Instances whose prediction disagrees (label differs, argmax differs, numbers beyond tolerance, text not similar). */
  disagreements: number
  /** Max absolute score difference per compared instance (empty when the format has no scores). */
  scoreDeltas: number[]
  /**
   * Top-k overlap `|topk(primary) ∩ topk(shadow)| / k` per instance that has a ranking (score
   * vector or ranked label list), with k = `compare.topK` (at most the vector length).
   * Absent when no instance had one. (Added by compare/.)
   */
  topKOverlap?: number[]
}

export interface CompareResult {
  outcome: CompareOutcome
  /** The format actually used (auto resolved). */
  format: string
  differences: Difference[]
  instances: InstanceSummary
  /** Why the result is unparseable (e.g. "primary: invalid JSON"), when it is. */
  reason?: string
  /** Parsed bodies, for storage in the mismatch inspector (undefined when unparseable). */
  primaryBody?: unknown
  shadowBody?: unknown
  /**
   * Differences found at paths the noise predicate passed to `Comparator.compare` judged noisy:
   * kept out of `differences`, they do not make a mismatch. Present when a predicate was given.
   * (Added by compare/.)
   */
  noisy?: Difference[]
  /** All non-noisy differences found, including those past the recording cap of `differences`. (Added by compare/.) */
  differenceCount?: number
  /**
   * LLM formats (`openai-*`): agreement per kind and each side's API, streaming and usage.
   * Absent for other formats, and when a side has no answer of the API's shape.
   */
  llm?: LlmComparison
  /**
   * An event stream that ended before its end marker (`[DONE]`, `response.completed`): the
   * comparison is `unparseable`; a truncated shadow stream is a shadow error, a truncated primary
   * (the client's abort included) is not compared.
   */
  streamTruncated?: 'primary' | 'shadow'
  /**
   * Set by the comparison thread when drift or assertions are configured: the digests of the
   * primary's answer (on the job's first item only) and of the shadow's, instead of the bodies.
   * (Added by drift/.)
   */
  digests?: { primary?: AnswerDigest, shadow?: AnswerDigest }
  /** For an internal error: the error message (unbounded text: log it, never use it as a label). (Added by compare/.) */
  detail?: string
}
