import { test } from 'node:test'
import assert from 'node:assert/strict'
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib'
import { decodeBody } from '../src/compare/body.js'
import { Comparator } from '../src/compare/comparator.js'
import { compareSchema } from '../src/config/schema.js'
import { captured, makeJob } from './fixtures/compare.js'

const BODY = { predictions: [{ label: 'cat', scores: [0.1, 0.9] }] }
const JSON_BYTES = Buffer.from(JSON.stringify(BODY))
const MAX = 4 * 1024 * 1024

function encoded (enc: string, bytes: Buffer): { headers: Record<string, string>, body: Buffer } {
  return { headers: { 'content-type': 'application/json', 'content-encoding': enc }, body: bytes }
}

test('gzip, deflate (zlib and raw), br and stacked codings are decoded', () => {
  for (const [enc, bytes] of [
    ['gzip', gzipSync(JSON_BYTES)],
    ['deflate', deflateSync(JSON_BYTES)],
    ['deflate', deflateRawSync(JSON_BYTES)],
    ['br', brotliCompressSync(JSON_BYTES)],
    ['GZIP', gzipSync(JSON_BYTES)],
    ['deflate, gzip', gzipSync(deflateSync(JSON_BYTES))],
    ['identity', JSON_BYTES]
  ] as const) {
    const r = decodeBody({ status: 200, ...encoded(enc, bytes) }, MAX)
    assert.deepEqual(r, { ok: true, value: BODY }, enc)
  }
})

test('unparseable bodies give fixed reasons', () => {
  const cases: Array<[string, Parameters<typeof decodeBody>[0], string]> = [
    ['non-JSON', { status: 200, headers: {}, body: Buffer.from('<html>oops</html>') }, 'invalid JSON'],
    ['truncated', { status: 200, headers: {}, body: JSON_BYTES.subarray(0, 10), truncated: true }, 'body truncated at capture limit'],
    ['cut JSON', { status: 200, headers: {}, body: JSON_BYTES.subarray(0, 10) }, 'invalid JSON'],
    ['invalid UTF-8', { status: 200, headers: {}, body: Buffer.from([0x22, 0xc3, 0x28, 0x22]) }, 'invalid UTF-8'],
    ['bad gzip', { status: 200, ...encoded('gzip', Buffer.from('definitely not gzip')) }, 'gzip failed to inflate'],
    ['bad deflate', { status: 200, ...encoded('deflate', Buffer.from([0xff, 0xff, 0xff])) }, 'deflate failed to inflate'],
    ['bad br', { status: 200, ...encoded('br', Buffer.from('not brotli at all, no')) }, 'br failed to decompress'],
    ['unknown coding', { status: 200, ...encoded('zstd', Buffer.from('x')) }, 'unsupported content-encoding'],
    ['empty 200', { status: 200, headers: {}, body: Buffer.alloc(0) }, 'empty body']
  ]
  for (const [name, input, reason] of cases) assert.deepEqual(decodeBody(input, MAX), { ok: false, reason }, name)
})

test('gzip output is capped at maxBodyBytes', () => {
  const big = gzipSync(Buffer.from(JSON.stringify({ x: 'a'.repeat(100_000) })))
  assert.deepEqual(decodeBody({ status: 200, ...encoded('gzip', big) }, 1000), { ok: false, reason: 'body exceeds maxBodyBytes' })
})

test('an empty 204 is a null body; a BOM is tolerated', () => {
  assert.deepEqual(decodeBody({ status: 204, headers: {}, body: Buffer.alloc(0) }, MAX), { ok: true, value: null })
  assert.deepEqual(decodeBody({ status: 200, headers: {}, body: Buffer.from('\ufeff{"a":1}') }, MAX), { ok: true, value: { a: 1 } })
})

test('comparator: each unparseable case yields outcome unparseable with the side in the reason', () => {
  const cmp = new Comparator(compareSchema.parse({}))
  const good = captured(BODY)
  const bad: Array<[ReturnType<typeof captured>, string]> = [
    [captured('not json'), 'shadow: invalid JSON'],
    [captured(JSON_BYTES.subarray(0, 20), { truncated: true }), 'shadow: body truncated at capture limit'],
    [captured(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), 'shadow: invalid UTF-8'],
    [captured(Buffer.from('garbage'), { headers: { 'content-encoding': 'gzip' } }), 'shadow: gzip failed to inflate']
  ]
  for (const [shadow, reason] of bad) {
    const r = cmp.compare(makeJob({ primary: good, shadow }))
    assert.equal(r.outcome, 'unparseable', reason)
    assert.equal(r.reason, reason)
    assert.deepEqual(r.differences, [])
  }
  const r = cmp.compare(makeJob({ primary: captured('nope'), shadow: good }))
  assert.equal(r.reason, 'primary: invalid JSON')
})

test('comparator: compressed bodies are compared on their content; two empty 204s match', () => {
  const cmp = new Comparator(compareSchema.parse({ headers: [] }))
  const r = cmp.compare(makeJob({
    primary: captured(gzipSync(JSON_BYTES), { headers: { 'content-encoding': 'gzip' } }),
    shadow: captured(brotliCompressSync(JSON_BYTES), { headers: { 'content-encoding': 'br' } })
  }))
  assert.equal(r.outcome, 'match')
  assert.deepEqual(r.primaryBody, BODY)
  const e = cmp.compare(makeJob({ primary: captured(Buffer.alloc(0), { status: 204 }), shadow: captured(Buffer.alloc(0), { status: 204 }) }))
  assert.equal(e.outcome, 'match')
})
