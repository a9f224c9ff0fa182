import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { request } from 'undici'
import { childConfigYaml, freePort, generated, httpServer, procMemory, sleep, spawnPenumbra, tempDir, writeFile } from './helpers/proxy-util.js'

// Issue #2: 100 MB up and down through a penumbra CHILD process, byte-exact (sha256), with flat
// memory. Backpressure is checked directly: each transfer stalls its receiving end for a while
// early on, and the bytes the sending end managed to push past the proxy meanwhile must stay
// small (socket and stream buffers), instead of the whole body piling up in the proxy. The
// child's peak RSS (VmHWM) is checked with a generous bound (GC keeps garbage buffers around).

const MB = 1024 * 1024
const TOTAL = 100 * MB
const PEAK_LIMIT = 200 * MB
const STALL_MS = 1000
/** Bytes allowed "in the pipes" between sender and stalled receiver (kernel + Node buffers, both hops). */
const IN_FLIGHT_LIMIT = 32 * MB

test('100 MB upload and 100 MB download stream through with flat memory and backpressure, sha256 verified', { timeout: 60_000 }, async (t) => {
  const down = generated(TOTAL)
  const up = generated(TOTAL)
  let uploadSent = 0
  let uploadInFlightDuringStall = -1
  let downloadProduced = 0
  const upstream = await httpServer((req, res) => {
    if (req.method === 'POST') {
      const h = createHash('sha256')
      let n = 0
      let stalled = false
      req.on('data', (c: Buffer) => {
        h.update(c)
        n += c.length
        if (!stalled && n >= 2 * MB) {
          stalled = true
          req.pause()
          setTimeout(() => { uploadInFlightDuringStall = uploadSent - n; req.resume() }, STALL_MS)
        }
      })
      req.on('end', () => {
        const body = JSON.stringify({ bytes: n, sha256: h.digest('hex') })
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      })
      return
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': TOTAL })
    void pipeline(down.stream((bytes) => { downloadProduced += bytes }), res).catch(() => {})
  })
  t.after(() => upstream.stop())

  const dir = tempDir(t)
  const port = await freePort()
  const adminPort = await freePort()
  const file = writeFile(dir, 'stream.yaml', childConfigYaml({ port, adminPort, primary: upstream.url, timeoutMs: 30_000 }))
  const child = await spawnPenumbra(file, { port, adminPort })
  t.after(() => child.kill())
  const baseline = procMemory(child.pid)

  // Upload: generated on the fly (never held in memory), counted as the client hands it over.
  const body = up.stream((bytes) => { uploadSent += bytes })
  const r1 = await request(`http://127.0.0.1:${port}/upload`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) }
  })
  assert.equal(r1.statusCode, 200)
  assert.deepEqual(await r1.body.json(), { bytes: TOTAL, sha256: up.sha256 })

  // Download: hashed as it arrives; the reader stalls once early on.
  const r2 = await request(`http://127.0.0.1:${port}/download`)
  assert.equal(r2.statusCode, 200)
  assert.equal(r2.headers['content-length'], String(TOTAL))
  const h = createHash('sha256')
  let n = 0
  let downloadInFlightDuringStall = -1
  await pipeline(r2.body, new Writable({
    highWaterMark: 64 * 1024,
    write (chunk: Buffer, _enc, cb) {
      h.update(chunk)
      n += chunk.length
      if (downloadInFlightDuringStall < 0 && n >= 2 * MB) {
        setTimeout(() => { downloadInFlightDuringStall = downloadProduced - n; cb() }, STALL_MS)
      } else cb()
    }
  }))
  assert.equal(n, TOTAL)
  assert.equal(h.digest('hex'), down.sha256)

  const hwm = procMemory(child.pid).hwm
  t.diagnostic(`in flight after a ${STALL_MS} ms stall: upload ${(uploadInFlightDuringStall / MB).toFixed(1)} MB, download ${(downloadInFlightDuringStall / MB).toFixed(1)} MB`)
  t.diagnostic(`penumbra child RSS: baseline ${(baseline.rss / MB).toFixed(0)} MB, VmHWM ${(hwm / MB).toFixed(0)} MB`)
  assert.ok(uploadInFlightDuringStall >= 0 && uploadInFlightDuringStall < IN_FLIGHT_LIMIT, 'upload: the proxy stops reading the client while the primary does not read')
  assert.ok(downloadInFlightDuringStall >= 0 && downloadInFlightDuringStall < IN_FLIGHT_LIMIT, 'download: the proxy stops reading the primary while the client does not read')
  assert.ok(hwm < PEAK_LIMIT, `peak RSS ${(hwm / MB).toFixed(0)} MB must stay under ${PEAK_LIMIT / MB} MB`)
  await sleep(10)
  child.child.kill('SIGTERM')
  assert.equal((await child.waitExit(10_000)).code, 0)
})
