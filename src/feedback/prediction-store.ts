import type { InstancePrediction } from './extract.js'

/** What answered: the backend that served the client, a shadow, or an experiment arm. */
export type ModelRole = 'primary' | 'shadow' | 'arm'

/** One model's extracted answer to a request. */
export interface ModelPrediction {
  role: ModelRole
  format: string
  instances: InstancePrediction[]
}

/**
 * The prediction log's record of one request: every model's extracted answer, by model name
 * (the serving backend's name, each shadow's name). Never a body.
 */
export interface PredictionRecord {
  /** When it was logged (ms since the epoch). */
  at: number
  /** The model that answered the client (its predictions are what coverage counts). */
  served: string
  models: Record<string, ModelPrediction>
}

/** A look-up: the record, or whether the id was known and has expired (or been evicted). */
export type Lookup = { record: PredictionRecord } | { record: null, expired: boolean }

/**
 * Where predictions wait for their labels: in this process (`memory`) or shared by every
 * replica (`redis`). Every method may reject (a Redis that is down): callers count the failure
 * and go on; nothing here is ever on a client's path.
 */
export interface PredictionStore {
  readonly kind: 'memory' | 'redis'
  /** Logs a request's predictions for `feedback.ttlMs`. */
  put (requestId: string, record: PredictionRecord): Promise<void>
  /** Looks up many request ids at once (one round trip for Redis). */
  getMany (requestIds: readonly string[]): Promise<Lookup[]>
  /**
   * Sets the label of one `(requestId, instance, source)` and returns the previous one (null:
   * none): idempotency across replicas, since the label itself lives in the store.
   */
  swapLabels (entries: ReadonlyArray<{ key: string, label: string }>): Promise<Array<string | null>>
  /** Records held (memory; null for Redis, which counts its own). */
  readonly size: number | null
  close (): Promise<void>
}

/** The label key of one (requestId, instance, source). */
export function labelKey (requestId: string, instance: number, source: string): string {
  return `${requestId}\u0000${instance}\u0000${source}`
}
