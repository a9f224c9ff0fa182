import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { waitFor } from './helpers/common.js'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { Comparator } from '../src/compare/comparator.js'
import { MismatchStore, type MismatchesConfig } from '../src/compare/mismatch-store.js'
import { redactValue, compileRedactions, redactQuery } from '../src/compare/redact.js'
import { compareSchema } from '../src/config/schema.js'
import type { CompareJob, CompareResult } from '../src/compare/types.js'
import { captured, makeJob } from './fixtures/compare.js'

const mcfg = (over: object = {}): MismatchesConfig => compareSchema.parse({ mismatches: over }).mismatches
const comparator = new Comparator(compareSchema.parse({}))

function mismatch (i: number, over: Partial<CompareJob> = {}): [CompareJob, CompareResult] {
  const job = {
    ...makeJob({
      url: '/v1/models/m:predict?api_key=x',
      requestBody: Buffer.from(JSON.stringify({ instances: [{ email: `u${i}@example.com`, age: 30 }] })),
      requestHeaders: { 'content-type': 'application/json', authorization: 'Bearer secret', 'x-request-id': `r${i}` },
      primary: captured({ predictions: [{ label: 'a', user: { email: 'p@example.com' } }] }, { headers: { 'set-cookie': ['s=1'], 'content-type': 'application/json' } }),
      shadow: captured({ predictions: [{ label: 'b', user: { email: 's@example.com' } }] }),
      shadowName: i % 2 === 0 ? 'even' : 'odd'
    }),
    requestId: `r${i}`,
    ...over
  }
  return [job, comparator.compare(job)]
}

test('add/get/list: newest first, filter by shadow, summaries without bodies', () => {
  const store = new MismatchStore(mcfg())
  const ids = [0, 1, 2, 3].map((i) => store.add(...mismatch(i)))
  assert.equal(new Set(ids).size, 4)
  assert.equal(store.size, 4)
  const all = store.list()
  assert.deepEqual(all.map((s) => s.requestId), ['r3', 'r2', 'r1', 'r0'])
  assert.deepEqual(store.list({ shadow: 'even' }).map((s) => s.requestId), ['r2', 'r0'])
  assert.deepEqual(store.list({ limit: 1 }).map((s) => s.requestId), ['r3'])
  const s = all[0]!
  assert.equal(s.primaryStatus, 200)
  assert.deepEqual(s.paths, ['/predictions/*/label', '/predictions/*/user/email'])
  assert.ok(!('request' in s) && !('primary' in s))
  const rec = store.get(ids[3]!)!
  assert.equal(rec.shadow, 'odd')
  assert.equal(rec.path, '/v1/models/m:predict?api_key=[REDACTED]', 'credential-like query values are redacted by default')
  assert.match(rec.time, /^\d{4}-\d\d-\d\dT/)
  assert.deepEqual(rec.primary.body, { predictions: [{ label: 'a', user: { email: 'p@example.com' } }] })
  assert.deepEqual(rec.request.body, { instances: [{ email: 'u3@example.com', age: 30 }] })
  assert.equal(store.get('nope'), undefined)
  store.clear()
  assert.equal(store.size, 0)
})

test('bounded by count (keep) and by bytes (maxBytes)', () => {
  const byCount = new MismatchStore(mcfg({ keep: 3 }))
  for (let i = 0; i < 10; i++) byCount.add(...mismatch(i))
  assert.equal(byCount.size, 3)
  assert.deepEqual(byCount.list().map((s) => s.requestId), ['r9', 'r8', 'r7'])

  const probe = new MismatchStore(mcfg())
  const one = Buffer.byteLength(JSON.stringify(probe.get(probe.add(...mismatch(0)))))
  assert.equal(probe.stats().bytes, one, 'size is the JSON byte length')
  assert.ok(one > 500 && one < 2048, `record of ${one} bytes`)
  const byBytes = new MismatchStore(mcfg({ keep: 1000, maxBytes: 4096 }))
  for (let i = 0; i < 50; i++) byBytes.add(...mismatch(i))
  assert.ok(byBytes.size < 50 && byBytes.size >= 2, `size ${byBytes.size}`)
  assert.ok(byBytes.stats().bytes <= 4096)
  assert.equal(byBytes.list()[0]!.requestId, 'r49')

  // A record bigger than maxBytes is kept without its bodies.
  const big = new MismatchStore(mcfg({ maxBytes: 2048 }))
  const [job] = mismatch(0)
  const huge = { ...job, shadowResponse: captured({ predictions: [{ label: 'x'.repeat(5000) }] }) }
  const id = big.add(huge, comparator.compare(huge))
  assert.match(String(big.get(id)?.shadowResponse.body), /omitted/)

  const none = new MismatchStore(mcfg({ keep: 0 }))
  none.add(...mismatch(0))
  assert.equal(none.size, 0)
})

