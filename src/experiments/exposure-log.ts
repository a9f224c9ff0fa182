import { LRUCache } from 'lru-cache'

/** What the log remembers of an exposed request: enough to credit an outcome to its arm. */
export interface Exposure { experiment: string, variant: string }

/** Entries at most: ~100 bytes each, so the log stays around 20 MB at worst. */
const MAX_ENTRIES = 200_000

/**
 * Request id → the arm that answered it, for outcome events that name a request instead of a
 * unit. Bounded by count and by `experimentSettings.eventWindowMs` (an older request id is
 * `unknown_request`): an outcome that comes a day late is rarely worth a day of memory.
 */
export class ExposureLog {
  readonly #cache: LRUCache<string, Exposure>

  constructor (ttlMs: number) {
    this.#cache = new LRUCache<string, Exposure>({ max: MAX_ENTRIES, ttl: ttlMs, ttlAutopurge: false })
  }

  record (requestId: string, e: Exposure): void {
    this.#cache.set(requestId, e)
  }

  get (requestId: string): Exposure | undefined {
    return this.#cache.get(requestId)
  }

  get size (): number {
    return this.#cache.size
  }
}
