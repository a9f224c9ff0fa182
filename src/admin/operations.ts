import type { Config } from '../config/schema.js'
import type { ChaosExperimentSpec } from '../config/chaos-schema.js'
import type { PrimaryStatus } from '../runtime/primary-selection.js'
import { ShadowReport, type ShadowReportData, type ShadowView } from '../compare/shadow-report.js'
import type { QualityData } from '../feedback/quality.js'

/** One process's share of `GET /report`: per shadow its view and accumulated numbers. */
export interface ProcessReport {
  shadows: Array<{ name: string, view: ShadowView, data: ShadowReportData }>
  /** Comparisons queued, not yet finished. */
  pending: number
  /** Mismatch records held. */
  stored: number
}

/** A `PATCH /shadows/:name` body. */
export interface ShadowPatch { sampleRate?: number, enabled?: boolean }

/** A `PATCH /experiments/:name` body. */
export interface ExperimentPatch { traffic?: number, enabled?: boolean }

/**
 * What one penumbra process offers its admin API: reads of its state and the mutations of its
 * runtime state. The in-process admin backend and, with `--workers N`, the primary process
 * (over cluster IPC) drive a process only through {@link OPERATIONS}, so an operation is written
 * once and the admin side never needs the composition root.
 */
export interface ProcessOps {
  describeShadows: () => unknown[]
  patchShadow: (name: string, patch: ShadowPatch) => unknown
  listMismatches: (q: { shadow?: string, limit?: number }) => unknown[]
  getMismatch: (id: string) => unknown
  noiseSnapshot: () => unknown
  reportData: () => ProcessReport
  reload: (next: Config) => string[]
  describeBackends: (probe: boolean) => Promise<unknown[]>
  applyPrimary: (status: PrimaryStatus) => PrimaryStatus
  describeExperiments: () => unknown[]
  /** Outcome events; `byUnitOnly` (a --workers process): events by request id are refused. */
  postEvents: (events: unknown[], byUnitOnly: boolean) => unknown
  patchExperiment: (name: string, patch: ExperimentPatch) => unknown
  /** Feedback tallies (`GET /quality`, summed over workers). */
  feedbackData: () => QualityData
  /** `POST /feedback` items; the caller counts `penumbra_feedback_total`. */
  ingestFeedback: (items: unknown[]) => Promise<unknown>
  /** Chaos (issue #20); throws PENUMBRA_CHAOS_DISABLED when chaos is off. */
  chaosList: () => unknown
  chaosStart: (spec: ChaosExperimentSpec, who: string) => unknown
  chaosStop: (name: string, who: string) => unknown
  chaosStopAll: (who: string) => unknown
  /** `GET /drift` of this process. */
  driftSnapshot: () => unknown
  /** `GET /assertions` of this process. */
  assertionsSnapshot: (q: { model?: string, assertion?: string, limit?: number }) => unknown
  /** `POST /drift/reference`. */
  pinDriftReference: (model?: string) => unknown
  /** The canary (issue #18): `GET /canary`, its commands, and an external controller's weight. */
  canaryStatus: () => unknown
  canaryCommand: (cmd: CanaryCommandName, who: string) => Promise<unknown>
  canaryWeight: (req: CanaryWeightBody, who: string) => Promise<unknown>
  /** With --workers and canary.controller: internal, the cluster primary's controller reads and drives the workers. */
  canaryTotals: () => Promise<unknown>
  canaryApply: (state: unknown) => Promise<unknown>
}

/** `POST /canary/<cmd>`. */
export type CanaryCommandName = 'start' | 'pause' | 'resume' | 'abort' | 'promote' | 'retry'
/** `PUT /canary/weight`'s body. */
export interface CanaryWeightBody { weight: number, phase?: 'idle' | 'shadow' | 'step' | 'paused' | 'rolled_back' | 'promoted' | 'completed', step?: number, reason?: string, summary?: string, gates?: unknown[] }

/**
 * The admin operations table: name → how a process carries it out. Names are the IPC `op` of
 * cluster messages; arguments must survive structured clone.
 */
