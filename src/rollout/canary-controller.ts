import type { CanaryConfig } from '../config/canary-schema.js'
import type { CanaryMetrics } from '../metrics/metrics.js'
import type { Logger } from '../log/logger.js'
import { PenumbraError } from '../errors.js'
import {
  analyse, CANARY_PHASES, describePhase, diffTotals, IDLE, isRunning, paused, resumed, rolledBack, startState,
  type CanaryAction, type CanaryState, type CanaryTotals, type GateVerdict
} from './canary-engine.js'

/**
 * Where a controller reads the gates' inputs and applies its decisions: this process (the
 * in-process controller), or Prometheus and every replica's admin API (`penumbra canary`).
 */
export interface CanaryIO {
  /** Cumulative totals now (a step is judged on the difference since it began). */
  totals (): Promise<CanaryTotals>
  /** Routes as `state` says: its weight on the candidate, its mirrors; nothing for a stopped canary. */
  apply (state: CanaryState, reason: string): Promise<void>
  /** The candidate becomes the primary (the blue/green switch). */
  promote (): Promise<void>
}

/** One entry of the decision log (`GET /canary` keeps the last ones; each is also one JSON log line). */
export interface DecisionRecord {
  seq: number
  at: string
  /** advance, hold, rollback, promote, complete, pause (analyses) or start, resume, abort, retry, restart (commands). */
  action: CanaryAction | 'start' | 'resume' | 'abort' | 'retry' | 'restart' | 'set'
  from: string
  to: string
  weight: number
  summary: string
  gates: GateVerdict[]
  /** Who asked (a command) or "controller" (an analysis). */
  who: string
}

/** Decisions kept in memory for `GET /canary` and the status page. */
const MAX_DECISIONS = 200

/**
 * Runs the engine every `intervalMs` while the canary is running and applies its decisions; the
 * admin commands (start, pause, resume, abort, promote, retry) go through the same queue, so a
 * command and an analysis never interleave. Holds no counters itself: it reads totals through
 * its IO and keeps the totals at the start of the current step (the mark).
 */
export class CanaryController {
  cfg: CanaryConfig
  state: CanaryState = IDLE
  readonly decisions: DecisionRecord[] = []
  /** The last verdict of each gate, by gate name. */
  readonly lastGates = new Map<string, GateVerdict>()
  readonly #io: CanaryIO
  readonly #log: Logger
  readonly #metrics: CanaryMetrics | null
  readonly #name: string
  /** Decide by itself every interval (false: an external controller sets the weight). */
  readonly #autonomous: boolean
  /** Let the process exit with the timer pending (a proxy); false for `penumbra canary`, which lives for it. */
  readonly #unref: boolean
  #mark: CanaryTotals | null = null
  #timer: NodeJS.Timeout | null = null
  #chain: Promise<unknown> = Promise.resolve()
  #seq = 0
  #since = new Date().toISOString()
  #lastAnalysis: string | null = null
  #closed = false
  /** Tests and the status page wait on this: resolves on the next recorded decision. */
  #waiters: Array<(d: DecisionRecord) => void> = []

  constructor (cfg: CanaryConfig, io: CanaryIO, opts: { log: Logger, metrics?: CanaryMetrics | null, name?: string, autonomous?: boolean, unref?: boolean }) {
    this.cfg = cfg
    this.#io = io
    this.#log = opts.log
    this.#metrics = opts.metrics ?? null
    this.#name = opts.name ?? cfg.candidate
    this.#autonomous = opts.autonomous ?? cfg.controller === 'internal'
    this.#unref = opts.unref ?? true
    this.#gauges()
  }

  get name (): string {
    return this.#name
  }