test('redaction: configured headers and body pointers (with *) in request, responses and differences', () => {
  const store = new MismatchStore(mcfg({ redact: { headers: ['authorization', 'set-cookie'], paths: ['/instances/*/email', '/predictions/*/user'] } }))
  const id = store.add(...mismatch(1))
  const r = store.get(id)!
  assert.equal(r.request.headers.authorization, '[REDACTED]')
  assert.equal(r.request.headers['x-request-id'], 'r1')
  assert.equal(r.primary.headers['set-cookie'], '[REDACTED]')
  assert.deepEqual(r.request.body, { instances: [{ email: '[REDACTED]', age: 30 }] })
  assert.deepEqual(r.primary.body, { predictions: [{ label: 'a', user: '[REDACTED]' }] })
  assert.deepEqual(r.shadowResponse.body, { predictions: [{ label: 'b', user: '[REDACTED]' }] })
  const emailDiff = r.differences.find((d) => d.path === '/predictions/0/user/email')!
  assert.deepEqual([emailDiff.primary, emailDiff.shadow], ['[REDACTED]', '[REDACTED]'])
  assert.ok(!JSON.stringify(r).includes('example.com'))
  assert.ok(!JSON.stringify(r).includes('secret'))
})

test('redactQuery: named parameters (case-insensitive, percent-decoded), * for all, path and order kept', () => {
  const names = new Set(['api_key', 'token'])
  assert.equal(redactQuery('/p?a=1&API_KEY=s3&b=2', names), '/p?a=1&API_KEY=[REDACTED]&b=2')
  assert.equal(redactQuery('/p?api%5Fkey=s3&tok%en=x&flag&token=', names), '/p?api%5Fkey=[REDACTED]&tok%en=x&flag&token=[REDACTED]')
  assert.equal(redactQuery('/p?x=1&y=2', new Set(['*'])), '/p?x=[REDACTED]&y=[REDACTED]')
  assert.equal(redactQuery('/p?x=1', names), '/p?x=1')
  assert.equal(redactQuery('/p', names), '/p')
  assert.equal(redactQuery('/p?token=1', new Set()), '/p?token=1')
  const store = new MismatchStore(mcfg({ redact: { query: ['version'] } }))
  const r = store.get(store.add(...mismatch(1, { url: '/m:predict?version=7&api_key=k' })))!
  assert.equal(r.path, '/m:predict?version=[REDACTED]&api_key=k', 'a configured list replaces the default one')
})

test('redactValue copies on write and leaves the input alone', () => {
  const input = { a: [{ s: 1, k: 2 }, { s: 3 }], b: { s: 4 } }
  const out = redactValue(input, compileRedactions(['/a/*/s', '/b', '/missing/x']))
  assert.deepEqual(out, { a: [{ s: '[REDACTED]', k: 2 }, { s: '[REDACTED]' }], b: '[REDACTED]' })
  assert.deepEqual(input, { a: [{ s: 1, k: 2 }, { s: 3 }], b: { s: 4 } })
  assert.equal(redactValue(input, compileRedactions(['/zzz'])), input)
})

test('non-JSON bodies are stored as text (decompressed, truncated)', () => {
  const store = new MismatchStore(mcfg())
  const job = makeJob({
    primary: captured({ a: 1 }),
    shadow: captured(gzipSync(Buffer.from('<html>' + 'x'.repeat(100_000) + '</html>')), { status: 502, headers: { 'content-encoding': 'gzip' } })
  })
  const id = store.add(job, comparator.compare(job))
  const body = store.get(id)!.shadowResponse.body as string
  assert.equal(typeof body, 'string')
  assert.ok(body.startsWith('<html>xxx'))
  assert.equal(body.length, 64 * 1024)
})

