import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { ROOT, childConfigYaml, freePort, httpServer, probePort, runCli, spawnPenumbra, tempDir, writeFile } from './helpers/proxy-util.js'

// Issue #2, process level: --config (YAML, JSON), PENUMBRA_CONFIG, --check, --help, --version,
// invalid configs (exit 2 with the key path, before listening), a port that is taken.

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

test('--help prints usage and exits 0; --version prints the package version', { timeout: 20_000 }, async () => {
  const [help, version] = await Promise.all([runCli(['--help']), runCli(['-v'])])
  assert.equal(help.code, 0)
  for (const p of [/Usage:/, /--config FILE/, /--check/, /--workers/, /--version/, /PENUMBRA_CONFIG/]) assert.match(help.stdout, p)
  assert.equal(version.code, 0)
  assert.equal(version.stdout.trim(), VERSION)
})

test('an unknown flag and a missing config → exit 2 with a message on stderr', { timeout: 20_000 }, async () => {
  const [flag, none] = await Promise.all([runCli(['--confg', 'x.yaml']), runCli([], { env: { PENUMBRA_CONFIG: '' } })])
  assert.equal(flag.code, 2)
  assert.match(flag.stderr, /confg/)
  assert.equal(none.code, 2)
  assert.match(none.stderr, /--config|PENUMBRA_CONFIG/)
})

test('--check: a valid YAML and JSON config print a summary and exit 0 without listening', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const yaml = writeFile(dir, 'ok.yaml', childConfigYaml({ port, adminPort: 0, primary: 'http://127.0.0.1:9001' }))
  const json = writeFile(dir, 'ok.json', JSON.stringify({ listen: { host: '127.0.0.1', port }, primary: { url: 'http://127.0.0.1:9002', timeoutMs: 1234 } }))
  const [ry, rj, re, ...shipped] = await Promise.all([
    runCli(['--config', yaml, '--check']),
    runCli(['-c', json, '--check']),
    runCli(['--check'], { env: { PENUMBRA_CONFIG: yaml } }),
    // The shipped example config is valid (config-validate.test.ts checks the others in-process).
    runCli(['--config', join(ROOT, 'config/example.yaml'), '--check'])
  ])
  assert.equal(ry!.code, 0, ry!.stderr)
  assert.match(ry!.stdout, /valid/)
  assert.match(ry!.stdout, /http:\/\/127\.0\.0\.1:9001/)
  assert.match(ry!.stdout, new RegExp(`127\\.0\\.0\\.1:${port}`))
  assert.equal(rj!.code, 0, rj!.stderr)
  assert.match(rj!.stdout, /http:\/\/127\.0\.0\.1:9002/)
  assert.match(rj!.stdout, /1234/)
  assert.equal(re!.code, 0, re!.stderr)
  assert.match(re!.stdout, /9001/)
  for (const r of shipped) assert.equal(r.code, 0, r.stderr)
  assert.equal(await probePort(port), 'refused')
})

