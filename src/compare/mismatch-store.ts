import { createWriteStream, type WriteStream } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Config } from '../config/schema.js'
import { bodyAsText, decodeBody, type BodyInput } from './body.js'
import { normalisePath, parsePointer, unescapeSegment, WILDCARD } from './json-pointer.js'
import { compileRedactions, REDACTED, redactHeaders, redactQuery, redactValue, type RedactionPatterns, type StoredHeaders } from './redact.js'
import type { CapturedResponse, CompareJob, CompareResult, Difference } from './types.js'

/** `compare.mismatches` as validated. */
export type MismatchesConfig = Config['compare']['mismatches']

/** Non-JSON bodies are stored as text cut at this many characters. */
export const MAX_TEXT_BODY_CHARS = 64 * 1024
/** Decompression cap when a body is decoded for storage. */
const STORE_DECODE_BYTES = 16 * 1024 * 1024

export interface StoredResponse {
  status: number
  headers: StoredHeaders
  /** Parsed JSON when parseable (redacted), else text (at most 64 K characters), null when empty. */
  body: unknown
  durationMs: number
}

/** What identifies a mismatch: shared by the full record and the listing summary. */
export interface MismatchHead {
  id: string
  /** ISO 8601. */
  time: string
  requestId: string
  /** The shadow's name. */
  shadow: string
  method: string
  /** Path and query as the client sent them. */
  path: string
  /** The format the comparison used. */
  format: string
  /** Differences found (all, including those past the recording cap). */
  differenceCount: number
}

/** A record for listings: no headers or bodies. */
export interface MismatchSummary extends MismatchHead {
  primaryStatus: number
  shadowStatus: number
  /** The first few distinct normalised paths that differ. */
  paths: string[]
}

/**
 * One mismatch, as kept in memory, returned by `get` and written to the sink. `shadow` is the
 * shadow's name; its response is `shadowResponse` (as in `CompareJob`), since one key cannot be both.
 */
export interface MismatchRecord extends MismatchHead {
  request: { headers: StoredHeaders, body: unknown }
  primary: StoredResponse
  shadowResponse: StoredResponse
  /** As recorded (at most 100), with redacted values. */
  differences: Difference[]
}

export interface MismatchStoreStats {
  /** Records held. */
  size: number
  /** Their summed JSON size in bytes. */
  bytes: number
  /** Records not kept because even without bodies they exceeded `maxBytes`. */
  tooLarge: number
  sinkWritten: number
  /** Lines dropped because the sink was backed up, failed or closed. */
  sinkDropped: number
  sinkErrors: number
}

export interface MismatchStoreHooks {
  /** Called once per line dropped by the sink. */
  onSinkDrop?: () => void
  /** Called for each sink error (the sink stops after the first). */
  onSinkError?: (err: Error) => void
}

/**
 * Bounded store of mismatch samples for the inspector (`GET /mismatches`), with an optional JSONL
 * sink. Bounded by count (`keep`) and by bytes (`maxBytes`, measured as the record's JSON byte
 * length); the oldest go first. Everything is redacted before it is kept or written:
 * `redact.headers` values (request, primary and shadow headers) and `redact.paths` pointers in
 * the request and both response bodies become `"[REDACTED]"`.
 *
 * The sink appends one JSON line per mismatch through a write stream. It never blocks and never
 * throws into the caller: while the stream is backed up (`write()` returned false, until
 * `drain`), or after it failed, lines are dropped and counted.
 */
export class MismatchStore {
  readonly #cache: LRUCache<string, MismatchRecord> | null
  readonly #maxBytes: number
  readonly #redactHeaders: ReadonlySet<string>
  readonly #redactPaths: RedactionPatterns
  readonly #redactQuery: ReadonlySet<string>
  readonly #hooks: MismatchStoreHooks
  readonly #keepCount: number
  readonly #keepPerShadow: number | null
  /** Ids held per shadow, oldest first (a Set keeps insertion order and deletes in O(1)). */
  readonly #byShadow = new Map<string, Set<string>>()
  #quota = Infinity
  readonly #idPrefix = randomBytes(3).toString('hex')
  #counter = 0
  #tooLarge = 0
  #sink: WriteStream | null = null
  #sinkConfigured = false
  #sinkBackedUp = false
  #sinkFailed = false
  #sinkWritten = 0
  #sinkDropped = 0
  #sinkErrors = 0

