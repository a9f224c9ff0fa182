import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { validateConfig, loadConfigFile, ConfigError } from '../src/index.js'
import { redactConfig } from '../src/config/load.js'
import { ROOT, tempDir, writeFile } from './helpers/proxy-util.js'

// Issue #2, in-process: validation messages carry the key path, every problem is reported,
// defaults are as documented, YAML and JSON load the same.

function problems (doc: unknown): string[] {
  try {
    validateConfig(doc)
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    assert.equal(err.code, 'PENUMBRA_INVALID_CONFIG')
    return err.problems
  }
  assert.fail('expected the config to be invalid')
}

const P = { url: 'http://127.0.0.1:9001' }

test('a minimal config gets the documented defaults', () => {
  const c = validateConfig({ primary: P })
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8080, keepAliveTimeoutMs: 65_000, headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, maxHeaderBytes: 16_384, maxBodyBytes: 100 * 1024 * 1024, maxConnections: 10_000 })
  assert.deepEqual(c.admin, { enabled: true, host: '127.0.0.1', port: 9901, token: null, tokenFile: null, protectMetrics: false, historyIntervalMs: 10_000 })
  // The legacy object form defines the backend named "primary".
  assert.equal(c.primary, 'primary')
  assert.deepEqual(c.backends, { primary: { url: P.url, timeoutMs: 30_000, connectTimeoutMs: 5000, connections: 128, keepAliveTimeoutMs: 4000, preserveHost: false } })
  assert.deepEqual(c.proxy, { via: 'penumbra', requestIdHeader: 'x-request-id', loopDetection: true, xForwarded: true, maxUpgrades: 1024 })
  assert.equal(c.log.access, true)
  assert.equal(c.log.level, 'info')
  assert.equal(c.shutdown.timeoutMs, 10_000)
  assert.equal(c.workers, 1)
  assert.deepEqual(c.shadows, [])
  assert.equal(c.compare.workerMinBytes, 65_536)
  assert.equal(validateConfig({ primary: P, compare: { workerMinBytes: null } }).compare.workerMinBytes, null)
  assert.ok(c.compare.mismatches.redact.query.includes('api_key'), 'credential-like query parameters are redacted by default')
})

test('a primary that points at penumbra itself is rejected (a request loop)', () => {
  assert.deepEqual(problems({ listen: { port: 8080 }, primary: { url: 'http://localhost:8080' } }),
    ['primary.url: points at penumbra itself (listen.host:listen.port): a request loop'])
  assert.doesNotThrow(() => validateConfig({ listen: { port: 8080 }, primary: { url: 'http://127.0.0.1:8081' } }))
})