test('--config YAML, --config JSON and PENUMBRA_CONFIG each start a working proxy', { timeout: 30_000 }, async (t) => {
  const up = await httpServer((req, res) => { req.resume(); res.end(`via ${req.url}`) })
  t.after(() => up.stop())
  const dir = tempDir(t)
  const variants: Array<{ name: string, make: (port: number, adminPort: number) => { file: string, extra: string[], env?: NodeJS.ProcessEnv } }> = [
    { name: 'yaml', make: (port, adminPort) => ({ file: writeFile(dir, 'a.yaml', childConfigYaml({ port, adminPort, primary: up.url })), extra: [] }) },
    { name: 'json', make: (port, adminPort) => ({ file: writeFile(dir, 'a.json', JSON.stringify({ listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: adminPort }, primary: { url: up.url }, log: { level: 'warn' } })), extra: [] }) },
    { name: 'env', make: (port, adminPort) => ({ file: '', extra: [], env: { PENUMBRA_CONFIG: writeFile(dir, 'b.yml', childConfigYaml({ port, adminPort, primary: up.url })) } }) }
  ]
  await Promise.all(variants.map(async (v) => {
    const port = await freePort()
    const adminPort = await freePort()
    const { file, extra, env } = v.make(port, adminPort)
    const child = file === ''
      ? await spawnEnv(env!, port, adminPort)
      : await spawnPenumbra(file, { port, adminPort, extra })
    t.after(() => child.kill())
    const r = await request(`http://127.0.0.1:${port}/${v.name}`)
    assert.equal(await r.body.text(), `via /${v.name}`, v.name)
    child.child.kill('SIGTERM')
    assert.equal((await child.waitExit()).code, 0, v.name)
  }))

  async function spawnEnv (env: NodeJS.ProcessEnv, port: number, adminPort: number): ReturnType<typeof spawnPenumbra> {
    // spawnPenumbra always passes --config; PENUMBRA_CONFIG alone needs the bare CLI.
    const { spawn } = await import('node:child_process')
    const { PenumbraChild, CLI, sleep } = await import('./helpers/proxy-util.js')
    const child = new PenumbraChild(spawn(process.execPath, [CLI], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }))
    const until = Date.now() + 10_000
    while (Date.now() < until) {
      if (!child.running) throw new Error(`exited early: ${child.stderr}`)
      if (await probePort(port, 500) === 'open' && await probePort(adminPort, 500) === 'open') return child
      await sleep(25)
    }
    await child.kill()
    throw new Error('did not start')
  }
})

/**
 * Invalid configs at process level: [description, file name, content, expected stderr patterns].
 * (The full matrix of validation messages is in config-validate.test.ts, in-process.)
 */
const INVALID: Array<[string, string, (port: number) => string, RegExp[]]> = [
  ['unknown key (typo)', 'typo.yaml', (p) => `listen: { host: 127.0.0.1, port: ${p} }\nprimary: { url: "http://127.0.0.1:9001", timeoutMS: 100 }\n`, [/primary\.timeoutMS: unknown key/]],
  ['wrong type', 'type.yaml', (p) => `listen: { host: 127.0.0.1, port: ${p} }\nprimary: { url: "http://127.0.0.1:9001", timeoutMs: "fast" }\n`, [/primary\.timeoutMs: .*(number|expected)/i]],
  ['bad URL', 'url.yaml', (p) => `listen: { host: 127.0.0.1, port: ${p} }\nprimary: { url: "localhost:9001" }\n`, [/primary\.url: must be an http\(s\) URL/]],
  ['port out of range', 'port.yaml', (p) => `listen: { host: 127.0.0.1, port: ${p} }\nadmin: { port: 70000 }\nprimary: { url: "http://127.0.0.1:9001" }\n`, [/admin\.port: must be a port number 0\.\.65535/]],
  ['missing primary', 'noprimary.yaml', (p) => `listen: { host: 127.0.0.1, port: ${p} }\n`, [/(^|\s)primary: is required/m]],
  ['YAML syntax error', 'syntax.yaml', (p) => `listen:\n  host: 127.0.0.1\n  port: ${p}\nprimary: { url: "http://127.0.0.1:9001"\n  timeoutMs: [1, 2\n`, [/syntax\.yaml: YAML syntax error at line \d+/]]
]

