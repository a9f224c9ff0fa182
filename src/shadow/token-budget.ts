/**
 * A shadow's token budget (`shadows[].llm.maxTokensPerMinute`): tokens the shadow reported
 * spending (input + output of its usage) in the current wall-clock minute. Checked when a copy
 * is planned, spent when its answer is counted, so answers already in flight when the budget runs
 * out still count: the overshoot is bounded by what `maxConcurrency` answers spend. Kept across
 * config reloads with the shadow's counters; `limit` is the latest config's.
 */
export class TokenBudget {
  limit: number
  #minute = -1
  #spent = 0

  constructor (limit: number) {
    this.limit = limit
  }

  /** True while this minute's tokens are spent (copies are then skipped, `reason="budget"`). */
  exhausted (now = Date.now()): boolean {
    this.#roll(now)
    return this.#spent >= this.limit
  }

  /** Counts tokens an answer reported. */
  spend (tokens: number, now = Date.now()): void {
    if (!(tokens > 0)) return
    this.#roll(now)
    this.#spent += tokens
  }

  /** Tokens spent in the current minute. */
  spent (now = Date.now()): number {
    this.#roll(now)
    return this.#spent
  }

  #roll (now: number): void {
    const m = Math.floor(now / 60_000)
    if (m !== this.#minute) {
      this.#minute = m
      this.#spent = 0
    }
  }
}
