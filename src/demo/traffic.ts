#!/usr/bin/env node
import { request } from 'undici'

/**
 * `npm run demo:traffic`: sends iris-like prediction requests (batches of 1..8 instances) through
 * the demo proxy, then prints the report. Options: --url (default http://127.0.0.1:8080),
 * --admin (default http://127.0.0.1:9901), --requests N (default 500), --concurrency N (default 8).
 */
function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1] ?? fallback
}

const url = arg('url', 'http://127.0.0.1:8080')
const admin = arg('admin', 'http://127.0.0.1:9901')
const total = Number(arg('requests', '500'))
const concurrency = Number(arg('concurrency', '8'))
if (!Number.isInteger(total) || total < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('demo:traffic: --requests and --concurrency must be positive integers\n')
  process.exit(2)
}

function instance (): number[] {
  const r = (lo: number, hi: number): number => Math.round((lo + Math.random() * (hi - lo)) * 10) / 10
  return [r(4.3, 7.9), r(2.0, 4.4), r(1.0, 6.9), r(0.1, 2.5)]
}

let sent = 0
let ok = 0
let failed = 0
async function worker (): Promise<void> {
  while (sent < total) {
    sent++
    const n = 1 + Math.floor(Math.random() * 8)
    try {
      const res = await request(`${url}/v1/models/demo:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: Array.from({ length: n }, instance) })
      })
      await res.body.dump()
      if (res.statusCode === 200) ok++
      else failed++
    } catch {
      failed++
    }
  }
}

await Promise.all(Array.from({ length: concurrency }, worker))
process.stdout.write(`sent ${total} requests: ${ok} ok, ${failed} failed\n`)
// Comparisons run just after the responses; give the last ones a moment.
await new Promise((resolve) => setTimeout(resolve, 500))
try {
  const res = await request(`${admin}/report`)
  const report = await res.body.json() as { shadows: Array<Record<string, any>> }
  for (const s of report.shadows) {
    const d = s.disagreement
    const pct = (x: number): string => (x * 100).toFixed(1) + '%'
    process.stdout.write(`shadow ${s.shadow}: ${s.comparisons.total} comparisons, request disagreement ${pct(d.requests.rate)} [${pct(d.requests.lower)}, ${pct(d.requests.upper)}], ` +
      `instance disagreement ${pct(d.instances.rate)} [${pct(d.instances.lower)}, ${pct(d.instances.upper)}]\n`)
  }
  process.stdout.write(`full report: penumbra report --admin ${admin}\n`)
} catch (err) {
  process.stdout.write(`could not read the report from ${admin}: ${(err as Error).message}\n`)
}
