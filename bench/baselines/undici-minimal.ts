// Baseline: the smallest honest undici reverse proxy (about 30 lines of logic), run as a child
// process: `node undici-minimal.js --target http://127.0.0.1:PORT`. It shows what node:http +
// undici cost with nothing else on top, so penumbra's own overhead can be read off the ratio.
// Same fairness as penumbra: one bounded Pool, pipelining 1, keep-alive both ways.
// - `--buffer`: the body is read whole before it is sent (a Buffer body: undici writes head and
//   body in one go), as penumbra does for small bodies. The like-for-like baseline of the tees.
// - `--shadow URL`: also the smallest tee (implies --buffer): the body is sent to the primary
//   and, at the same time, to the shadow, whose answer a dispatch handler reads and drops. No
//   timeout, capture or comparison: the floor for teeing on node:http + undici.
// - `--shadow-cap N`: at most N shadow requests in flight; above it the copy is dropped, as
//   penumbra's `maxConcurrency` does (default: no cap).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { parseArgs } from 'node:util'
import { Pool, type Dispatcher } from 'undici'

const { values } = parseArgs({
  options: { target: { type: 'string' }, shadow: { type: 'string' }, 'shadow-cap': { type: 'string' }, buffer: { type: 'boolean', default: false } },
  strict: true
})
if (values.target === undefined) { process.stderr.write('undici-minimal: --target URL is required\n'); process.exit(2) }
const cap = values['shadow-cap'] === undefined ? Infinity : Number(values['shadow-cap'])
if (!(cap > 0)) { process.stderr.write('undici-minimal: --shadow-cap must be a number > 0\n'); process.exit(2) }
const pool = new Pool(values.target, { connections: 128, pipelining: 1, keepAliveTimeout: 4000 })
const shadow = values.shadow === undefined ? null : new Pool(values.shadow, { connections: 64, pipelining: 1, keepAliveTimeout: 4000 })
const buffer = values.buffer || shadow !== null
let inflight = 0
// undici throws on these request headers (A1.3), and hop-by-hop headers must not be forwarded.
const HOP = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection'])

const server = createServer((req, res) => {
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v
  if (!buffer) { forward(req, res, headers, req); return }
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = Buffer.concat(chunks)
    forward(req, res, headers, body)
    if (shadow === null || inflight >= cap) return
    inflight++
    shadow.dispatch({ method: (req.method ?? 'GET') as 'POST', path: req.url ?? '/', headers, body }, DROP)
  })
})

// The cheapest way to read and drop an answer on undici: a dispatch handler, no promise and no
// body stream (penumbra's shadow calls are dispatch handlers too). Shared: it keeps no state.
const DROP: Dispatcher.DispatchHandler = {
  onRequestStart () {},
  onResponseStart () {},
  onResponseData () {},
  onResponseEnd () { inflight-- },
  onResponseError () { inflight-- }
}

function forward (req: IncomingMessage, res: ServerResponse, headers: Record<string, string | string[]>, body: IncomingMessage | Buffer): void {
  pool.stream({ method: req.method ?? 'GET', path: req.url ?? '/', headers, body, opaque: res },
    ({ statusCode, headers: up, opaque }) => {
      const out = opaque as typeof res
      delete up.connection; delete up['keep-alive']; delete up['transfer-encoding']
      out.writeHead(statusCode, up as Record<string, string | string[]>)
      return out
    },
    (err) => {
      if (err === null) return
      if (res.headersSent) res.destroy(err)
      else { res.writeHead(502, { 'content-type': 'text/plain' }); res.end('bad gateway') }
    })
}
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => {
  const a = server.address()
  process.send?.({ type: 'ready', port: typeof a === 'object' && a !== null ? a.port : 0 })
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