test('sink appends JSONL and close() flushes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'penumbra-sink-'))
  try {
    const file = join(dir, 'mismatches.jsonl')
    const store = new MismatchStore(mcfg({ sink: file, redact: { paths: ['/instances/*/email'] } }))
    for (let i = 0; i < 5; i++) store.add(...mismatch(i))
    await store.close()
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
    assert.equal(lines.length, 5)
    const first = JSON.parse(lines[0]!)
    assert.equal(first.requestId, 'r0')
    assert.equal(first.request.body.instances[0].email, '[REDACTED]')
    assert.equal(store.stats().sinkWritten, 5)
    // A second store appends.
    const again = new MismatchStore(mcfg({ sink: file }))
    again.add(...mismatch(9))
    await again.close()
    assert.equal(readFileSync(file, 'utf8').trimEnd().split('\n').length, 6)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a backed-up or failing sink drops and counts lines, never throws', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'penumbra-sink-'))
  try {
    let dropped = 0
    const store = new MismatchStore(mcfg({ sink: join(dir, 'm.jsonl') }), { onSinkDrop: () => dropped++ })
    // Default highWaterMark is 16 KiB; each line is ~1 KB: synchronous adds back it up quickly.
    for (let i = 0; i < 200; i++) store.add(...mismatch(i))
    const st = store.stats()
    assert.ok(st.sinkDropped > 0, 'some lines dropped while backed up')
    assert.equal(st.sinkDropped, dropped)
    assert.equal(st.sinkWritten + st.sinkDropped, 200)
    await store.close()
    assert.equal(readFileSync(join(dir, 'm.jsonl'), 'utf8').trimEnd().split('\n').length, st.sinkWritten)

    const errors: Error[] = []
    const broken = new MismatchStore(mcfg({ sink: join(dir, 'no-such-dir', 'm.jsonl') }), { onSinkError: (e) => errors.push(e) })
    broken.add(...mismatch(0))
    // Barrier: the sink's open failure has been reported (an event, asynchronously).
    await waitFor(() => errors.length === 1, 5000, 'the sink error')
    assert.doesNotThrow(() => broken.add(...mismatch(1)))
    assert.equal(errors.length, 1)
    assert.equal(broken.stats().sinkDropped, 1)
    await broken.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('keepPerShadow: one busy shadow cannot evict another shadow\'s mismatches (default keep / shadows, at least 10)', () => {
  // The reported case: keep 200, 574 mismatches of one shadow pushed out the only one of another.
  const store = new MismatchStore(mcfg({ keep: 200 }), {}, 2)
  const quietId = store.add(...mismatch(1)) // shadow "odd"
  for (let i = 0; i < 574; i++) store.add(...mismatch(2 * i)) // shadow "even"
  assert.ok(store.get(quietId) !== undefined, 'the quiet shadow keeps its mismatch')
  assert.equal(store.list({ shadow: 'even', limit: 1000 }).length, 100, 'keep / 2 shadows')
  assert.deepEqual(store.list({ shadow: 'even', limit: 1 }).map((s) => s.requestId), ['r1146'], 'the newest kept')
  assert.equal(store.size, 101)
  // An explicit quota, and a reload that changes the number of shadows.
  const fixed = new MismatchStore(mcfg({ keep: 50, keepPerShadow: 5 }), {}, 2)
  for (let i = 0; i < 20; i++) fixed.add(...mismatch(i))
  assert.equal(fixed.list({ shadow: 'even' }).length, 5)
  assert.equal(fixed.list({ shadow: 'odd' }).length, 5)
  const small = new MismatchStore(mcfg({ keep: 30 }), {}, 10)
  for (let i = 0; i < 40; i++) small.add(...mismatch(2 * i))
  assert.equal(small.size, 10, 'at least 10 per shadow')
  small.setShadowCount(1)
  for (let i = 40; i < 80; i++) small.add(...mismatch(2 * i))
  assert.equal(small.size, 30, 'the quota follows the shadow count, within keep')
})
