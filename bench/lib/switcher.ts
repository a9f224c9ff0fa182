// The blue/green switcher of the `bluegreen-switching` scenario (issue #14): while a measured run
// loads penumbra, this loop moves the primary between two backends with `PUT /primary`, so the
// run shows what switching costs the client path (req/s against plain passthrough, errors).
import { setTimeout as sleep } from 'node:timers/promises'

export interface SwitchStats { switches: number, failures: number, lastError: string | null }

export interface Switcher { stop: () => Promise<SwitchStats> }

/** Starts switching `adminUrl`'s primary between `names` every `everyMs` ms until stopped. */
export function startSwitcher (adminUrl: string, names: readonly [string, string], everyMs: number): Switcher {
  const stats: SwitchStats = { switches: 0, failures: 0, lastError: null }
  const state = { stopped: false }
  const loop = (async () => {
    let i = 1
    while (!state.stopped) {
      try {
        const res = await fetch(`${adminUrl}/primary`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ backend: names[i % 2] })
        })
        await res.arrayBuffer()
        if (res.ok) { stats.switches++; i++ } else { stats.failures++; stats.lastError = `HTTP ${res.status}` }
      } catch (err) {
        stats.failures++
        stats.lastError = (err as Error).message
      }
      await sleep(everyMs)
    }
  })()
  return {
    stop: async () => {
      state.stopped = true
      await loop
      return stats
    }
  }
}
