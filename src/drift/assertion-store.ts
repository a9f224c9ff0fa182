import { randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Config } from '../config/schema.js'
import { redactQuery } from '../compare/redact.js'
import type { RuleKind } from '../config/drift-schema.js'

/** Values larger than this (as JSON) are stored as a note of their size. */
const MAX_VALUE_CHARS = 4096

/** One assertion violation, as `GET /assertions` lists it. */
export interface ViolationRecord {
  id: string
  /** ISO 8601. */
  time: string
  requestId: string
  model: string
  assertion: string
  rule: RuleKind
  method: string
  /** Path and query (query values redacted as for mismatches). */
  path: string
  /** The instance's index in the answer. */
  instance: number
  /** Why it failed (one line). */
  reason: string
  /** The value at the assertion's path, redacted (`compare.mismatches.redact.paths`, applied to the body). */
  value: unknown
}

/**
 * Bounded store of assertion violations, the sibling of the mismatch store: at most
 * `compare.mismatches.keep` records and a quarter of its `maxBytes`, the oldest go first;
 * redacted before they are kept (values are taken from the body after `redact.paths`, see
 * digest.ts; the URL by `redact.query` here).
 * Never written to the mismatch sink.
 */
export class AssertionStore {
  readonly #cache: LRUCache<string, ViolationRecord> | null
  readonly #query: ReadonlySet<string>
  readonly #prefix = randomBytes(3).toString('hex')
  #counter = 0

  constructor (cfg: Config['compare']['mismatches']) {
    this.#query = new Set(cfg.redact.query.map((q) => q.toLowerCase()))
    this.#cache = cfg.keep > 0
      ? new LRUCache<string, ViolationRecord>({ max: cfg.keep, maxSize: Math.max(1024, Math.floor(cfg.maxBytes / 4)), sizeCalculation: (r) => Math.max(1, JSON.stringify(r).length) })
      : null
  }

  get size (): number {
    return this.#cache?.size ?? 0
  }

  add (v: Omit<ViolationRecord, 'id' | 'time' | 'path'> & { url: string }, now: number): void {
    if (this.#cache === null) return
    const { url, ...rest } = v
    let value = v.value
    const text = JSON.stringify(value)
    if (text !== undefined && text.length > MAX_VALUE_CHARS) value = `[value of ${text.length} characters omitted]`
    const id = `${this.#prefix}-${(this.#counter++).toString(36)}`
    this.#cache.set(id, { id, time: new Date(now).toISOString(), ...rest, path: redactQuery(url, this.#query), value })
  }

  /** Newest first; filtered by model and assertion. */
  list (q: { model?: string, assertion?: string, limit?: number } = {}): ViolationRecord[] {
    if (this.#cache === null) return []
    const out: ViolationRecord[] = []
    const limit = q.limit ?? 100
    // LRUCache iterates most recently set first.
    for (const r of this.#cache.values()) {
      if (q.model !== undefined && r.model !== q.model) continue
      if (q.assertion !== undefined && r.assertion !== q.assertion) continue
      out.push(r)
      if (out.length >= limit) break
    }
    return out
  }
}
