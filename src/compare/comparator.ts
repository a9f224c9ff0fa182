import type { CompareConfig } from '../config/schema.js'
import { decodeBody, headerValue, type DecodedBody } from './body.js'
import { FORMATS, resolveFormat, type ConcreteFormat, type ResponseFormat } from './formats/index.js'
import { InstanceComparer, InstanceTally } from './instance.js'
import { DiffSink, JsonDiffer } from './json-diff.js'
import { escapeSegment } from './json-pointer.js'
import { compareAnswers } from './llm/agreement.js'
import { normaliseAnswer, type LlmApi } from './llm/answer.js'
import { apiForPath, decodeEventStream, isEventStream } from './llm/assemble.js'
import { jsonRequirement } from './llm/json-valid.js'
import { RuleSet, type PathRuleSpec } from './rules.js'
import { urlPathOf } from './formats/format.js'
import type { CapturedResponse, CompareJob, CompareResult, InstanceSummary } from './types.js'

/** Predicate on a normalised path (array indices as `*`): true when differences there are noise. */
export type NoisePredicate = (normalisedPath: string) => boolean

interface Engine {
  differ: JsonDiffer
  instances: InstanceComparer
}

/**
 * Compares a primary and a shadow response under one (merged) compare config. Built once per
 * config: the path rules of every format are compiled at construction, so a bad pattern fails
 * there and a comparison only walks prepared tries.
 *
 * `compare` is pure and synchronous, and never throws: an internal error yields an `unparseable`
 * result with reason `internal error` (message in `detail`). Not re-entrant (it reuses buffers);
 * one instance per thread of control, which in Node is one per process.
 */
export class Comparator {
  readonly #cfg: CompareConfig
  readonly #engines = new Map<ConcreteFormat, Engine>()
  readonly #headerPaths: ReadonlyArray<readonly [name: string, path: string]>

  /** @throws {SyntaxError} when a pointer in `ignore` or `paths` is malformed. */
  constructor (cfg: CompareConfig) {
    this.#cfg = cfg
    const user: PathRuleSpec[] = [
      ...cfg.ignore.map((pattern) => ({ pattern, ignore: true })),
      ...Object.entries(cfg.paths).map(([pattern, r]) => ({
        pattern,
        ignore: r.ignore,
        absTol: r.numeric?.absTol,
        relTol: r.numeric?.relTol,
        arrays: r.arrays
      }))
    ]
    const defaults = { absTol: cfg.numeric.absTol, relTol: cfg.numeric.relTol, arrays: cfg.arrays, text: false }
    for (const f of Object.values(FORMATS)) {
      // Format rules first: on a tie the user's (later) rule wins.
      const differ = new JsonDiffer(new RuleSet([...f.rules, ...user], defaults), { textSimilarity: cfg.textSimilarity })
      this.#engines.set(f.name, { differ, instances: new InstanceComparer(differ, { topK: cfg.topK, textSimilarity: cfg.textSimilarity }) })
    }
    this.#headerPaths = cfg.headers.map((h) => [h, '/headers/' + escapeSegment(h)] as const)
  }

  /**
   * Compares one job. Steps: status (`/status`, when `statusCodes`), the configured headers
   * (`/headers/<name>`), body decoding, format resolution, the body diff under the rules, and the
   * per-instance summary. The outcome is `mismatch` when any non-noisy difference remains.
   *
   * A body that cannot be decoded makes the result `unparseable`, unless the statuses differ:
   * then it is a `mismatch` on the status (an HTML 502 page from the shadow is a real finding),
   * and the instances of a parseable side all count as disagreements.
   *
   * @param isNoisy optional noise predicate: differences at paths it accepts go to `noisy`.
   */
  compare (job: CompareJob, isNoisy?: NoisePredicate): CompareResult {
    try {
      return this.#compare(job, isNoisy)
    } catch (err) {
      return {
        outcome: 'unparseable',
        format: this.#cfg.format === 'auto' ? 'json' : this.#cfg.format,
        differences: [],
        instances: emptyInstances(),
        reason: 'internal error',
        detail: err instanceof Error ? err.message : String(err)
      }
    }
  }

