// Issue #15: who may call the admin API. admin.protectReads / protectMetrics, the token from a
// file (a mounted Secret) or PENUMBRA_ADMIN_TOKEN, against a real admin listener.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { ConfigError, validateConfig } from '../src/index.js'
import { configWarnings } from '../src/config/schema.js'
import { resolveAdminToken } from '../src/config/load.js'
import { startPenumbra, startUpstream, urls } from './helpers/servers.js'
import { runCli, tempDir, writeFile } from './helpers/proxy-util.js'

const P = { url: 'http://127.0.0.1:9001' }

async function status (url: string, token?: string): Promise<number> {
  const r = await request(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  await r.body.text()
  return r.statusCode
}

function problems (fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  assert.fail('expected a config error')
}

test('protectReads: false keeps reads open (mutations still need the token); protectMetrics: true closes /metrics', { timeout: 10_000 }, async (t) => {
  const up = await startUpstream()
  const token = 'open-reads-token'
  const open = await startPenumbra({ primary: { url: up.url }, admin: { host: '127.0.0.1', port: 0, token, protectReads: false } })
  const closed = await startPenumbra({ primary: { url: up.url }, admin: { host: '127.0.0.1', port: 0, token, protectMetrics: true } })
  t.after(async () => { await open.stop(); await closed.stop(); await up.close() })
  const a = urls(open).admin
  for (const p of ['/config', '/report', '/shadows', '/backends', '/metrics']) assert.equal(await status(`${a}${p}`), 200, p)
  const put = await request(`${a}/primary`, { method: 'PUT', body: '{"backend":"primary"}' })
  await put.body.text()
  assert.equal(put.statusCode, 401, 'mutations need the token whatever protectReads says')
  const c = urls(closed).admin
  assert.equal(await status(`${c}/metrics`), 401)
  assert.equal(await status(`${c}/metrics`, token), 200)
  assert.equal(await status(`${c}/metrics`, 'wrong-token-123'), 401)
  for (const p of ['/healthz', '/readyz']) assert.equal(await status(`${c}${p}`), 200, `${p} stays open for probes`)
})

test('without a token nothing is protected, and the protect switches say so', async () => {
  const w = configWarnings(validateConfig({ primary: P, admin: { protectMetrics: true } }))
  assert.ok(w.some((x) => /admin\.protectReads\/protectMetrics: no admin\.token/.test(x)), w.join('\n'))
  const exposed = configWarnings(validateConfig({ primary: P, admin: { host: '0.0.0.0' } }))
  assert.ok(exposed.some((x) => /admin\.host: 0\.0\.0\.0 .*no admin\.token/.test(x)), exposed.join('\n'))
  assert.deepEqual(configWarnings(validateConfig({ primary: P, admin: { host: '0.0.0.0', token: 'a-long-token' } })), [])
})

test('admin.tokenFile (a mounted Secret) and PENUMBRA_ADMIN_TOKEN; bad files name the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'penumbra-token-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'token')
  writeFileSync(file, 'from-the-secret-file\n')
  assert.equal(validateConfig({ primary: P, admin: { tokenFile: file } }).admin.token, null, 'validation does no I/O')
  assert.equal(resolveAdminToken(validateConfig({ primary: P, admin: { tokenFile: file } }), {}).admin.token, 'from-the-secret-file', 'trimmed')
  const parsed = validateConfig({ primary: P, admin: { token: 'from-the-config' } })
  assert.equal(resolveAdminToken(parsed, { PENUMBRA_ADMIN_TOKEN: 'from-the-environment' }).admin.token, 'from-the-environment', 'the environment wins')
  assert.equal(resolveAdminToken(parsed, { PENUMBRA_ADMIN_TOKEN: '' }).admin.token, 'from-the-config', 'an empty variable is unset')
  assert.deepEqual(problems(() => resolveAdminToken(parsed, { PENUMBRA_ADMIN_TOKEN: 'short' })), ['PENUMBRA_ADMIN_TOKEN: must be at least 8 characters'])
  assert.match(problems(() => resolveAdminToken(validateConfig({ primary: P, admin: { tokenFile: join(dir, 'missing') } }), {}))[0]!, /^admin\.tokenFile: cannot read .*ENOENT/)
  writeFileSync(join(dir, 'short'), 'abc')
  assert.match(problems(() => resolveAdminToken(validateConfig({ primary: P, admin: { tokenFile: join(dir, 'short') } }), {}))[0]!, /^admin\.tokenFile: .* at least 8 characters/)
  assert.deepEqual(problems(() => validateConfig({ primary: P, admin: { token: 'a-long-token', tokenFile: file } })), ['admin.tokenFile: give admin.token or admin.tokenFile, not both'])
  // The file's token protects the listener like admin.token does.
  const up = await startUpstream()
  const app = await startPenumbra({ primary: { url: up.url }, admin: { host: '127.0.0.1', port: 0, tokenFile: file } })
  t.after(async () => { await app.stop(); await up.close() })
  assert.equal(await status(`${urls(app).admin}/report`), 401)
  assert.equal(await status(`${urls(app).admin}/report`, 'from-the-secret-file'), 200)
})

test('the CLI: an unreadable admin.tokenFile exits 2 naming the key, before listening', { timeout: 20_000 }, async (t) => {
  const dir = tempDir(t)
  const cfg = writeFile(dir, 'c.yaml', 'primary: { url: "http://127.0.0.1:9001" }\nadmin: { tokenFile: /nonexistent/penumbra-token }\n')
  const r = await runCli(['--config', cfg, '--check'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /admin\.tokenFile: cannot read \/nonexistent\/penumbra-token/)
})