test('each kind of problem names its key path', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ primary: { ...P, timeoutMS: 1 } }, /^primary\.timeoutMS: unknown key \(did you mean `timeoutMs`\?\)$/],
    [{ primary: P, listne: {} }, /^listne: unknown key \(did you mean `listen`\?\)$/],
    [{ primary: { ...P, timeoutMs: 'fast' } }, /^primary\.timeoutMs: .*number/],
    [{ primary: { ...P, timeoutMs: 1.5 } }, /^primary\.timeoutMs: /],
    [{ primary: { ...P, timeoutMs: 0 } }, /^primary\.timeoutMs: must be a whole number of milliseconds >= 1$/],
    [{ primary: { url: 'localhost:9001' } }, /^primary\.url: must be an http\(s\) URL$/],
    [{ primary: { url: 'not a url' } }, /^primary\.url: must be an http\(s\) URL$/],
    [{ primary: { url: 'ftp://127.0.0.1' } }, /^primary\.url: must be an http\(s\) URL$/],
    [{ primary: { url: 'http://u:p@127.0.0.1' } }, /^primary\.url: must not contain credentials/],
    [{ primary: { url: 'http://127.0.0.1:9001/v1?x=1' } }, /^primary\.url: must be an origin only/],
    [{ primary: { url: 42 } }, /^primary\.url: /],
    [{ primary: P, listen: { port: 65536 } }, /^listen\.port: must be a port number 0\.\.65535$/],
    [{ primary: P, listen: { port: -1 } }, /^listen\.port: must be a port number 0\.\.65535$/],
    [{ primary: P, listen: { port: '8080' } }, /^listen\.port: /],
    [{ primary: P, admin: { port: 70000 } }, /^admin\.port: must be a port number 0\.\.65535$/],
    [{ primary: P, listen: { host: '127.0.0.1', port: 8080 }, admin: { host: '127.0.0.1', port: 8080 } }, /^admin\.port: must differ from listen\.port$/],
    [{ primary: P, admin: { token: 'short' } }, /^admin\.token: must be at least 8 characters$/],
    [{ primary: P, workers: 0 }, /^workers: must be >= 1$/],
    [{ primary: P, workers: 65 }, /^workers: must be <= 64$/],
    [{ primary: P, log: { level: 'loud' } }, /^log\.level: /],
    [{ primary: P, proxy: { via: 'has space' } }, /^proxy\.via: must be an RFC 9110 token$/],
    [{ primary: P, proxy: { requestIdHeader: 'bad header' } }, /^proxy\.requestIdHeader: must be an HTTP header name/],
    [{ primary: P, shutdown: { timeoutMs: -1 } }, /^shutdown\.timeoutMs: /],
    [{ primary: P, compare: { workerMinBytes: -1 } }, /^compare\.workerMinBytes: must be >= 0$/],
    [{ primary: P, compare: { workerMinBytes: 'big' } }, /^compare\.workerMinBytes: /],
    [{ primary: P, compare: { mismatches: { redact: { query: [''] } } } }, /^compare\.mismatches\.redact\.query\[0\]: must not be empty$/],
    [{ primary: P, compare: { mismatches: { redact: { query: 'token' } } } }, /^compare\.mismatches\.redact\.query: /],
    [{ primary: P, shadows: [{ name: 'a', url: 'http://127.0.0.1:1', compare: { workerMinBytes: 0 } }] }, /^shadows\[0\]\.compare\.workerMinBytes: unknown key$/],
    [{}, /^primary: is required$/],
    [{ primary: {} }, /^primary\.url: is required$/],
    [{ primary: P, shadows: [{ name: 'a', url: 'http://127.0.0.1:1' }, { name: 'a', url: 'http://127.0.0.1:2' }] }, /^shadows\[1\]\.name: duplicate shadow name "a"$/],
    [{ primary: P, shadows: [{ name: 'ok', url: 'nope' }] }, /^shadows\[0\]\.url: must be an http\(s\) URL$/]
  ]
  for (const [doc, expected] of cases) {
    const found = problems(doc)
    assert.ok(found.some((p) => expected.test(p)), `${JSON.stringify(doc)} → ${JSON.stringify(found)} should include ${String(expected)}`)
  }
})

test('every problem is reported at once', () => {
  const found = problems({
    listen: { port: 70000, typo: 1 },
    admin: { token: 'x' },
    primary: { url: 'nope', timeoutMs: -1 },
    workers: 0,
    extra: true
  })
  for (const p of [/^listen\.port: /, /^listen\.typo: unknown key$/, /^admin\.token: /, /^primary\.url: /, /^primary\.timeoutMs: /, /^workers: /, /^extra: unknown key$/]) {
    assert.ok(found.some((f) => p.test(f)), `${String(p)} in ${JSON.stringify(found)}`)
  }
  const e = (() => { try { validateConfig({ listen: { port: 70000 } }) } catch (err) { return err as ConfigError } })()!
  assert.match(e.message, /invalid config:\n {2}/)
})

test('loadConfigFile: YAML and JSON give the same config; syntax errors and missing files name the file', (t) => {
  const dir = tempDir(t)
  const yaml = writeFile(dir, 'c.yaml', 'primary:\n  url: http://127.0.0.1:9001\n  timeoutMs: 1500\nlisten: { port: 0 }\n')
  const json = writeFile(dir, 'c.json', JSON.stringify({ primary: { url: 'http://127.0.0.1:9001', timeoutMs: 1500 }, listen: { port: 0 } }))
  assert.deepEqual(loadConfigFile(yaml), loadConfigFile(json))
  // A .yml file with JSON content works too (YAML is a superset).
  assert.equal(loadConfigFile(writeFile(dir, 'j.yml', JSON.stringify({ primary: P }))).backends.primary!.url, P.url)

  const bad = (file: string): string[] => { try { loadConfigFile(file) } catch (err) { assert.ok(err instanceof ConfigError); return err.problems } return assert.fail('expected an error') }
  assert.match(bad(writeFile(dir, 's.yaml', 'primary: { url: "x"\n  a: [\n'))[0]!, /s\.yaml: YAML syntax error at line \d+, column \d+/)
  assert.match(bad(writeFile(dir, 'd.yaml', 'primary: { url: "http://127.0.0.1:1" }\nprimary: { url: "http://127.0.0.1:2" }\n'))[0]!, /d\.yaml: YAML/)
  assert.match(bad(writeFile(dir, 'b.json', '{"primary": }'))[0]!, /b\.json: invalid JSON/)
  assert.match(bad(join(dir, 'missing.yaml'))[0]!, /missing\.yaml: cannot read config file \(no such file\)/)
  assert.deepEqual(bad(writeFile(dir, 'empty.yaml', '')), ['primary: is required'])
  assert.match(bad(writeFile(dir, 'list.yaml', '- 1\n- 2\n'))[0]!, /^\(root\): /)
})

