// CPU accounting per run, from /proc. On a shared 2-core box req/s alone cannot tell "the proxy
// got slower" from "something else ran" (other test suites, a browser, the compiler), so each run
// also records (a) CPU time of the process under test per request, which is robust against
// contention, and (b) the share of machine CPU used by processes that are not the bench's own.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { processTree } from './rss.js'

let clkTck = 100
try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { /* Linux default */ }

/** Busy and total jiffies of the whole machine (first line of /proc/stat). */
function machineTicks (): { busy: number, total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f
    // irq/softirq (loopback packet processing, attributed to no process) and steal (the
    // hypervisor) are left out of "busy": they would otherwise show up as foreign load.
    const busy = user + nice + system
    return { busy, total: busy + idle + iowait + irq + softirq + (steal ?? 0) }
  } catch {
    return null
  }
}

/** utime + stime (jiffies) of one pid; 0 if it is gone. */
function pidTicks (pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return Number(f[11]) + Number(f[12]) // fields 14 and 15 of proc(5), after pid and comm
  } catch {
    return 0
  }
}

const treeTicks = (pid: number): number => processTree(pid).reduce((sum, p) => sum + pidTicks(p), 0)

export interface CpuSnapshot { machine: { busy: number, total: number } | null, target: number, ours: number }

/**
 * `target`: the process under test (null for direct); `ours`: every pid the bench owns (itself
 * included, since autocannon runs in it).
 */
export function snapshotCpu (target: number | null, ours: number[]): CpuSnapshot {
  return {
    machine: machineTicks(),
    target: target === null ? 0 : treeTicks(target),
    ours: ours.reduce((sum, p) => sum + treeTicks(p), 0)
  }
}

export interface CpuDelta {
  /** CPU seconds used by the process under test. */
  targetS: number
  /** % of the whole machine (all cores = 100) used by processes the bench did not start. */
  foreignPct: number
  /** % of the whole machine used by everything. */
  busyPct: number
}

export function cpuDelta (a: CpuSnapshot, b: CpuSnapshot): CpuDelta {
  const targetS = (b.target - a.target) / clkTck
  if (a.machine === null || b.machine === null) return { targetS, foreignPct: Number.NaN, busyPct: Number.NaN }
  const total = b.machine.total - a.machine.total
  const busy = b.machine.busy - a.machine.busy
  const ours = b.ours - a.ours
  if (total <= 0) return { targetS, foreignPct: Number.NaN, busyPct: Number.NaN }
  return { targetS, foreignPct: Math.max(0, (busy - ours) / total * 100), busyPct: busy / total * 100 }
}
