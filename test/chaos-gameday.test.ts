// Issue #20, game days end to end: a real Prometheus (Debian package) loads the shipped rules at
// shortened intervals and scrapes penumbra; `penumbra gameday` runs as a child process with the
// shipped shadow-flip scenario (its `within` shortened like the rules) and must pass; an alert
// that cannot fire fails; Ctrl-C stops the fault; a bad scenario exits 2.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { parse as parseYaml, stringify } from 'yaml'
import { Penumbra } from '../src/index.js'
import { startDemoModel } from '../src/demo/model-server.js'
import { createLogger } from '../src/log/logger.js'
import { Daemon, PROMETHEUS, RULES_FILE, freePort, instance, resolveRoot, sleep, tempDir, waitForValue } from './helpers/observability-harness.js'
import { CLI, ROOT, runCli, writeFile } from './helpers/proxy-util.js'
import { testConfig, urls } from './helpers/servers.js'

const TOKEN = 'gameday-test-token'
const AUTH = { authorization: `Bearer ${TOKEN}` }

/**
 * The shipped rules with every window, hold and baseline shortened, so alerts fire in seconds:
 * rates over 10 s instead of 5 min, `for: 1s`, and the latency baseline 20 s ago instead of a day.
 */
function shortenedRules (): string {
  return readFileSync(RULES_FILE, 'utf8').replace(/\[5m\]/g, '[10s]').replace(/\bfor: \d+m\b/g, 'for: 1s').replace(/offset 1d/g, 'offset 20s')
}

function closeServer (s: Server): Promise<void> {
  return new Promise((resolve) => { s.close(() => resolve()); s.closeAllConnections() })
}

/** `penumbra gameday …` as a child process; resolves with its exit. */
function gameday (args: string[], onStarted?: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'gameday', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const t = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }) })
    onStarted?.(child)
  })
}

test('a bad scenario or missing arguments exit 2', async (t) => {
  const dir = tempDir(t)
  const bad = writeFile(dir, 'bad.yaml', 'name: x\nexperiment: { name: y }\nexpect: { alert: PenumbraDown, within: soon }\n')
  const r = await runCli(['gameday', '--scenario', bad, '--admin', 'http://127.0.0.1:9', '--prometheus', 'http://127.0.0.1:9'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /expect\.within: must be a duration such as 30s, 5m, 1h/)
  const badFault = writeFile(dir, 'badfault.yaml', 'name: x\nexperiment: { name: y, target: primary, faults: [{ kind: delay }] }\nexpect: { alert: PenumbraDown, within: 1m }\n')
  const rf = await runCli(['gameday', '--scenario', badFault, '--admin', 'http://127.0.0.1:9', '--prometheus', 'http://127.0.0.1:9'])
  assert.equal(rf.code, 2)
  assert.match(rf.stderr, /experiment\.faults\.0\.ms: is required for a fixed delay/)
  const missing = await runCli(['gameday', '--scenario', bad])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /--admin is required/)
  // The shipped scenarios are valid.
  for (const f of ['shadow-flip-labels', 'primary-latency', 'primary-errors']) {
    const doc = parseYaml(readFileSync(resolveRoot('config', 'gamedays', `${f}.yaml`), 'utf8')) as { expect: { alert: string } }
    assert.match(readFileSync(RULES_FILE, 'utf8'), new RegExp(`alert: ${doc.expect.alert}\\b`), `${f}: its alert is a shipped rule`)
  }
})

