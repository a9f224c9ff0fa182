// Peak-memory sampling of a process tree (penumbra, or penumbra's cluster primary + workers).
// /proc/<pid>/status gives VmRSS (now) and VmHWM (the kernel's own high-water mark, which also
// catches spikes between our 200 ms polls); for a tree we sum VmRSS per poll, since the sum of
// per-process peaks could overstate a peak that never happened at one instant.
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { processTree } from '../../test/helpers/process-tree.js'

function statusKb (pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? null : Number(m[1])
  } catch {
    return null
  }
}

export { processTree }

/** RSS of one pid in kB, falling back to `ps` where /proc is unavailable. */
function rssKb (pid: number): number {
  const kb = statusKb(pid, 'VmRSS')
  if (kb !== null) return kb
  try { return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) || 0 } catch { return 0 }
}

export interface RssPeak {
  /** Highest summed VmRSS of the tree seen by the 200 ms poll, bytes. */
  sampledPeakBytes: number
  /** max(VmHWM) over the tree's processes at stop time (lifetime peak of the largest one), bytes. */
  hwmBytes: number
  samples: number
}

export interface RssSampler { stop: () => RssPeak, peakSoFar: () => number }

export function sampleRss (pid: number, intervalMs = 200): RssSampler {
  let peak = 0
  let n = 0
  const poll = (): void => {
    const total = processTree(pid).reduce((sum, p) => sum + rssKb(p), 0)
    if (total > peak) peak = total
    n++
  }
  poll()
  const timer = setInterval(poll, intervalMs)
  timer.unref()
  return {
    peakSoFar: () => peak * 1024,
    stop: () => {
      clearInterval(timer)
      poll()
      const hwm = Math.max(0, ...processTree(pid).map((p) => statusKb(p, 'VmHWM') ?? 0))
      return { sampledPeakBytes: peak * 1024, hwmBytes: hwm * 1024, samples: n }
    }
  }
}
