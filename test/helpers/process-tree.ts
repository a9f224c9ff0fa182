import { readFileSync } from 'node:fs'

/** pid and all its descendants, via /proc/<pid>/task/<tid>/children (Linux ≥ 3.5). */
export function processTree (pid: number): number[] {
  const out: number[] = []
  const walk = (p: number, depth: number): void => {
    out.push(p)
    if (depth > 4) return
    let kids: string
    try { kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8') } catch { return }
    for (const k of kids.trim().split(/\s+/)) if (k !== '') walk(Number(k), depth + 1)
  }
  walk(pid, 0)
  return out
}