  /** @throws {SyntaxError} for a malformed redaction pointer. */
  constructor (cfg: MismatchesConfig, hooks: MismatchStoreHooks = {}, shadows = 1) {
    this.#maxBytes = cfg.maxBytes
    this.#keepCount = cfg.keep
    this.#keepPerShadow = cfg.keepPerShadow ?? null
    this.setShadowCount(shadows)
    this.#redactHeaders = new Set(cfg.redact.headers.map((h) => h.toLowerCase()))
    this.#redactPaths = compileRedactions(cfg.redact.paths)
    this.#redactQuery = new Set(cfg.redact.query.map((q) => q.toLowerCase()))
    this.#hooks = hooks
    this.#cache = cfg.keep > 0
      ? new LRUCache<string, MismatchRecord>({
        max: cfg.keep,
        maxSize: cfg.maxBytes,
        sizeCalculation: (r) => Math.max(1, jsonBytes(r)),
        // Whatever removes a record (the quota, global eviction, clear) updates its shadow's list.
        dispose: (r) => { this.#byShadow.get(r.shadow)?.delete(r.id) }
      })
      : null
    if (cfg.sink !== null) this.#openSink(cfg.sink)
  }

  /**
   * Stores a mismatch (and writes it to the sink); returns its id. The bodies come from the
   * comparison result when it parsed them, else they are decoded again for display.
   */
  add (job: CompareJob, result: CompareResult): string {
    const id = this.#nextId()
    const record: MismatchRecord = {
      id,
      time: new Date().toISOString(),
      requestId: job.requestId,
      shadow: job.shadow,
      method: job.method,
      path: redactQuery(job.url, this.#redactQuery),
      format: result.format,
      differenceCount: result.differenceCount ?? result.differences.length,
      request: { headers: redactHeaders(job.requestHeaders, this.#redactHeaders), body: this.#requestBody(job) },
      primary: this.#response(job.primary, result.primaryBody),
      shadowResponse: this.#response(job.shadowResponse, result.shadowBody),
      differences: result.differences.map((d) => this.#redactDifference(d))
    }
    const line = JSON.stringify(record)
    this.#keep(record, Buffer.byteLength(line))
    this.#write(line)
    return id
  }

  /**
   * The per-shadow quota: `keepPerShadow`, or `keep / shadows` (at least 10). Set again when a
   * reload changes the number of shadows; records over a lowered quota go at their shadow's next add.
   */
  setShadowCount (shadows: number): void {
    this.#quota = this.#keepPerShadow ?? Math.max(10, Math.floor(this.#keepCount / Math.max(1, shadows)))
  }

  /** Summaries, newest first; `limit` defaults to 100. */
  list (opts: { shadow?: string, limit?: number } = {}): MismatchSummary[] {
    const limit = opts.limit ?? 100
    const out: MismatchSummary[] = []
    if (this.#cache === null || limit <= 0) return out
    // Entries iterate most recently set first; `get` below peeks, so order is insertion order.
    for (const r of this.#cache.values()) {
      if (opts.shadow !== undefined && r.shadow !== opts.shadow) continue
      out.push(summarise(r))
      if (out.length >= limit) break
    }
    return out
  }

  /** The full record, or undefined. Does not change the order of `list`. */
  get (id: string): MismatchRecord | undefined {
    return this.#cache?.peek(id)
  }

  get size (): number {
    return this.#cache?.size ?? 0
  }

  clear (): void {
    this.#cache?.clear()
  }

  stats (): MismatchStoreStats {
    return {
      size: this.size,
      bytes: this.#cache?.calculatedSize ?? 0,
      tooLarge: this.#tooLarge,
      sinkWritten: this.#sinkWritten,
      sinkDropped: this.#sinkDropped,
      sinkErrors: this.#sinkErrors
    }
  }

  /** Flushes and closes the sink; resolves when the file is closed (never rejects). */
  async close (): Promise<void> {
    const sink = this.#sink
    this.#sink = null
    if (sink === null || sink.destroyed) return
    await new Promise<void>((resolve) => {
      sink.once('close', resolve)
      sink.once('error', () => resolve())
      sink.end()
    })
  }

  #nextId (): string {
    this.#counter++
    return `${this.#idPrefix}${this.#counter.toString(36).padStart(4, '0')}${randomBytes(2).toString('hex')}`
  }

  /** Evicts this shadow's oldest records down to its quota minus one; returns its id list. */
  #makeRoom (shadow: string): Set<string> {
    let ids = this.#byShadow.get(shadow)
    if (ids === undefined) {
      ids = new Set()
      this.#byShadow.set(shadow, ids)
    }
    while (ids.size >= this.#quota) {
      const oldest = ids.values().next().value!
      ids.delete(oldest)
      this.#cache!.delete(oldest)
    }
    return ids
  }

  #keep (record: MismatchRecord, bytes: number): void {
    const cache = this.#cache
    if (cache === null) return
    const ids = this.#makeRoom(record.shadow)
    // The size is known from the sink line: pass it so the cache does not serialise again.
    if (bytes <= this.#maxBytes) {
      cache.set(record.id, record, { size: Math.max(1, bytes) })
      ids.add(record.id)
      return
    }
    // Too big to keep whole: keep the metadata and differences, drop the bodies.
    const slim: MismatchRecord = {
      ...record,
      request: { ...record.request, body: OMITTED },
      primary: { ...record.primary, body: OMITTED },
      shadowResponse: { ...record.shadowResponse, body: OMITTED },
      differences: record.differences.map((d) => ({ path: d.path, kind: d.kind }))
    }
    const slimBytes = jsonBytes(slim)
    if (slimBytes <= this.#maxBytes) {
      cache.set(slim.id, slim, { size: Math.max(1, slimBytes) })
      ids.add(slim.id)
    } else this.#tooLarge++
  }

  #requestBody (job: CompareJob): unknown {
    if (job.requestBody === null || job.requestBody.length === 0) return null
    return this.#body({ headers: job.requestHeaders, body: job.requestBody }, undefined)
  }

  #response (res: CapturedResponse, parsed: unknown): StoredResponse {
    return {
      status: res.status,
      headers: redactHeaders(res.headers, this.#redactHeaders),
      body: this.#body(res, parsed),
      durationMs: res.durationMs
    }
  }

  /** Parsed JSON (redacted) when possible, else text. */
  #body (res: BodyInput, parsed: unknown): unknown {
    if (parsed !== undefined) return redactValue(parsed, this.#redactPaths)
    const decoded = decodeBody(res, STORE_DECODE_BYTES)
    if (decoded.ok) return redactValue(decoded.value, this.#redactPaths)
    // Text cannot be redacted by pointer; with body redaction configured, keep no text at all.
    if (this.#redactPaths.length > 0) return '[REDACTED: non-JSON body]'
    return bodyAsText(res, STORE_DECODE_BYTES, MAX_TEXT_BODY_CHARS)
  }

  /**
   * Differences carry values from the bodies and headers: a value at or under a redacted pointer
   * is replaced, one above it is redacted inside.
   */
  #redactDifference (d: Difference): Difference {
    if (d.kind === 'header') {
      return this.#redactHeaders.has(unescapeSegment(d.path.slice('/headers/'.length))) ? { ...d, ...redactedPair(d) } : d
    }
    if (this.#redactPaths.length === 0 || d.kind === 'status') return d
    const path = parsePointer(d.path)
    let out = d
    for (const pattern of this.#redactPaths) {
      const n = Math.min(pattern.length, path.length)
      let match = true
      for (let i = 0; i < n && match; i++) match = pattern[i] === WILDCARD || pattern[i] === path[i]
      if (!match) continue
      if (pattern.length <= path.length) return { ...d, ...redactedPair(d) }
      const rest = [pattern.slice(path.length)]
      out = { ...out }
      if ('primary' in out) out.primary = redactValue(out.primary, rest)
      if ('shadow' in out) out.shadow = redactValue(out.shadow, rest)
    }
    return out
  }

  #write (line: string): void {
    if (!this.#sinkConfigured) return
    const sink = this.#sink
    // Closed, failed or backed up: drop rather than buffer without bound.
    if (sink === null || this.#sinkFailed || this.#sinkBackedUp) {
      this.#dropLine()
      return
    }
    try {
      if (!sink.write(line + '\n')) this.#sinkBackedUp = true
      this.#sinkWritten++
    } catch (err) {
      this.#sinkError(err as Error)
      this.#dropLine()
    }
  }

  #dropLine (): void {
    this.#sinkDropped++
    this.#hooks.onSinkDrop?.()
  }

  #openSink (file: string): void {
    const sink = createWriteStream(file, { flags: 'a' })
    sink.on('drain', () => { this.#sinkBackedUp = false })
    sink.on('error', (err) => this.#sinkError(err))
    this.#sink = sink
    this.#sinkConfigured = true
  }

  #sinkError (err: Error): void {
    this.#sinkErrors++
    this.#sinkFailed = true
    try {
      this.#hooks.onSinkError?.(err)
    } catch {
      // A hook must not turn a sink failure into a crash.
    }
  }
}

const OMITTED = '[omitted: record exceeds mismatches.maxBytes]'

function redactedPair (d: Difference): Pick<Difference, 'primary' | 'shadow'> {
  const out: Pick<Difference, 'primary' | 'shadow'> = {}
  if ('primary' in d) out.primary = REDACTED
  if ('shadow' in d) out.shadow = REDACTED
  return out
}

function summarise (r: MismatchRecord): MismatchSummary {
  const paths = [...new Set(r.differences.map((d) => normalisePath(d.path)))].slice(0, 5)
  return {
    id: r.id,
    time: r.time,
    requestId: r.requestId,
    shadow: r.shadow,
    method: r.method,
    path: r.path,
    primaryStatus: r.primary.status,
    shadowStatus: r.shadowResponse.status,
    format: r.format,
    differenceCount: r.differenceCount,
    paths
  }
}

function jsonBytes (v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v))
}
