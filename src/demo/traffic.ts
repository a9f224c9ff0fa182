#!/usr/bin/env node
import { request } from 'undici'

/**
 * `npm run demo:traffic`: sends iris-like prediction requests (batches of 1..8 instances) through
 * the demo proxy, then prints the report. Options: --url (default http://127.0.0.1:8080),
 * --admin (default http://127.0.0.1:9901), --requests N (default 500, 200 with --llm),
 * --concurrency N (default 8). `--llm` (the LLM demo, `npm run start:llm`): OpenAI-style requests
 * instead, mostly streamed chat completions, some tool calls, JSON answers and Responses calls.
 */
function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1] ?? fallback
}

const url = arg('url', 'http://127.0.0.1:8080')
const admin = arg('admin', 'http://127.0.0.1:9901')
const llm = process.argv.includes('--llm')
const total = Number(arg('requests', llm ? '200' : '500'))
const concurrency = Number(arg('concurrency', '8'))
if (!Number.isInteger(total) || total < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('demo:traffic: --requests and --concurrency must be positive integers\n')
  process.exit(2)
}

function instance (): number[] {
  const r = (lo: number, hi: number): number => Math.round((lo + Math.random() * (hi - lo)) * 10) / 10
  return [r(4.3, 7.9), r(2.0, 4.4), r(1.0, 6.9), r(0.1, 2.5)]
}

const TOPICS = ['Paris', 'Rome', 'Kyoto', 'the Rust language', 'TypeScript', 'photosynthesis', 'the Roman empire', 'jazz', 'Lisbon', 'chess openings', 'volcanoes', 'Prague']
const CITIES = ['Paris', 'Oslo', 'Lima', 'Nairobi', 'Hanoi', 'Quebec']
const pick = <T>(a: T[]): T => a[Math.floor(Math.random() * a.length)]!

/** One OpenAI-style request of the LLM demo: [path, body]. */
function llmRequest (): [string, object] {
  const r = Math.random()
  const stream = Math.random() < 0.8
  const common = { model: 'demo', stream, ...(stream ? { stream_options: { include_usage: true } } : {}) }
  if (r < 0.15) {
    return ['/v1/chat/completions', {
      ...common,
      messages: [{ role: 'user', content: `What is the weather in ${pick(CITIES)}?` }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } } } } }]
    }]
  }
  if (r < 0.25) return ['/v1/chat/completions', { ...common, response_format: { type: 'json_object' }, messages: [{ role: 'user', content: `Answer in JSON: tell me about ${pick(TOPICS)}` }] }]
  if (r < 0.35) return ['/v1/responses', { model: 'demo', stream, input: `Tell me about ${pick(TOPICS)}` }]
  return ['/v1/chat/completions', { ...common, messages: [{ role: 'user', content: `Tell me about ${pick(TOPICS)}` }] }]
}

let sent = 0
let ok = 0
let failed = 0
async function worker (): Promise<void> {
  while (sent < total) {
    sent++
    const n = 1 + Math.floor(Math.random() * 8)
    const [path, body] = llm ? llmRequest() : ['/v1/models/demo:predict', { instances: Array.from({ length: n }, instance) }]
    try {
      const res = await request(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body)
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
    // The LLM demo: each agreement kind's disagreement with its interval, and TTFT side by side.
    const l = s.llm
    if (l != null) {
      for (const [kind, k] of Object.entries(l.agreement as Record<string, any>)) process.stdout.write(`  ${kind}: disagreement ${pct(k.rate)} [${pct(k.lower)}, ${pct(k.upper)}] (${k.disagree}/${k.compared})\n`)
      const t = l.timeToFirstTokenMs
      process.stdout.write(`  time to first token p50: primary ${t.primary.p50 ?? '-'} ms, ${s.shadow} ${t.shadow.p50 ?? '-'} ms (${t.samples} streams)\n`)
    }
  }
  process.stdout.write(`full report: penumbra report --admin ${admin}\n`)
} catch (err) {
  process.stdout.write(`could not read the report from ${admin}: ${(err as Error).message}\n`)
}