export const OPERATIONS = {
  shadows: (p: ProcessOps) => p.describeShadows(),
  patch: (p: ProcessOps, a: { name: string, patch: ShadowPatch }) => p.patchShadow(a.name, a.patch),
  mismatches: (p: ProcessOps, q: { shadow?: string, limit?: number }) => p.listMismatches(q),
  mismatch: (p: ProcessOps, id: string) => p.getMismatch(id) ?? null,
  noise: (p: ProcessOps) => p.noiseSnapshot(),
  report: (p: ProcessOps) => p.reportData(),
  reload: (p: ProcessOps, next: Config) => p.reload(next),
  backends: async (p: ProcessOps) => await p.describeBackends(false),
  applyPrimary: (p: ProcessOps, status: PrimaryStatus) => p.applyPrimary(status),
  experiments: (p: ProcessOps) => p.describeExperiments(),
  events: (p: ProcessOps, a: { events: unknown[] }) => p.postEvents(a.events, true),
  patchExperiment: (p: ProcessOps, a: { name: string, patch: ExperimentPatch }) => p.patchExperiment(a.name, a.patch),
  feedbackData: (p: ProcessOps) => p.feedbackData(),
  feedback: async (p: ProcessOps, a: { items: unknown[] }) => await p.ingestFeedback(a.items),
  chaosList: (p: ProcessOps) => p.chaosList(),
  chaosStart: (p: ProcessOps, a: { spec: ChaosExperimentSpec, who: string }) => p.chaosStart(a.spec, a.who),
  chaosStop: (p: ProcessOps, a: { name: string, who: string }) => p.chaosStop(a.name, a.who),
  chaosStopAll: (p: ProcessOps, a: { who: string }) => p.chaosStopAll(a.who),
  drift: (p: ProcessOps) => p.driftSnapshot(),
  assertions: (p: ProcessOps, q: { model?: string, assertion?: string, limit?: number }) => p.assertionsSnapshot(q),
  driftReference: (p: ProcessOps, a: { model?: string }) => p.pinDriftReference(a.model),
  canary: (p: ProcessOps) => p.canaryStatus(),
  canaryCommand: async (p: ProcessOps, a: { cmd: CanaryCommandName, who: string }) => await p.canaryCommand(a.cmd, a.who),
  canaryWeight: async (p: ProcessOps, a: { req: CanaryWeightBody, who: string }) => await p.canaryWeight(a.req, a.who),
  canaryTotals: async (p: ProcessOps) => await p.canaryTotals(),
  canaryApply: async (p: ProcessOps, state: unknown) => await p.canaryApply(state)
} as const

/** An operation's name (the `op` of an admin IPC message). */
export type OperationName = keyof typeof OPERATIONS

/** Is `op` in the table? (IPC input is untrusted shape-wise.) */
export function isOperation (op: string): op is OperationName {
  return Object.hasOwn(OPERATIONS, op)
}

/** Runs one operation on a process; unknown arguments are the caller's to have validated. */
export function runOperation (p: ProcessOps, op: OperationName, args?: unknown): unknown {
  return (OPERATIONS[op] as (p: ProcessOps, a: unknown) => unknown)(p, args)
}

/**
 * The `GET /report` body from one or more processes' shares: counters and histograms summed
 * per shadow. The same function serves one process and a cluster, so both answer alike.
 */
export function mergeReports (parts: ProcessReport[], extra: Record<string, unknown>): Record<string, unknown> {
  const merged = new Map<string, { report: ShadowReport, view: ShadowView }>()
  for (const part of parts) {
    for (const s of part.shadows) {
      let m = merged.get(s.name)
      if (m === undefined) {
        m = { report: new ShadowReport(), view: structuredClone(s.view) }
        merged.set(s.name, m)
      } else {
        const c = m.view.counters
        c.mirrored += s.view.counters.mirrored
        c.ok += s.view.counters.ok
        c.error += s.view.counters.error
        c.timeout += s.view.counters.timeout
        for (const k of Object.keys(c.skipped) as Array<keyof typeof c.skipped>) c.skipped[k] += s.view.counters.skipped[k]
        const b = m.view.llm?.budget
        if (b != null && s.view.llm?.budget != null) {
          // Each worker holds its share of the budget: the cluster's is their sum.
          b.tokensPerMinute += s.view.llm.budget.tokensPerMinute
          b.spentThisMinute += s.view.llm.budget.spentThisMinute
        }
      }
      m.report.absorb(s.data)
    }
  }
  return {
    generatedAt: new Date().toISOString(),
    ...extra,
    shadows: [...merged.entries()].map(([name, m]) => m.report.toJSON(m.view, name)),
    comparisonsPending: parts.reduce((a, p) => a + p.pending, 0),
    mismatchesStored: parts.reduce((a, p) => a + p.stored, 0)
  }
}
