import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { compilePathGlob, parseSampleBy, sampleKey, stickyUniform } from '../src/shadow/sampler.js'
import { stickyUniform as exported } from '../src/index.js'

test('stickyUniform matches the documented test vectors (salt "penumbra")', () => {
  assert.equal(stickyUniform('penumbra', 'user-1'), 0.3570505434181541)
  assert.equal(stickyUniform('penumbra', 'user-2'), 0.47153723961673677)
  assert.equal(stickyUniform('penumbra', ''), 0.45448808348737657)
  assert.equal(stickyUniform('penumbra', 'ünïcode'), 0.7485098075121641)
  assert.equal(exported, stickyUniform, 'the package exports the same function')
})

test('stickyUniform: salt matters, range is [0,1), spread is roughly uniform', () => {
  assert.notEqual(stickyUniform('other', 'user-1'), stickyUniform('penumbra', 'user-1'))
  // salt and key are joined with ":" — ("a:b","c") and ("a","b:c") hash the same bytes by design
  assert.equal(stickyUniform('a:b', 'c'), stickyUniform('a', 'b:c'))
  const buckets = new Array(10).fill(0)
  for (let i = 0; i < 10_000; i++) {
    const u = stickyUniform('penumbra', `user-${i}`)
    assert.ok(u >= 0 && u < 1, `u=${u} for user-${i}`)
    buckets[Math.floor(u * 10)]++
  }
  // each decile: mean 1000, sd ≈ 30; 5 sigma
  for (const b of buckets) assert.ok(Math.abs(b - 1000) < 150, `deciles ${buckets.join(',')}`)
})

test('stickyUniform hashes UTF-8 bytes (not UTF-16 code units)', () => {
  // "ü" is U+00FC: latin1 would give one byte, UTF-8 two; the vector pins UTF-8.
  assert.notEqual(stickyUniform('penumbra', 'ünïcode'), stickyUniform('penumbra', Buffer.from('ünïcode', 'utf8').toString('latin1')))
})

test('parseSampleBy', () => {
  assert.deepEqual(parseSampleBy('random'), { kind: 'random' })
  assert.deepEqual(parseSampleBy('header:X-User'), { kind: 'header', name: 'x-user' }, 'header names are case-insensitive')
  assert.deepEqual(parseSampleBy('cookie:Session'), { kind: 'cookie', name: 'Session' }, 'cookie names keep their case')
  assert.deepEqual(parseSampleBy('query:userId'), { kind: 'query', name: 'userId' })
  assert.throws(() => parseSampleBy('body:x'))
  assert.throws(() => parseSampleBy('nonsense'))
})

function fakeReq (url: string, headers: Record<string, string | string[]>): IncomingMessage {
  return { url, headers } as unknown as IncomingMessage
}

test('sampleKey reads header, cookie and query keys; undefined when absent', () => {
  const req = fakeReq('/p?userId=u%C3%BC&x=1', { 'x-user': 'alice', cookie: 'a=1; Session=s-42 ; b=2' })
  assert.equal(sampleKey(parseSampleBy('header:X-User'), req), 'alice')
  assert.equal(sampleKey(parseSampleBy('cookie:Session'), req), 's-42')
  assert.equal(sampleKey(parseSampleBy('query:userId'), req), 'uü')
  assert.equal(sampleKey(parseSampleBy('random'), req), undefined)
  assert.equal(sampleKey(parseSampleBy('header:x-other'), req), undefined)
  assert.equal(sampleKey(parseSampleBy('cookie:session'), req), undefined, 'cookie names are case-sensitive')
  assert.equal(sampleKey(parseSampleBy('query:nope'), req), undefined)
  assert.equal(sampleKey(parseSampleBy('query:userId'), fakeReq('/p', {})), undefined)
  assert.equal(sampleKey(parseSampleBy('cookie:a'), fakeReq('/p', {})), undefined)
  // RFC 6265 §4.1.1: a quoted cookie-value is the same value without its quotes.
  const quoted = fakeReq('/p', { cookie: 'uid="u-7"; other="x; y=1' })
  assert.equal(sampleKey(parseSampleBy('cookie:uid'), quoted), 'u-7')
  assert.equal(sampleKey(parseSampleBy('cookie:other'), quoted), '"x', 'an unbalanced quote is kept')
  assert.equal(sampleKey(parseSampleBy('cookie:uid'), fakeReq('/p', { cookie: 'uid=""' })), '', 'empty quoted value')
})

test('compilePathGlob: * matches within one segment', () => {
  const re = compilePathGlob('/v1/models/*:predict')
  assert.ok(re.test('/v1/models/iris:predict'))
  assert.ok(re.test('/v1/models/:predict'))
  assert.ok(!re.test('/v1/models/a/b:predict'))
  assert.ok(!re.test('/v1/models/iris:predictX'))
  assert.ok(!re.test('/x/v1/models/iris:predict'), 'anchored at the start')
  const seg = compilePathGlob('/a/*')
  assert.ok(seg.test('/a/b'))
  assert.ok(!seg.test('/a/b/c'))
})

test('compilePathGlob: ** matches across segments', () => {
  const re = compilePathGlob('/v2/**')
  assert.ok(re.test('/v2/models/x/infer'))
  assert.ok(re.test('/v2/a'))
  assert.ok(!re.test('/v3/a'))
  const all = compilePathGlob('/**')
  assert.ok(all.test('/'))
  assert.ok(all.test('/anything/at/all'))
  const mid = compilePathGlob('/v1/**/infer')
  assert.ok(mid.test('/v1/models/m/infer'))
  assert.ok(!mid.test('/v1/models/m/predict'))
})

test('compilePathGlob: ** in the middle also matches zero segments (globstar convention)', () => {
  assert.ok(compilePathGlob('/v1/**/infer').test('/v1/infer'))
})

test('compilePathGlob: regex metacharacters in the glob are literal', () => {
  const re = compilePathGlob('/v1/models/m.v2+beta(1):predict')
  assert.ok(re.test('/v1/models/m.v2+beta(1):predict'))
  assert.ok(!re.test('/v1/models/mXv2+beta(1):predict'))
  const q = compilePathGlob('/a?c')
  assert.ok(q.test('/abc'))
  assert.ok(!q.test('/a/c'))
})