  /** Resolves with the next decision recorded (an analysis or a command). */
  nextDecision (): Promise<DecisionRecord> {
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  // -- commands --------------------------------------------------------------------------------

  start (who: string): Promise<unknown> {
    return this.#run(async () => {
      if (isRunning(this.state) || this.state.phase === 'paused') throw new PenumbraError('PENUMBRA_CONFLICT', `the canary is already ${describePhase(this.cfg, this.state)}: abort it first, or retry once it failed`)
      if (this.state.phase === 'rolled_back') throw new PenumbraError('PENUMBRA_CONFLICT', 'the canary was rolled back: POST /canary/retry reruns it')
      await this.#enter(startState(this.cfg), 'start', who, `started by ${who}`)
      return this.status()
    })
  }

  pause (who: string): Promise<unknown> {
    return this.#run(async () => {
      if (!isRunning(this.state)) throw new PenumbraError('PENUMBRA_CONFLICT', `the canary is ${describePhase(this.cfg, this.state)}: only a running canary can be paused`)
      await this.#enter(paused(this.state, `paused by ${who}`), 'pause', who, `paused by ${who}; the weight stays at ${pctOf(this.state.weight)}`)
      return this.status()
    })
  }

  resume (who: string): Promise<unknown> {
    return this.#run(async () => {
      if (this.state.phase !== 'paused') throw new PenumbraError('PENUMBRA_CONFLICT', `the canary is ${describePhase(this.cfg, this.state)}, not paused`)
      await this.#enter(resumed(this.state), 'resume', who, `resumed by ${who}: the step's analysis starts again`)
      return this.status()
    })
  }

  /** Rollback now: weight 0 at once. */
  abort (who: string): Promise<unknown> {
    return this.#run(async () => {
      if (this.state.phase === 'idle' || this.state.phase === 'rolled_back' || this.state.phase === 'promoted') throw new PenumbraError('PENUMBRA_CONFLICT', `the canary is ${this.state.phase}: nothing to abort`)
      await this.#enter(rolledBack(`aborted by ${who} at ${describePhase(this.cfg, this.state)}`), 'abort', who, `aborted by ${who}: the candidate's weight is 0`)
      return this.status()
    })
  }

  /** Promote now, whatever the gates say (an operator's decision, logged as such). */
  promote (who: string): Promise<unknown> {
    return this.#run(async () => {
      if (this.state.phase === 'idle' || this.state.phase === 'rolled_back' || this.state.phase === 'promoted') throw new PenumbraError('PENUMBRA_CONFLICT', `the canary is ${this.state.phase}: start it first`)
      await this.#promote(who, `promoted by ${who} at ${describePhase(this.cfg, this.state)}`)
      return this.status()
    })
  }

  /** Reruns a rolled-back canary from the first step, with the same config. */
  retry (who: string): Promise<unknown> {
    return this.#run(async () => {
      if (this.state.phase !== 'rolled_back') throw new PenumbraError('PENUMBRA_CONFLICT', `the canary is ${describePhase(this.cfg, this.state)}: only a rolled-back canary can be retried`)
      await this.#enter(startState(this.cfg), 'retry', who, `retried by ${who}: from the first step again`)
      return this.status()
    })
  }

  /**
   * An external controller's decision (`PUT /canary/weight`): this process routes as told and
   * records it; it decides nothing by itself in that mode.
   */
  set (next: CanaryState, summary: string, gates: GateVerdict[], who: string): Promise<unknown> {
    return this.#run(async () => {
      if (this.#autonomous) throw new PenumbraError('PENUMBRA_CONFLICT', 'canary.controller is internal: this process decides its weight itself (set controller: external to drive it with `penumbra canary`)')
      await this.#enter(next, 'set', who, summary, gates)
      return this.status()
    })
  }

  /**
   * A reloaded config. Unchanged: routing is re-applied (backends may have been rebuilt). Changed
   * candidate or settings while running: the analysis restarts from the first step.
   */
  reconfigure (cfg: CanaryConfig): Promise<void> {
    return this.#run(async () => {
      const changed = JSON.stringify(cfg) !== JSON.stringify(this.cfg)
      this.cfg = cfg
      if (changed && (isRunning(this.state) || this.state.phase === 'paused') && this.#autonomous) {
        await this.#enter(startState(cfg), 'restart', 'reload', 'the canary config changed (candidate or settings): the analysis restarts from the first step')
        return
      }
      if (changed && this.state.phase === 'rolled_back') this.state = IDLE
      await this.#io.apply(this.state, 'reload')
      this.#gauges()
    })
  }

  /**
   * A --workers worker whose canary the cluster primary decides: route as `state` says and keep
   * it (a reload re-applies it), recording nothing (the primary logs and counts the decision).
   */
  follow (state: CanaryState): Promise<void> {
    return this.#run(async () => {
      this.state = state
      await this.#io.apply(state, 'cluster primary')
    })
  }

  /** Stops the timer (process stop, canary removed from the config). */
  close (): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  /** Routes again as the current state says (the active primary, its baseline, changed). */
  refresh (): Promise<void> {
    return this.#run(async () => { await this.#io.apply(this.state, 'refresh') })
  }

  /** Resolves once every queued command, reload and analysis so far is done. */
  settled (): Promise<void> {
    return this.#run(async () => {})
  }

  /** One analysis now (the timer calls it; tests may too). */
  tick (): Promise<void> {
    return this.#run(async () => {
      if (!isRunning(this.state) || !this.#autonomous) return
      const now = await this.#io.totals()
      const d = analyse(this.cfg, this.state, diffTotals(now, this.#mark))
      this.#lastAnalysis = new Date().toISOString()
      if (d.action === 'promote') { await this.#promote('controller', d.summary, d.gates); return }
      const moved = d.to.phase !== this.state.phase || d.to.step !== this.state.step
      if (moved) await this.#enter(d.to, d.action, 'controller', d.summary, d.gates)
      else {
        this.state = d.to
        this.#record(d.action, 'controller', d.summary, d.gates, describePhase(this.cfg, d.to))
        this.#schedule()
      }
    })
  }

  // -- internals -------------------------------------------------------------------------------

  #run<T> (fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(fn)
    this.#chain = p.catch(() => {})
    return p
  }

  async #promote (who: string, summary: string, gates: GateVerdict[] = []): Promise<void> {
    const from = describePhase(this.cfg, this.state)
    await this.#io.promote()
    await this.#enter({ phase: 'promoted', step: this.state.step, weight: this.state.weight, holds: 0, resumeTo: null, reason: summary }, 'promote', who, summary, gates, true, from)
  }

  async #enter (next: CanaryState, action: DecisionRecord['action'], who: string, summary: string, gates: GateVerdict[] = [], apply = true, fromText?: string): Promise<void> {
    const from = fromText ?? describePhase(this.cfg, this.state)
    // The state is what every process routes by: applied first, then taken and recorded together
    // (no await between), so GET /canary never shows a state without its decision. A failed
    // apply changes nothing here: the next analysis decides (and applies) again.
    if (apply) {
      try {
        await this.#io.apply(next, summary)
      } catch (err) {
        this.#schedule()
        throw err
      }
    }
    this.state = next
    this.#since = new Date().toISOString()
    this.#record(action, who, summary, gates, describePhase(this.cfg, next), from)
    // The new step is judged on what happens from now on.
    this.#mark = isRunning(next) && this.#autonomous ? await this.#io.totals() : null
    this.#schedule()
  }

  #schedule (): void {
    if (this.#timer !== null) { clearTimeout(this.#timer); this.#timer = null }
    if (this.#closed || !this.#autonomous || !isRunning(this.state)) return
    this.#timer = setTimeout(() => {
      this.tick().catch((err: unknown) => {
        // A failed read (Prometheus down, a replica unreachable) decides nothing: look again next interval.
        this.#log.error({ err, canary: this.#name }, 'canary analysis failed; trying again next interval')
        this.#schedule()
      })
    }, this.cfg.intervalMs)
    if (this.#unref) this.#timer.unref()
  }

  #record (action: DecisionRecord['action'], who: string, summary: string, gates: GateVerdict[], to: string, from = to): void {
    const rec: DecisionRecord = { seq: ++this.#seq, at: new Date().toISOString(), action, from, to, weight: this.state.weight, summary, gates, who }
    this.decisions.push(rec)
    if (this.decisions.length > MAX_DECISIONS) this.decisions.shift()
    for (const g of gates) this.lastGates.set(g.gate, g)
    const m = this.#metrics
    if (m !== null) {
      for (const g of gates) m.canaryDecisions.inc({ canary: this.#name, gate: g.gate, result: g.result })
      m.canaryDecisions.inc({ canary: this.#name, gate: 'decision', result: action })
    }
    this.#gauges()
    // One JSON line per decision, with every gate's verdict in words.
    this.#log.info({ canary: this.#name, decision: { seq: rec.seq, action, from, to, weight: rec.weight, who, gates: gates.map((g) => ({ gate: g.gate, result: g.result, text: g.text })) } }, `canary: ${summary.startsWith(`${action}:`) ? summary : `${action}: ${summary}`}`)
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w(rec)
  }

  #gauges (): void {
    const m = this.#metrics
    if (m === null) return
    const s = this.state
    m.canaryWeight.set({ canary: this.#name }, s.weight)
    m.canaryStep.set({ canary: this.#name }, s.step + 1)
    for (const p of CANARY_PHASES) m.canaryState.set({ canary: this.#name, state: p }, p === s.phase ? 1 : 0)
  }

  /** `GET /canary`. */
  status (): Record<string, unknown> {
    const s = this.state
    const c = this.cfg
    return {
      canary: this.#name,
      candidate: c.candidate,
      baseline: c.baseline,
      controller: c.controller,
      state: describePhase(c, s),
      phase: s.phase,
      step: s.step + 1,
      steps: c.steps,
      weight: s.weight,
      holds: s.holds,
      maxHolds: c.maxHolds,
      reason: s.reason,
      since: this.#since,
      lastAnalysisAt: this.#lastAnalysis,
      intervalMs: c.intervalMs,
      gates: [...this.lastGates.values()],
      decisions: this.decisions.slice(-50)
    }
  }
}

function pctOf (w: number): string {
  return `${Number((w * 100).toPrecision(4))}%`
}
