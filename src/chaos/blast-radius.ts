/** Seconds in the window of `chaos.maxClientShare`. */
const WINDOW_S = 60

/**
 * The blast-radius cap: client requests and faulted client requests in the last minute, in
 * one-second buckets (two fixed arrays, no allocation per request). A client-facing fault is
 * injected only while the faulted share stays within `maxShare` with this request counted.
 */
export class BlastRadius {
  maxShare: number
  readonly #total = new Uint32Array(WINDOW_S)
  readonly #faulted = new Uint32Array(WINDOW_S)
  #second = 0
  #sumTotal = 0
  #sumFaulted = 0
  /** Faults not injected because of the cap (`GET /chaos/experiments`). */
  capped = 0

  constructor (maxShare: number) {
    this.maxShare = maxShare
  }

  #advance (): number {
    const now = Math.floor(Date.now() / 1000)
    if (now !== this.#second) {
      // Clear the buckets of the seconds that passed (all of them after a minute of silence).
      const steps = Math.min(WINDOW_S, now - this.#second)
      for (let k = 1; k <= steps; k++) {
        const i = (this.#second + k) % WINDOW_S
        this.#sumTotal -= this.#total[i]!
        this.#sumFaulted -= this.#faulted[i]!
        this.#total[i] = 0
        this.#faulted[i] = 0
      }
      this.#second = now
    }
    return now % WINDOW_S
  }

  /** A client request reached a backend. */
  request (): void {
    this.#total[this.#advance()]!++
    this.#sumTotal++
  }

  /** May one more client request be faulted? Counts it when so. */
  tryFault (): boolean {
    const i = this.#advance()
    if (this.#sumFaulted + 1 > this.maxShare * this.#sumTotal) { this.capped++; return false }
    this.#faulted[i]!++
    this.#sumFaulted++
    return true
  }

  /** The last minute's counts. */
  get window (): { requests: number, faulted: number } {
    this.#advance()
    return { requests: this.#sumTotal, faulted: this.#sumFaulted }
  }
}
