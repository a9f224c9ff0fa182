import { createRequire } from 'node:module'
import type { RedisClientType } from 'redis'
import type { Lookup, PredictionRecord, PredictionStore } from './prediction-store.js'

// node-redis costs ~25 MB of memory once loaded (all its command modules): loaded only when a
// redis store is configured, not by every penumbra that imports this file.
const require = createRequire(import.meta.url)

/** How long after its prediction expired an id is still reported `expired` rather than `unknown`. */
const TOMBSTONE_FACTOR = 7
/** Keys per MGET / commands per pipeline: bounded replies, and no one command holds Redis long. */
const CHUNK = 500
/** Reconnect backoff: 50 ms doubling to 2 s, forever (the proxy never depends on Redis). */
const MAX_BACKOFF_MS = 2000

export interface RedisStoreOptions {
  url: string
  keyPrefix: string
  ttlMs: number
  commandTimeoutMs: number
  onError?: (err: Error) => void
}

/**
 * The shared prediction log (`feedback.store: redis`): a label posted to any replica joins a
 * prediction logged by any other. One key per request (`<prefix>p:<id>`, JSON, `SET … PX ttl`),
 * a tombstone per request (`<prefix>t:<id>`, 7 × ttl) so that a late label says `expired`, and one
 * key per label (`<prefix>l:<id>\0<instance>\0<source>`, `SET … GET`) so that a repeat is seen as
 * one by every replica.
 *
 * Redis down never holds anything up: the offline queue is off (a command while disconnected
 * fails at once, instead of buffering without bound), every command has `commandTimeoutMs`
 * (also once sent), and the client reconnects by itself with a capped backoff. Failures reject;
 * the caller counts them and drops the prediction or reports the label.
 */
export class RedisStore implements PredictionStore {
  readonly kind = 'redis' as const
  readonly size = null
  readonly #client: RedisClientType
  readonly #prefix: string
  readonly #ttlMs: number
  #connecting: Promise<unknown> | null = null
  #closed = false

  constructor (opts: RedisStoreOptions) {
    this.#prefix = opts.keyPrefix
    this.#ttlMs = opts.ttlMs
    const { createClient } = require('redis') as typeof import('redis')
    this.#client = createClient({
      url: opts.url,
      disableOfflineQueue: true,
      // Commands sent and waiting for replies are bounded too: a slow Redis makes puts fail, not pile up.
      commandsQueueMaxLength: 10_000,
      commandOptions: { timeout: opts.commandTimeoutMs, rejectInFlight: true },
      socket: {
        connectTimeout: Math.max(1000, opts.commandTimeoutMs),
        reconnectStrategy: (retries: number) => Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(retries, 6))
      }
    }) as unknown as RedisClientType
    // node-redis emits 'error' on every failed (re)connection: without a listener that would
    // be an uncaught exception. The caller decides how loud to be.
    this.#client.on('error', (err: Error) => opts.onError?.(err))
    this.#connect()
  }

  /** Connects once; later reconnections are the client's (reconnectStrategy). */
  #connect (): void {
    if (this.#connecting !== null) return
    this.#connecting = this.#client.connect().catch((err: unknown) => {
      // The very first connect failing ends the client's own retries: start over a bit later.
      this.#connecting = null
      if (this.#closed) return
      setTimeout(() => { if (!this.#closed) this.#connect() }, MAX_BACKOFF_MS).unref()
      return err
    })
  }

  /** True while connected (commands would be sent now). */
  get ready (): boolean {
    return this.#client.isReady
  }

  async put (requestId: string, record: PredictionRecord): Promise<void> {
    this.#check()
    const value = JSON.stringify(record)
    await this.#client.multi()
      .set(this.#prefix + 'p:' + requestId, value, { expiration: { type: 'PX', value: this.#ttlMs } })
      .set(this.#prefix + 't:' + requestId, '1', { expiration: { type: 'PX', value: this.#ttlMs * TOMBSTONE_FACTOR } })
      .execAsPipeline()
  }

  async getMany (requestIds: readonly string[]): Promise<Lookup[]> {
    this.#check()
    const out: Lookup[] = new Array(requestIds.length)
    const missing: number[] = []
    for (let i = 0; i < requestIds.length; i += CHUNK) {
      const ids = requestIds.slice(i, i + CHUNK)
      const values = await this.#client.mGet(ids.map((id) => this.#prefix + 'p:' + id))
      values.forEach((v, j) => {
        const record = v === null ? null : parseRecord(String(v))
        if (record !== null) out[i + j] = { record }
        else missing.push(i + j)
      })
    }
    for (let i = 0; i < missing.length; i += CHUNK) {
      const idx = missing.slice(i, i + CHUNK)
      const values = await this.#client.mGet(idx.map((k) => this.#prefix + 't:' + requestIds[k]!))
      values.forEach((v, j) => { out[idx[j]!] = { record: null, expired: v !== null } })
    }
    return out
  }

  async swapLabels (entries: ReadonlyArray<{ key: string, label: string }>): Promise<Array<string | null>> {
    this.#check()
    const out: Array<string | null> = []
    for (let i = 0; i < entries.length; i += CHUNK) {
      const m = this.#client.multi()
      for (const e of entries.slice(i, i + CHUNK)) {
        m.set(this.#prefix + 'l:' + e.key, e.label, { expiration: { type: 'PX', value: this.#ttlMs }, GET: true })
      }
      const replies = await m.execAsPipeline()
      for (const r of replies) out.push(r === null || r === undefined ? null : String(r as unknown as string))
    }
    return out
  }

  /** Fails at once while disconnected (the offline queue is off, so this is what it would do anyway). */
  #check (): void {
    if (this.#closed) throw new Error('feedback store closed')
    if (!this.#client.isReady) throw new Error('redis not connected')
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    try {
      if (this.#client.isOpen) await this.#client.close()
      else this.#client.destroy()
    } catch {
      this.#client.destroy()
    }
  }
}

function parseRecord (s: string): PredictionRecord | null {
  try {
    const r = JSON.parse(s) as PredictionRecord
    return typeof r === 'object' && r !== null && typeof r.models === 'object' ? r : null
  } catch {
    return null
  }
}
