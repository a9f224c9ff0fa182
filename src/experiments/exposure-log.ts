/** What the log remembers of an exposed request: enough to credit an outcome to its arm. */
export interface Exposure { experiment: string, variant: string }

/** Entries at most: ~100 bytes each, so the log stays around 20 MB at worst. */
const MAX_ENTRIES = 200_000

/**
 * Request id → the arm that answered it, for outcome events that name a request instead of a
 * unit. Bounded by count and by `experimentSettings.eventWindowMs` (an older request id is
 * `unknown_request`): an outcome that comes a day late is rarely worth a day of memory.
 *
 * A ring in arrival order, not an LRU: a lookup never makes an entry younger, so the oldest entry
 * is always the next to go, by count or by age, and recording one costs a Map insert and two array
 * writes (on every request an experiment answers, the hot path).
 */
export class ExposureLog {
  readonly #ttlMs: number
  readonly #capacity: number
  readonly #index = new Map<string, number>()
  readonly #ids: Array<string | undefined>
  readonly #arms: Array<Exposure | undefined>
  readonly #at: Float64Array
  /** The oldest live slot and the number of slots in use. */
  #head = 0
  #used = 0

  constructor (ttlMs: number, capacity = MAX_ENTRIES) {
    this.#ttlMs = ttlMs
    this.#capacity = capacity
    this.#ids = new Array(capacity)
    this.#arms = new Array(capacity)
    this.#at = new Float64Array(capacity)
  }

  record (requestId: string, e: Exposure, now = Date.now()): void {
    this.#expire(now)
    if (this.#used === this.#capacity) this.#dropHead()
    const slot = (this.#head + this.#used) % this.#capacity
    this.#ids[slot] = requestId
    this.#arms[slot] = e
    this.#at[slot] = now
    this.#used++
    // A client-supplied id seen twice: the newer exposure wins (the older slot is skipped when it expires).
    this.#index.set(requestId, slot)
  }

  get (requestId: string, now = Date.now()): Exposure | undefined {
    const slot = this.#index.get(requestId)
    if (slot === undefined || now - this.#at[slot]! > this.#ttlMs) return undefined
    return this.#arms[slot]
  }

  get size (): number {
    return this.#index.size
  }

  #expire (now: number): void {
    while (this.#used > 0 && now - this.#at[this.#head]! > this.#ttlMs) this.#dropHead()
  }

  #dropHead (): void {
    const slot = this.#head
    const id = this.#ids[slot]!
    if (this.#index.get(id) === slot) this.#index.delete(id)
    this.#ids[slot] = undefined
    this.#arms[slot] = undefined
    this.#head = (slot + 1) % this.#capacity
    this.#used--
  }
}
