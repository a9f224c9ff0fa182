import type { Config } from '../config/schema.js'
import { Backend } from './backend.js'
import type { ChaosRegistry } from '../chaos/chaos-registry.js'

/**
 * How long a replaced backend stays open after a reload, beyond its own timeout: requests routed
 * to it before the reload whose body was still arriving are dispatched after the swap.
 */
const RETIRE_GRACE_MS = 30_000

/**
 * The backends of the loaded config, by name. A reload keeps the Backend (and its pool) of every
 * name whose options did not change; the others are retired: closed once the requests that
 * already hold them (streams included) had time to finish.
 */
export class BackendSet {
  #byName = new Map<string, Backend>()
  readonly #chaos: ChaosRegistry | null

  constructor (config: Config, chaos: ChaosRegistry | null = null) {
    this.#chaos = chaos
    this.load(config)
  }

  /** Swaps in the backends of `config`; returns the names that were removed or replaced. */
  load (config: Config): string[] {
    const old = this.#byName
    const next = new Map<string, Backend>()
    for (const [name, cfg] of Object.entries(config.backends)) {
      const prev = old.get(name)
      next.set(name, prev !== undefined && prev.sameAs(cfg) ? prev : new Backend(name, cfg, this.#chaos))
    }
    this.#byName = next
    const retired: Backend[] = []
    for (const [name, b] of old) if (next.get(name) !== b) retired.push(b)
    if (retired.length > 0) {
      const grace = Math.max(...retired.map((b) => b.cfg.timeoutMs)) + RETIRE_GRACE_MS
      setTimeout(() => { for (const b of retired) void b.close() }, grace).unref()
    }
    return retired.map((b) => b.name)
  }

  get (name: string): Backend | undefined {
    return this.#byName.get(name)
  }

  has (name: string): boolean {
    return this.#byName.has(name)
  }

  get names (): string[] {
    return [...this.#byName.keys()]
  }

  get list (): Backend[] {
    return [...this.#byName.values()]
  }

  /** Shutdown: closes every backend (after the proxy drained), destroying what is left by `deadline`. */
  async close (deadline: number): Promise<void> {
    await Promise.all(this.list.map(async (b) => {
      const wait = deadline - Date.now()
      let t: NodeJS.Timeout | undefined
      const timedOut = new Promise<void>((resolve) => { t = setTimeout(resolve, Math.max(0, wait)) })
      await Promise.race([b.close(), timedOut])
      clearTimeout(t)
      await b.destroy()
    }))
  }
}