  #compare (job: CompareJob, isNoisy: NoisePredicate | undefined): CompareResult {
    const cfg = this.#cfg
    const p = job.primary
    const s = job.shadowResponse
    const sink = new DiffSink({ isNoisy })
    const statusDiffers = cfg.statusCodes && p.status !== s.status
    if (statusDiffers) sink.add({ path: '/status', kind: 'status', primary: p.status, shadow: s.status })
    // A streamed answer is compared as the JSON body it assembles to: its `text/event-stream`
    // content type against a non-streamed `application/json` is not a difference.
    const streamVsJson = isEventStream(p.headers) !== isEventStream(s.headers)
    for (const [name, path] of this.#headerPaths) {
      if (streamVsJson && name === 'content-type') continue
      const pv = headerValue(p.headers, name)
      const sv = headerValue(s.headers, name)
      if (pv !== sv) sink.add({ path, kind: 'header', primary: pv, shadow: sv })
    }

    // An event stream (an LLM answer with `stream: true`) is assembled into the body the same
    // request would have got without streaming, so that streamed and non-streamed answers compare alike.
    const streamApi = this.#streamApi(job.url)
    const pb = decodePrimary(p, cfg.maxBodyBytes, streamApi)
    // Deterministic models often answer byte for byte the same: decode once.
    const sb = sameBytes(p, s) ? pb : decodeResponse(s, cfg.maxBodyBytes, streamApi)
    const pv = pb.ok ? pb.value : undefined
    const sv = sb.ok ? sb.value : undefined
    const format = resolveFormat(cfg.format, job.url, pv, sv)

    if (!pb.ok || !sb.ok) {
      const reason = !pb.ok ? `primary: ${pb.reason}` : `shadow: ${(sb as Extract<DecodedBody, { ok: false }>).reason}`
      if (!statusDiffers) {
        const r: CompareResult = { outcome: 'unparseable', format: format.name, differences: [], instances: emptyInstances(), reason }
        if (!pb.ok && pb.reason === 'stream truncated') r.streamTruncated = 'primary'
        else if (!sb.ok && sb.reason === 'stream truncated') r.streamTruncated = 'shadow'
        // An event stream no format can assemble (not an OpenAI-compatible one): its own outcome,
        // so it is not mistaken for a broken answer.
        else if ((!pb.ok && pb.reason === 'invalid event stream') || (!sb.ok && sb.reason === 'invalid event stream')) {
          r.outcome = 'unsupported'
          r.reason = `${reason} (content-type ${String(p.headers['content-type'] ?? s.headers['content-type'] ?? '?')}: only OpenAI-compatible streams are assembled)`
        }
        return r
      }
      const engine = this.#engine(format)
      engine.instances.setNoise(isNoisy)
      const tally = new InstanceTally()
      if (pb.ok || sb.ok) format.summarise(pv, sv, engine.instances, tally)
      return this.#result('mismatch', format, sink, tally.summary(), isNoisy, pv, sv)
    }

