// Baseline: the smallest honest undici reverse proxy (about 20 lines of logic), run as a child
// process: `node undici-minimal.js --target http://127.0.0.1:PORT`. It shows what node:http +
// undici cost with nothing else on top, so penumbra's own overhead can be read off the ratio.
// Same fairness as penumbra: one bounded Pool, pipelining 1, keep-alive both ways.
// With `--shadow URL` it is also the smallest tee: the body is read whole, then sent to the
// primary and, at the same time, to the shadow, whose answer is read and dropped. No cap, no
// timeout, no capture, no comparison: the floor for teeing on node:http + undici.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'

const { values } = parseArgs({ options: { target: { type: 'string' }, shadow: { type: 'string' } }, strict: true })
if (values.target === undefined) { process.stderr.write('undici-minimal: --target URL is required\n'); process.exit(2) }
const pool = new Pool(values.target, { connections: 128, pipelining: 1, keepAliveTimeout: 4000 })
const shadow = values.shadow === undefined ? null : new Pool(values.shadow, { connections: 64, pipelining: 1, keepAliveTimeout: 4000 })
// undici throws on these request headers (A1.3), and hop-by-hop headers must not be forwarded.
const HOP = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection'])

const server = createServer((req, res) => {
  const headers: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v
  if (shadow === null) { forward(req, res, headers, req); return }
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = Buffer.concat(chunks)
    forward(req, res, headers, body)
    shadow.request({ method: (req.method ?? 'GET') as 'POST', path: req.url ?? '/', headers, body }).then((r) => r.body.dump(), () => {})
  })
})

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
