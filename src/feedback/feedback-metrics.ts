import { Counter, type Registry } from 'prom-client'

/** Results of `penumbra_feedback_total`. */
export const FEEDBACK_RESULTS = ['joined', 'unknown', 'expired', 'duplicate', 'invalid'] as const
export type FeedbackResult = (typeof FEEDBACK_RESULTS)[number]

/** Operations of `penumbra_feedback_store_errors_total`. */
export const STORE_OPS = ['put', 'get', 'label', 'queue', 'too_large'] as const

/**
 * `penumbra_feedback_total{result}`. Counted where the batch is answered: in `--workers` mode by
 * the primary process, which asks the workers (their copies are left out of the aggregate).
 */
export function feedbackTotalCounter (registers: Registry[]): Counter<'result'> {
  const c = new Counter({ name: 'penumbra_feedback_total', help: 'Labels posted to POST /feedback, by result (joined, unknown, expired, duplicate, invalid).', labelNames: ['result'], aggregator: 'omit', registers })
  for (const result of FEEDBACK_RESULTS) c.inc({ result }, 0)
  return c
}

/**
 * The feedback room's metrics (issue #19): sufficient statistics as counters, so that Prometheus
 * computes accuracy, precision/recall, MAE and RMSE across replicas exactly as `GET /quality`
 * does in one process.
 */
export class FeedbackMetrics {
  readonly total: Counter<'result'>
  readonly labelled: Counter<'model'>
  readonly correct: Counter<'model'>
  readonly classes: Counter<'model' | 'class' | 'outcome'>
  readonly absErrorSum: Counter<'model'>
  readonly sqErrorSum: Counter<'model'>
  readonly predictions: Counter<'model'>
  readonly storeErrors: Counter<'op'>

  constructor (registry: Registry) {
    const r = [registry]
    this.total = feedbackTotalCounter(r)
    this.labelled = new Counter({ name: 'penumbra_feedback_labelled_total', help: 'Labelled prediction instances per model (each (request, instance, source) once, on its first label).', labelNames: ['model'], registers: r })
    this.correct = new Counter({ name: 'penumbra_feedback_correct_total', help: 'Labelled instances the model predicted right (classification: the label; LLM answers: the exact text).', labelNames: ['model'], registers: r })
    this.classes = new Counter({ name: 'penumbra_feedback_class_total', help: 'Per-class outcomes of labelled instances (tp, fp, fn); classes from feedback.classes or the first 20 seen, the rest as "other".', labelNames: ['model', 'class', 'outcome'], registers: r })
    this.absErrorSum = new Counter({ name: 'penumbra_feedback_abs_error_sum', help: 'Regression: sum of |prediction - label| over labelled instances (MAE = this / labelled).', labelNames: ['model'], registers: r })
    this.sqErrorSum = new Counter({ name: 'penumbra_feedback_sq_error_sum', help: 'Regression: sum of (prediction - label)^2 over labelled instances (RMSE = sqrt(this / labelled)).', labelNames: ['model'], registers: r })
    this.predictions = new Counter({ name: 'penumbra_feedback_predictions_total', help: 'Prediction instances logged for joining labels, per model (coverage = labelled / this, for the model that answered clients).', labelNames: ['model'], registers: r })
    this.storeErrors = new Counter({ name: 'penumbra_feedback_store_errors_total', help: 'Prediction-log failures by operation (put: a prediction dropped; get, label: a POST /feedback refused; queue: dropped before logging, the log queue was full; too_large: an answer above 256 KiB, not extracted).', labelNames: ['op'], registers: r })
    for (const op of STORE_OPS) this.storeErrors.inc({ op }, 0)
  }

  /** The series of a model at 0, so rates exist before its first label. */
  initModel (model: string): void {
    this.labelled.inc({ model }, 0)
    this.correct.inc({ model }, 0)
    this.predictions.inc({ model }, 0)
  }
}