test('invalid configs → exit 2 with the key path on stderr, before listening (also with --check)', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t)
  const cases = await Promise.all(INVALID.map(async ([what, name, content, patterns]) => {
    const port = await freePort()
    return { what, patterns, port, file: writeFile(dir, name, content(port)) }
  }))
  const runs = await Promise.all([
    ...cases.map((c) => runCli(['--config', c.file])),
    runCli(['--config', cases[0]!.file, '--check'])
  ])
  for (const [i, c] of [...cases, cases[0]!].entries()) {
    const r = runs[i]!
    assert.equal(r.code, 2, `${c.what}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
    for (const p of c.patterns) assert.match(r.stderr, p, c.what)
    assert.match(r.stderr, /invalid config/, c.what)
    assert.equal(r.stdout, '', `${c.what}: nothing on stdout (no listening log line, no summary)`)
    assert.equal(await probePort(c.port), 'refused')
  }
})

test('invalid config: every problem is listed at once', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t)
  const file = writeFile(dir, 'many.yaml', [
    'listen: { host: 127.0.0.1, port: 70000, keepAliveTimeoutMS: 5 }',
    'admin: { token: short }',
    'primary: { url: "not a url", timeoutMs: -5 }',
    'workers: 0',
    'lgo: { level: info }',
    ''
  ].join('\n'))
  const r = await runCli(['--config', file])
  assert.equal(r.code, 2)
  for (const p of [/invalid config \(PENUMBRA_INVALID_CONFIG\)/, /listen\.port: /, /listen\.keepAliveTimeoutMS: unknown key/, /admin\.token: must be at least 8 characters/, /primary\.url: must be an http\(s\) URL/, /primary\.timeoutMs: /, /workers: must be >= 1/, /lgo: unknown key/]) {
    assert.match(r.stderr, p)
  }
  // One problem per line.
  const problemLines = r.stderr.split('\n').filter((l) => /^\s+\S+: /.test(l))
  assert.ok(problemLines.length >= 7, r.stderr)
})

test('a config file that does not exist → exit 2 naming the file', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t)
  const missing = join(dir, 'nope.yaml')
  const [r1, r2] = await Promise.all([runCli(['--config', missing]), runCli([], { env: { PENUMBRA_CONFIG: missing } })])
  for (const r of [r1!, r2!]) {
    assert.equal(r.code, 2)
    assert.ok(r.stderr.includes(missing), r.stderr)
    assert.match(r.stderr, /no such file/)
  }
})

test('--workers out of range → exit 2', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t)
  const file = writeFile(dir, 'w.yaml', childConfigYaml({ port: await freePort(), adminPort: 0, primary: 'http://127.0.0.1:9001' }))
  const runs = await Promise.all(['0'].map((n) => runCli(['--config', file, '--workers', n, '--check'])))
  for (const r of runs) {
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--workers/)
  }
})

test('a port that is taken → a clear message naming it, non-zero exit', { timeout: 20_000 }, async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const taken = (blocker.address() as { port: number }).port
  const dir = tempDir(t)
  const port = await freePort()
  const [rl, ra, rc] = await Promise.all([
    // The proxy port.
    runCli(['--config', writeFile(dir, 'p.yaml', childConfigYaml({ port: taken, adminPort: await freePort(), primary: 'http://127.0.0.1:9001' }))]),
    // The admin port: the proxy port it had opened is released again.
    runCli(['--config', writeFile(dir, 'a.yaml', childConfigYaml({ port, adminPort: taken, primary: 'http://127.0.0.1:9001' }))]),
    // With --workers 2: the primary process fails early instead of looping workers.
    runCli(['--config', writeFile(dir, 'c.yaml', childConfigYaml({ port: taken, adminPort: await freePort(), primary: 'http://127.0.0.1:9001' })), '--workers', '2'], { timeoutMs: 10_000 })
  ])
  for (const r of [rl!, ra!, rc!]) {
    assert.notEqual(r.code, 0)
    assert.notEqual(r.code, null, `exited by itself (not killed by the test's timeout): ${r.stderr}`)
  }
  assert.match(rl!.stderr, new RegExp(`listen\\.port: 127\\.0\\.0\\.1:${taken} is already in use`))
  assert.match(ra!.stderr, new RegExp(`admin\\.port: 127\\.0\\.0\\.1:${taken} is already in use`))
  assert.equal(await probePort(port), 'refused')
  assert.match(rc!.stderr, new RegExp(`listen\\.port: 127\\.0\\.0\\.1:${taken} is already in use`))
})
