// The demo, as a new user runs it (`npm start`, then `npm run demo:traffic`): the shipped demo
// config with the built-in model servers, on free ports; the traffic script's output shows the
// shadow's disagreement and the demo experiment's verdicts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { ROOT, freePort, spawnPenumbra, tempDir, writeFile } from './helpers/proxy-util.js'

test('npm start + npm run demo:traffic: shadow disagreement and the experiment\'s verdicts', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t)
  let yaml = readFileSync(join(ROOT, 'config', 'demo.yaml'), 'utf8')
  const ports: Record<string, number> = {}
  for (const p of ['8080', '9901', '9001', '9002', '9003']) {
    ports[p] = await freePort()
    yaml = yaml.replaceAll(`:${p}`, `:${ports[p]}`).replaceAll(`port: ${p}`, `port: ${ports[p]}`)
  }
  const file = writeFile(dir, 'demo.yaml', yaml)
  const app = await spawnPenumbra(file, { port: ports['8080']!, adminPort: ports['9901']!, extra: ['--demo'] })
  t.after(() => app.kill())
  const out = await new Promise<{ code: number | null, stdout: string }>((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'demo', 'traffic.js'), '--url', `http://127.0.0.1:${ports['8080']}`, '--admin', `http://127.0.0.1:${ports['9901']}`, '--requests', '300'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout }) })
  })
  assert.equal(out.code, 0, out.stdout)
  assert.match(out.stdout, /sent 600 requests: 600 ok, 0 failed/)
  assert.match(out.stdout, /posted 300 simulated conversions: 300 accepted/)
  assert.match(out.stdout, /shadow v2: 300 comparisons, request disagreement/)
  assert.match(out.stdout, /experiment ranker-ab, enabled, traffic 100\.00%/)
  assert.match(out.stdout, /conversion\s+treatment vs control: \+[\d.]+ pp/)
  // The candidate is 8 ms slower on every request: the latency guardrail says so.
  assert.match(out.stdout, /latency\s+treatment vs control: \+[\d.]+ ms .*→ treatment_worse/)
})
