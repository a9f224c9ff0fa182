#!/usr/bin/env node
import { request } from 'undici'
import { trafficArgs } from './traffic-args.js'

/**
 * `npm run demo:traffic:llm`: OpenAI-style requests through the LLM demo (`npm run start:llm`,
 * config/demo-llm.yaml): mostly streamed chat completions, some with a weather tool, some asking
 * for JSON, some Responses calls; then the report's LLM numbers. Options: --url (default
 * http://127.0.0.1:8080), --admin (default http://127.0.0.1:9901), --requests N (default 200),
 * --concurrency N (default 8).
 */
const { url, admin, total, concurrency } = trafficArgs('demo:traffic:llm', 200)

const TOPICS = ['Paris', 'Rome', 'Kyoto', 'the Rust language', 'TypeScript', 'photosynthesis', 'the Roman empire', 'jazz', 'Lisbon', 'chess openings', 'volcanoes', 'Prague']
const CITIES = ['Paris', 'Oslo', 'Lima', 'Nairobi', 'Hanoi', 'Quebec']
const pick = <T>(a: T[]): T => a[Math.floor(Math.random() * a.length)]!

/** One request: [path, body]. 80% streamed, with the usage chunk. */
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
    const [path, body] = llmRequest()
    try {
      const res = await request(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
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
// Comparisons run just after the answers; give the last ones a moment.
await new Promise((resolve) => setTimeout(resolve, 500))
try {
  const res = await request(`${admin}/report/llm`)
  if (res.statusCode !== 200) throw new Error(`GET /report/llm answered ${res.statusCode}: ${await res.body.text()}`)
  const report = await res.body.json() as { shadows: Array<Record<string, any>> }
  const pct = (x: number): string => (x * 100).toFixed(1) + '%'
  for (const s of report.shadows) {
    process.stdout.write(`shadow ${s.shadow}:\n`)
    for (const [kind, k] of Object.entries(s.agreement as Record<string, any>)) process.stdout.write(`  ${kind}: disagreement ${pct(k.rate)} [${pct(k.lower)}, ${pct(k.upper)}] (${k.disagree}/${k.compared})\n`)
    const t = s.timeToFirstTokenMs
    process.stdout.write(`  time to first token p50: primary ${t.primary.p50 ?? '-'} ms, ${s.shadow} ${t.shadow.p50 ?? '-'} ms (${t.samples} streams)\n`)
  }
  process.stdout.write(`full report: penumbra report --admin ${admin}\n`)
} catch (err) {
  process.stdout.write(`could not read the report from ${admin}: ${(err as Error).message}\n`)
}
