import { LRUCache } from 'lru-cache'
import type { Lookup, PredictionRecord, PredictionStore } from './prediction-store.js'

/** Ids remembered after their record expired or was evicted, so a late label says `expired`. */
const TOMBSTONES = 100_000
/** The labels' memory bound (keys and values as UTF-16, plus the cache's own per-entry cost). */
const MAX_LABEL_BYTES = 100 * 1024 * 1024

function labelBytes (value: string, key: string): number {
  return 2 * (key.length + value.length) + 64
}

/**
 * The in-process prediction log: an LRU with a TTL (`feedback.ttlMs`), bounded by
 * `feedback.maxBytes` (each record's in-memory size is estimated from its fields). Labels are kept in
 * a second LRU of their own, as long as predictions, so a repeat within that time replaces rather
 * than double-counts. An expired or evicted id is remembered (up to 100,000 ids) so its label is
 * reported `expired`, not `unknown`.
 */
export class MemoryStore implements PredictionStore {
  readonly kind = 'memory' as const
  readonly #records: LRUCache<string, PredictionRecord>
  readonly #labels: LRUCache<string, string>
  readonly #gone = new LRUCache<string, true>({ max: TOMBSTONES })

  /** `clock`: the time source of the TTLs (tests pass their own, so expiry needs no waiting). */
  constructor (opts: { ttlMs: number, maxBytes: number, clock?: { now: () => number } }) {
    const perf = opts.clock === undefined ? {} : { perf: opts.clock, ttlResolution: 0 }
    this.#records = new LRUCache<string, PredictionRecord>({
      ...perf,
      ttl: opts.ttlMs,
      maxSize: opts.maxBytes,
      sizeCalculation: recordBytes,
      // Only entries of this size or less are kept (one oversized record cannot flush the rest).
      maxEntrySize: Math.min(opts.maxBytes, Math.max(4096, Math.floor(opts.maxBytes / 16))),
      dispose: (_v, key, reason) => { if (reason === 'evict' || reason === 'expire') this.#gone.set(key, true) }
    })
    // Labels are bounded by their estimated bytes (100 MB at most, ~1M labels), not by a count:
    // lru-cache preallocates its arrays for a `max` (1M: ~45 MB in every process, used or not).
    this.#labels = new LRUCache<string, string>({ ...perf, maxSize: MAX_LABEL_BYTES, sizeCalculation: labelBytes, ttl: opts.ttlMs })
  }

  get size (): number {
    return this.#records.size
  }

  async put (requestId: string, record: PredictionRecord): Promise<void> {
    this.#gone.delete(requestId)
    this.#records.set(requestId, record)
  }

  async getMany (requestIds: readonly string[]): Promise<Lookup[]> {
    return requestIds.map((id) => {
      const record = this.#records.get(id)
      if (record !== undefined) return { record }
      return { record: null, expired: this.#gone.has(id) }
    })
  }

  async swapLabels (entries: ReadonlyArray<{ key: string, label: string }>): Promise<Array<string | null>> {
    return entries.map((e) => {
      const prev = this.#labels.get(e.key) ?? null
      this.#labels.set(e.key, e.label)
      return prev
    })
  }

  async close (): Promise<void> {
    this.#records.clear()
    this.#labels.clear()
  }
}

/** Estimated bytes of a record in memory (see the comment inside). */
export function recordBytes (r: PredictionRecord): number {
  // The record's estimated size in the heap (V8 objects, arrays and one-byte strings, plus the
  // cache's own per-entry bookkeeping), walked from its fields: `feedback.maxBytes` bounds
  // memory, not a serialisation. Measured: a one-instance classifier record (label and three
  // scores) takes ~480 bytes of heap; this says ~450. (JSON.stringify per record, the earlier
  // estimate, said ~175 and was a fifth of the prediction log's CPU.)
  let n = 200 + r.served.length
  for (const model in r.models) {
    const m = r.models[model]!
    n += 110 + model.length
    for (const i of m.instances) {
      n += 56
      if (i.label !== undefined) n += 24 + i.label.length
      if (i.scores !== undefined) n += 32 + 8 * i.scores.length
      if (i.value !== undefined) n += 16
      if (i.text !== undefined) n += 24 + i.text.length
      if (i.tools !== undefined) for (const t of i.tools) n += 32 + t.length
    }
  }
  return n
}
