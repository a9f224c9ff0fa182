#!/usr/bin/env node
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { arg, trafficArgs } from './traffic-args.js'
import { renderExperiments, type ExperimentJson } from '../admin/experiment-report.js'
import { truth } from './model-server.js'

/**
 * `npm run demo:traffic`: sends iris-like prediction requests (batches of 1..8 instances) through
 * the demo proxy, then prints the report. Options: --url (default http://127.0.0.1:8080),
 * --admin (default http://127.0.0.1:9901), --requests N (default 500), --concurrency N (default 8).
 *
 * As many requests go to the demo experiment's path (/v1/models/ranker:predict), one new user
 * (x-user-id) each; then a simulated conversion per user is posted to POST /events: 10% of the
 * control's users convert, 30% of the treatment's, so the experiment reaches a verdict.
 *
 * `--feedback` also posts ground-truth labels (issue #19) for 30% of the shadowed requests'
 * instances (`--coverage`), each `--delay-ms` (default 2000) after its prediction, in batches to
 * POST /feedback, then prints the quality per model and the paired verdict.
 */
const { url, admin, total, concurrency } = trafficArgs('demo:traffic', 500)
const feedback = process.argv.includes('--feedback')
const coverage = Number(arg('coverage', '0.3'))
const delayMs = Number(arg('delay-ms', '2000'))

if (!(coverage >= 0 && coverage <= 1) || !(delayMs >= 0)) {
  process.stderr.write('demo:traffic: --coverage must be within 0..1 and --delay-ms >= 0\n')
  process.exit(2)
}

function instance (): number[] {
  const r = (lo: number, hi: number): number => Math.round((lo + Math.random() * (hi - lo)) * 10) / 10
  return [r(4.3, 7.9), r(2.0, 4.4), r(1.0, 6.9), r(0.1, 2.5)]
}

interface PendingLabel { due: number, item: { requestId: string, instance: number, label: string, source: 'annotator' } }
const pending: PendingLabel[] = []
let posted = 0
let joined = 0

/** Posts the labels that are due (all of them with `all`), 1,000 per call. */
async function postDue (all: boolean): Promise<void> {
  const now = Date.now()
  const due = all ? pending.splice(0) : pending.splice(0, pending.findIndex((p) => p.due > now) === -1 ? pending.length : pending.findIndex((p) => p.due > now))
  for (let i = 0; i < due.length; i += 1000) {
    const items = due.slice(i, i + 1000).map((p) => p.item)
    try {
      const res = await request(`${admin}/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(items) })
      const body = await res.body.json() as { counts?: { joined: number } }
      posted += items.length
      joined += body.counts?.joined ?? 0
    } catch (err) {
      process.stderr.write(`demo:traffic: POST /feedback failed: ${(err as Error).message}\n`)
    }
  }
}

let sent = 0
let ok = 0
let failed = 0
/** Experiment users of this run, by arm (from the x-penumbra-experiment answer header). */
const arms = new Map<string, string>()
const run = Date.now().toString(36)

async function worker (): Promise<void> {
  while (sent < 2 * total) {
    const i = sent++
    const n = 1 + Math.floor(Math.random() * 8)
    // Even requests: the shadowed model; odd ones: the experiment, one new user each.
    const user = i % 2 === 1 ? `demo-${run}-${i}` : null
    const instances = Array.from({ length: n }, instance)
    const requestId = randomUUID()
    try {
      const res = await request(`${url}/v1/models/${user === null ? 'demo' : 'ranker'}:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...(user === null ? undefined : { 'x-user-id': user }) },
        body: JSON.stringify({ instances })
      })
      await res.body.dump()
      const arm = res.headers['x-penumbra-experiment']
      if (user !== null && typeof arm === 'string') arms.set(user, arm.slice(arm.indexOf('=') + 1))
      if (res.statusCode === 200) ok++
      else failed++
      if (feedback && user === null && res.statusCode === 200) {
        instances.forEach((x, k) => {
          if (Math.random() < coverage) pending.push({ due: Date.now() + delayMs, item: { requestId, instance: k, label: truth(x), source: 'annotator' } })
        })
      }
    } catch {
      failed++
    }
  }
}

// Labels arrive late: a poster sends those whose delay has passed while traffic still flows.
let flowing = true
const poster = feedback
  ? (async () => { while (flowing) { await new Promise((resolve) => setTimeout(resolve, 250)); await postDue(false) } })()
  : Promise.resolve()
await Promise.all(Array.from({ length: concurrency }, worker))
process.stdout.write(`sent ${2 * total} requests: ${ok} ok, ${failed} failed\n`)
if (arms.size > 0) {
  const events = [...arms].map(([unit, arm]) => ({ unit, name: 'conversion', value: Math.random() < (arm === 'control' ? 0.10 : 0.30) ? 1 : 0 }))
  try {
    const res = await request(`${admin}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) })
    const r = await res.body.json() as { accepted?: number, message?: string }
    process.stdout.write(`posted ${events.length} simulated conversions: ${r.accepted ?? 0} accepted${r.message !== undefined ? ` (${r.message})` : ''}\n`)
  } catch (err) {
    process.stdout.write(`could not post outcomes to ${admin}/events: ${(err as Error).message}\n`)
  }
}
// Comparisons (and the prediction log) run just after the responses; give the last ones a moment.
await new Promise((resolve) => setTimeout(resolve, feedback ? Math.max(500, delayMs) : 500))
flowing = false
await poster
if (feedback) {
  await postDue(true)
  process.stdout.write(`posted ${posted} labels (${Math.round(coverage * 100)}% of instances, ${delayMs} ms late): ${joined} joined\n`)
}
try {
  const res = await request(`${admin}/report`)
  const report = await res.body.json() as { shadows: Array<Record<string, any>> }
  for (const s of report.shadows) {
    const d = s.disagreement
    const pct = (x: number): string => (x * 100).toFixed(1) + '%'
    process.stdout.write(`shadow ${s.shadow}: ${s.comparisons.total} comparisons, request disagreement ${pct(d.requests.rate)} [${pct(d.requests.lower)}, ${pct(d.requests.upper)}], ` +
      `instance disagreement ${pct(d.instances.rate)} [${pct(d.instances.lower)}, ${pct(d.instances.upper)}]\n`)
  }
  if (feedback) {
    const q = await (await request(`${admin}/quality`)).body.json() as { models: Array<Record<string, any>>, paired: Array<{ summary: string }> }
    const pct = (x: number): string => (x * 100).toFixed(1) + '%'
    for (const m of q.models) {
      if (m.accuracy !== null) process.stdout.write(`model ${m.model}: accuracy ${pct(m.accuracy.rate)} [${pct(m.accuracy.lower)}, ${pct(m.accuracy.upper)}] on ${m.labelled} labels\n`)
    }
    for (const p of q.paired) process.stdout.write(`${p.summary}\n`)
  }
  const res2 = await request(`${admin}/experiments`)
  if (res2.statusCode === 200) process.stdout.write(renderExperiments(await res2.body.json() as ExperimentJson[]))
  else await res2.body.dump()
  process.stdout.write(`full report: penumbra report --admin ${admin}; status page: ${admin}/\n`)
} catch (err) {
  process.stdout.write(`could not read the report from ${admin}: ${(err as Error).message}\n`)
}