test('the shipped configs are valid', () => {
  for (const f of ['config/example.yaml', 'config/demo.yaml']) assert.doesNotThrow(() => loadConfigFile(join(ROOT, f)), f)
})

test('redactConfig hides admin.token and every shadow headers.set value, and does not mutate', () => {
  const c = validateConfig({
    primary: P,
    admin: { token: 'very-secret-token' },
    shadows: [{ name: 's1', url: 'http://127.0.0.1:9002', headers: { set: { authorization: 'Bearer zzz', 'x-api-key': 'kkk', 'x-plain': 'visible' } } }]
  })
  const r = redactConfig(c) as typeof c
  assert.equal(r.admin.token, '[REDACTED]')
  assert.equal(r.shadows[0]!.headers.set.authorization, '[REDACTED]')
  assert.equal(r.shadows[0]!.headers.set['x-api-key'], '[REDACTED]')
  assert.equal(r.shadows[0]!.headers.set['x-plain'], '[REDACTED]', 'a name-based guess misses credentials like x-auth')
  assert.equal(c.shadows[0]!.headers.set['x-plain'], 'visible')
  assert.equal(c.admin.token, 'very-secret-token')
  assert.ok(!JSON.stringify(r).includes('very-secret-token'))
})

test('an unknown key within 2 edits of a known one gets a "did you mean" hint, at any depth', () => {
  const cases: Array<[unknown, string]> = [
    [{ primary: { url: P.url, timeoutMS: 5 } }, 'primary.timeoutMS: unknown key (did you mean `timeoutMs`?)'],
    [{ primary: P, shadows: [{ name: 'a', url: P.url, sampleRat: 0.1 }] }, 'shadows[0].sampleRat: unknown key (did you mean `sampleRate`?)'],
    [{ backends: { b: { url: P.url, conections: 3 } }, primary: 'b' }, 'backends.b.conections: unknown key (did you mean `connections`?)'],
    [{ primary: P, compare: { numeric: { abstol: 1 } } }, 'compare.numeric.abstol: unknown key (did you mean `absTol`?)'],
    [{ primary: P, lgo: {} }, 'lgo: unknown key (did you mean `log`?)'],
    [{ primary: P, xyzzy: 1 }, 'xyzzy: unknown key']
  ]
  for (const [doc, want] of cases) {
    try {
      validateConfig(doc)
      assert.fail(`expected ${want}`)
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err))
      assert.deepEqual(err.problems, [want])
    }
  }
})

test('per-shadow compare overrides are derived from the top-level compare schema: same checks, no defaults, process-wide keys refused', () => {
  const c = validateConfig({ primary: P, shadows: [{ name: 'a', url: P.url, compare: { numeric: { absTol: 0.5 }, noise: { margin: 0.1 }, textSimilarity: 0.8 } }] })
  assert.deepEqual(c.shadows[0]!.compare, { numeric: { absTol: 0.5 }, noise: { margin: 0.1 }, textSimilarity: 0.8 }, 'only what the shadow says: the rest comes from the top level')
  const bad = (compare: unknown): string[] => {
    try { validateConfig({ primary: P, shadows: [{ name: 'a', url: P.url, compare }] }) } catch (err) { return (err as ConfigError).problems }
    return []
  }
  assert.deepEqual(bad({ topK: 0 }), ['shadows[0].compare.topK: must be >= 1'])
  assert.deepEqual(bad({ numeric: { abstol: 1 } }), ['shadows[0].compare.numeric.abstol: unknown key (did you mean `absTol`?)'])
  for (const key of ['mismatches', 'maxPending', 'maxPendingBytes', 'workerMinBytes']) assert.deepEqual(bad({ [key]: 1 }), [`shadows[0].compare.${key}: unknown key`], key)
})
