import { analyseQuality, mergeQuality, type QualityData } from './quality.js'

/**
 * The `GET /quality` body from one or more processes' tallies: the feedback room's parts
 * (`models`, `paired`, `coverage`) and, beside them, whatever other rooms add through `extra`
 * (`drift` and `assertions` are null until those rooms fill them). The same function serves one
 * process and a `--workers` cluster, so both answer alike.
 */
export function qualityBody (parts: readonly QualityData[], settings: { confidence: number, minCoverage: number }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const report = analyseQuality(mergeQuality(parts), settings)
  return {
    generatedAt: new Date().toISOString(),
    confidence: settings.confidence,
    models: report.models,
    paired: report.paired,
    coverage: report.coverage,
    history: report.history,
    drift: null,
    assertions: null,
    ...extra
  }
}