describe('game day against a real Prometheus with the shipped rules', { skip: PROMETHEUS.skip, timeout: 180_000 }, () => {
  let app: Penumbra
  let servers: Server[] = []
  let prom: Daemon | null = null
  const cleanups: Array<() => void> = []
  let dir = ''
  let promUrl = ''
  let admin = ''
  let trafficOn = true
  let traffic: Promise<void> = Promise.resolve()

  before(async () => {
    const primary = await startDemoModel(0, { role: 'primary' })
    const shadow = await startDemoModel(0, { role: 'shadow', disagreeRate: 0 })
    servers = [primary, shadow]
    const port = (s: Server): number => (s.address() as AddressInfo).port
    const config = testConfig({
      primary: { url: `http://127.0.0.1:${port(primary)}` },
      admin: { host: '127.0.0.1', port: 0, token: TOKEN },
      shadows: [{ name: 'v2', url: `http://127.0.0.1:${port(shadow)}`, sampleRate: 1, match: { methods: ['POST'], paths: ['/v1/models/*'] } }],
      compare: { ignore: ['/model_version', '/predictions/*/latency_ms'] },
      // Two client-facing game days back to back share the last minute's blast radius.
      chaos: { enabled: true, maxClientShare: 0.2 }
    })
    app = new Penumbra(config, { logger: createLogger({ level: 'silent', sync: true }) })
    await app.start()
    admin = urls(app).admin
    dir = tempDir({ after: (fn) => cleanups.push(fn) }, 'penumbra-gameday-')
    const rules = join(dir, 'rules.yml')
    writeFileSync(rules, shortenedRules())
    const promPort = await freePort()
    promUrl = `http://127.0.0.1:${promPort}`
    const promConfig = join(dir, 'prometheus.yml')
    writeFileSync(promConfig, JSON.stringify({
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      rule_files: [rules],
      scrape_configs: [{ job_name: 'penumbra', static_configs: [{ targets: [`127.0.0.1:${app.adminPort}`] }] }]
    }))
    prom = new Daemon(PROMETHEUS.path(), [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'])
    await waitForValue(async () => {
      if (!prom!.running) throw new Error(`prometheus exited: ${prom!.output.slice(-2000)}`)
      const r = await fetch(`${promUrl}/-/ready`, { signal: AbortSignal.timeout(1000) })
      return r.status === 200 ? true : undefined
    }, 30_000, 'prometheus to be ready', 250)
    // Steady traffic for the whole suite, paced (a load generator, not a synchronisation): about
    // 30 requests/s, bounded in count.
    traffic = (async () => {
      for (let i = 0; trafficOn && i < 20_000; i++) {
        try {
          const r = await fetch(`${urls(app).proxy}/v1/models/demo:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [instance(i), instance(i + 7)] }), signal: AbortSignal.timeout(5000) })
          await r.arrayBuffer()
        } catch {}
        await sleep(30)
      }
    })()
    // Comparisons are flowing and Prometheus sees them (the disagreement alert's floor).
    await waitForValue(async () => {
      const r = await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('shadow:penumbra_comparisons_compared:rate5m')}`)).json() as { data: { result: Array<{ value: [number, string] }> } }
      const v = r.data.result[0]?.value[1]
      return v !== undefined && Number(v) >= 0.1 ? true : undefined
    }, 30_000, 'comparisons to reach Prometheus', 250)
  }, { timeout: 90_000 })

  after(async () => {
    trafficOn = false
    await traffic
    await prom?.stop()
    await app?.stop()
    for (const s of servers) await closeServer(s)
    for (const fn of cleanups) fn()
  })

  const chaosList = async (): Promise<Array<{ name: string }>> => ((await (await fetch(`${admin}/chaos/experiments`, { headers: AUTH })).json()) as { experiments: Array<{ name: string }> }).experiments

  test('the shipped shadow-flip scenario passes: the disagreement alert fires, the fault is stopped, the JSON says so', { timeout: 120_000 }, async () => {
    const shipped = parseYaml(readFileSync(resolveRoot('config', 'gamedays', 'shadow-flip-labels.yaml'), 'utf8')) as { expect: { within: string } }
    // Shortened like the rules: everything else is the shipped scenario.
    shipped.expect.within = '90s'
    const scenario = join(dir, 'shadow-flip.yaml')
    writeFileSync(scenario, stringify(shipped))
    const out = join(dir, 'pass.json')
    const r = await gameday(['--scenario', scenario, '--admin', admin, '--prometheus', promUrl, '--token', TOKEN, '--out', out, '--poll-ms', '250'])
    assert.equal(r.code, 0, `exit 0 (pass)\n${r.stdout}\n${r.stderr}`)
    assert.match(r.stdout, /^gameday shadow-flip-labels: PASS/m)
    const result = JSON.parse(readFileSync(out, 'utf8')) as Record<string, any>
    assert.equal(result.result, 'pass')
    assert.equal(result.alert, 'PenumbraShadowDisagreementHigh')
    assert.ok(typeof result.timeToDetectSeconds === 'number' && result.timeToDetectSeconds > 0 && result.timeToDetectSeconds <= 90)
    assert.ok(result.faults.flip_label > 0, `faults counted: ${JSON.stringify(result.faults)}`)
    assert.ok(Date.parse(result.stoppedAt) >= Date.parse(result.detectedAt))
    assert.deepEqual(await chaosList(), [], 'the experiment was stopped')
  })

  test('an alert that cannot fire within the deadline fails, and the fault is still stopped', { timeout: 60_000 }, async () => {
    const scenario = writeFile(dir, 'fail.yaml', stringify({
      name: 'cannot-fire',
      experiment: { name: 'gameday-noop', target: 'shadow:v2', faults: [{ kind: 'delay', ms: 1 }] },
      expect: { alert: 'PenumbraShadowErrors', within: '3s' }
    }))
    const out = join(dir, 'fail.json')
    const r = await gameday(['--scenario', scenario, '--admin', admin, '--prometheus', promUrl, '--token', TOKEN, '--out', out, '--poll-ms', '250'])
    assert.equal(r.code, 1, `exit 1 (fail)\n${r.stdout}\n${r.stderr}`)
    const result = JSON.parse(readFileSync(out, 'utf8')) as Record<string, any>
    assert.equal(result.result, 'fail')
    assert.equal(result.timeToDetectSeconds, null)
    assert.match(result.reason, /did not fire within 3s/)
    assert.ok(result.faults.delay > 0)
    assert.deepEqual(await chaosList(), [])
  })

  /** A shipped scenario with only `within` shortened (like the rules); its result. */
  const shipped = async (file: string, within: string): Promise<{ code: number | null, result: Record<string, any>, output: string }> => {
    const doc = parseYaml(readFileSync(resolveRoot('config', 'gamedays', `${file}.yaml`), 'utf8')) as { expect: { within: string } }
    doc.expect.within = within
    const scenario = join(dir, `${file}.yaml`)
    writeFileSync(scenario, stringify(doc))
    const out = join(dir, `${file}.json`)
    const r = await gameday(['--scenario', scenario, '--admin', admin, '--prometheus', promUrl, '--token', TOKEN, '--out', out, '--poll-ms', '250'])
    return { code: r.code, result: JSON.parse(readFileSync(out, 'utf8')) as Record<string, any>, output: r.stdout + r.stderr }
  }

  test('the shipped primary-latency scenario (+300 ms) raises the latency regression alert', { timeout: 120_000 }, async () => {
    const { code, result, output } = await shipped('primary-latency', '60s')
    assert.equal(code, 0, output)
    assert.equal(result.alert, 'PenumbraPrimaryLatencyRegression')
    assert.ok(result.faults.delay > 0)
    assert.deepEqual(await chaosList(), [])
  })

  test('the shipped primary-errors scenario (5% 500s) raises the 5xx alert', { timeout: 120_000 }, async () => {
    const { code, result, output } = await shipped('primary-errors', '60s')
    assert.equal(code, 0, output)
    assert.equal(result.alert, 'PenumbraPrimary5xxHigh')
    assert.ok(result.faults.abort > 0)
    assert.deepEqual(await chaosList(), [])
  })

  test('Ctrl-C during a game day stops the fault and ends it as a fail', { timeout: 60_000 }, async () => {
    const scenario = writeFile(dir, 'interrupt.yaml', stringify({
      name: 'interrupted',
      experiment: { name: 'gameday-ctrl-c', target: 'shadow:v2', faults: [{ kind: 'delay', ms: 1 }] },
      expect: { alert: 'PenumbraShadowErrors', within: '5m' }
    }))
    const out = join(dir, 'interrupt.json')
    const r = await gameday(['--scenario', scenario, '--admin', admin, '--prometheus', promUrl, '--token', TOKEN, '--out', out, '--poll-ms', '250'], (child) => {
      void waitForValue(async () => (await chaosList()).some((e) => e.name === 'gameday-ctrl-c') ? true : undefined, 20_000, 'the game day to start', 50)
        .then(() => child.kill('SIGINT'), () => child.kill('SIGKILL'))
    })
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`)
    const result = JSON.parse(readFileSync(out, 'utf8')) as Record<string, any>
    assert.match(result.reason, /interrupted \(SIGINT\)/)
    assert.deepEqual(await chaosList(), [], 'the fault did not outlive the game day')
  })
})