    const engine = this.#engine(format)
    if (format.llm !== undefined) {
      const r = this.#compareLlm(job, format.llm, format, engine, sink, isNoisy, pv, sv)
      if (r !== null) return r
    }
    engine.differ.diff(pv, sv, sink)
    engine.instances.setNoise(isNoisy)
    const tally = new InstanceTally()
    let instances: InstanceSummary
    if (format.summarise(pv, sv, engine.instances, tally)) {
      instances = tally.summary()
    } else {
      instances = { compared: 1, disagreements: sink.count > 0 ? 1 : 0, scoreDeltas: [] }
    }
    return this.#result(sink.count > 0 ? 'mismatch' : 'match', format, sink, instances, isNoisy, pv, sv)
  }

  /** The API to assemble an event stream as: the configured LLM format's, else the request path's, else detected. */
  #streamApi (url: string): LlmApi | 'auto' {
    const f = this.#cfg.format
    if (f !== 'auto' && FORMATS[f].llm !== undefined) return FORMATS[f].llm as LlmApi
    return apiForPath(urlPathOf(url)) ?? 'auto'
  }

  /**
   * An LLM format: both bodies normalised (see `LlmAnswer`) and compared by agreement kind.
   * Null when neither body has the API's shape (two error bodies): the generic diff then applies.
   */
  #compareLlm (job: CompareJob, api: LlmApi, format: ResponseFormat, engine: Engine, sink: DiffSink, isNoisy: NoisePredicate | undefined, pv: unknown, sv: unknown): CompareResult | null {
    const pa = normaliseAnswer(api, pv)
    const sa = normaliseAnswer(api, sv)
    if (pa === null && sa === null) return null
    const tally = new InstanceTally()
    if (pa === null || sa === null) {
      // One side answered, the other did not (an error body with a 200): a whole-body difference.
      engine.differ.diff(pv, sv, sink)
      if (sink.count === 0) sink.add({ path: '', kind: 'type', primary: pv, shadow: sv })
      const n = (pa ?? sa)?.choices.length ?? 0
      for (let i = 0; i < n; i++) engine.instances.absent(tally)
      return this.#result('mismatch', format, sink, tally.summary(), isNoisy, pv, sv)
    }
    const kinds = compareAnswers(pa, sa, engine.differ, sink, tally, this.#jsonRequirement(job))
    const r = this.#result(sink.count > 0 ? 'mismatch' : 'match', format, sink, tally.summary(), isNoisy, pv, sv)
    r.llm = {
      kinds,
      primary: { api, streamed: isEventStream(job.primary.headers), usage: pa.usage },
      shadow: { api, streamed: isEventStream(job.shadowResponse.headers), usage: sa.usage }
    }
    return r
  }

  /** What the request asked of the answer's text (`response_format` / `text.format`), if anything. */
  #jsonRequirement (job: CompareJob): ReturnType<typeof jsonRequirement> {
    if (job.requestBody === null || job.requestBody.length === 0) return null
    const req = decodeBody({ headers: job.requestHeaders, body: job.requestBody }, this.#cfg.maxBodyBytes)
    return req.ok ? jsonRequirement(req.value) : null
  }

  #engine (format: ResponseFormat): Engine {
    return this.#engines.get(format.name) as Engine
  }

  #result (outcome: 'match' | 'mismatch', format: ResponseFormat, sink: DiffSink, instances: InstanceSummary, isNoisy: NoisePredicate | undefined, pv: unknown, sv: unknown): CompareResult {
    const r: CompareResult = {
      outcome,
      format: format.name,
      differences: sink.differences,
      instances,
      differenceCount: sink.count,
      primaryBody: pv,
      shadowBody: sv
    }
    if (isNoisy !== undefined) r.noisy = sink.noisy
    return r
  }
}

/**
 * The primary body of a mirrored request is compared once per shadow: decode (inflate, UTF-8,
 * JSON.parse) it once. A job's shadows are compared one after another, so one entry is enough;
 * the caller drops it with {@link releasePrimaryCache} when the job is done, so that an idle proxy
 * keeps no parsed body alive. Not a WeakMap keyed by the response: with one, the decoded primaries
 * survived young-generation collections (measured in the comparator micro-bench: scavenges of
 * 5-15 ms instead of 0.3 ms, and ~12 µs more proxy CPU per comparison under load). Nothing
 * downstream mutates a parsed body (redaction copies on write).
 */
let cachedPrimary: CapturedResponse | null = null
let cachedMaxBytes = 0
let cachedDecoded: DecodedBody | null = null

function decodePrimary (p: CapturedResponse, maxBytes: number, streamApi: LlmApi | 'auto'): DecodedBody {
  if (cachedPrimary === p && cachedMaxBytes === maxBytes && cachedDecoded !== null) return cachedDecoded
  const decoded = decodeResponse(p, maxBytes, streamApi)
  cachedPrimary = p
  cachedMaxBytes = maxBytes
  cachedDecoded = decoded
  return decoded
}

/** Forgets the decoded primary kept for the shadows of one job (call once the job is compared). */
export function releasePrimaryCache (): void {
  cachedPrimary = null
  cachedDecoded = null
}

/** JSON, or an event stream assembled to the equivalent JSON body. */
function decodeResponse (res: CapturedResponse, maxBytes: number, streamApi: LlmApi | 'auto'): DecodedBody {
  if (!isEventStream(res.headers)) return decodeBody(res, maxBytes)
  // Assembled already when its timing was measured: the same bytes give the same answer, as long
  // as they were not content-coded, fit this comparison's limit and are of the API asked for.
  const a = res.assembled
  if (a !== undefined && !res.truncated && res.body.length <= maxBytes && (streamApi === 'auto' || streamApi === a.api) && headerValue(res.headers, 'content-encoding') === undefined) {
    return { ok: true, value: a.body }
  }
  return decodeEventStream(res, streamApi, maxBytes)
}

function sameBytes (p: CapturedResponse, s: CapturedResponse): boolean {
  return p.truncated === s.truncated &&
    p.status === s.status &&
    headerValue(p.headers, 'content-encoding') === headerValue(s.headers, 'content-encoding') &&
    p.body.equals(s.body)
}

function emptyInstances (): InstanceSummary {
  return { compared: 0, disagreements: 0, scoreDeltas: [] }
}
