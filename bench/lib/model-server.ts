// Fake KServe-v1 model server, run as its own child process (never in the bench's process, so its
// CPU shows up as a separate process and cannot distort autocannon's own event loop).
//
//   node model-server.js [--delay MS] [--hang] [--disagree-rate R] [--response-kb N] [--name NAME]
//
// Listens on 127.0.0.1:0 and reports the port to the parent over IPC: {type: 'ready', port}.
// Answers POST /v1/models/<m>:predict with a fixed ~1 KB `{"predictions": [...]}` after --delay ms.
// The body is fixed (not computed from the request) so primary and shadows agree and the
// comparator's work is the same in every scenario; --disagree-rate flips one label in that
// fraction of answers so the mismatch path is exercised too. --response-kb N answers ~N KB
// instead: 8 instances, each with a label and an embedding of full-precision doubles. --hang reads the request and never
// answers (a shadow that is down behind an accepting load balancer).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    delay: { type: 'string', default: '0' },
    hang: { type: 'boolean', default: false },
    'disagree-rate': { type: 'string', default: '0' },
    'response-kb': { type: 'string', default: '0' },
    name: { type: 'string', default: 'model' }
  },
  strict: true
})
const delay = Number(values.delay)
const disagreeRate = Number(values['disagree-rate'])
const responseKb = Number(values['response-kb'])
if (!Number.isFinite(delay) || delay < 0 || !Number.isFinite(disagreeRate) || disagreeRate < 0 || disagreeRate > 1 || !Number.isInteger(responseKb) || responseKb < 0) {
  process.stderr.write('model-server: --delay must be >= 0, --disagree-rate within 0..1, --response-kb a whole number >= 0\n')
  process.exit(2)
}

const LABELS = ['setosa', 'versicolor', 'virginica']

/** ~1 KB of predictions: 8 instances with label, class scores and a top-k list. */
function predictions (flip: boolean): Buffer {
  const preds = Array.from({ length: 8 }, (_, i) => {
    const scores = [0.8123456 - i * 0.01, 0.1234567 + i * 0.005, 0.0642 + i * 0.005]
    const label = flip && i === 3 ? LABELS[1] : LABELS[0]
    return { label, scores, topk: [{ label: LABELS[0], score: scores[0] }] }
  })
  return Buffer.from(JSON.stringify({ model_name: 'demo', model_version: '1', predictions: preds }))
}
/** ~`kb` KB: 8 instances with a label and an embedding (values in (-1, 1), ~20 bytes each). */
function embeddings (kb: number, flip: boolean): Buffer {
  const dims = Math.max(1, Math.round(kb * 1024 / 8 / 20))
  const preds = Array.from({ length: 8 }, (_, i) => ({
    label: flip && i === 3 ? LABELS[1] : LABELS[0],
    embedding: Array.from({ length: dims }, (_, d) => Math.sin(i * 7919 + d * 0.61803398875))
  }))
  return Buffer.from(JSON.stringify({ model_name: 'demo', model_version: '1', predictions: preds }))
}
const AGREE = responseKb > 0 ? embeddings(responseKb, false) : predictions(false)
const DISAGREE = responseKb > 0 ? embeddings(responseKb, true) : predictions(true)

function answer (res: ServerResponse): void {
  if (res.destroyed) return
  const body = disagreeRate > 0 && Math.random() < disagreeRate ? DISAGREE : AGREE
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  // Drain the body without parsing it: parsing 1 MB JSON here would add the same cost to every
  // scenario and only blur the proxy-vs-proxy differences this bench is about.
  req.on('data', noop)
  req.on('end', () => {
    if (req.method !== 'POST' || !(req.url ?? '').startsWith('/v1/models/')) {
      if (req.method === 'GET') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); return }
      res.writeHead(404, { 'content-type': 'application/json' }); res.end('{"error":"not found"}'); return
    }
    if (values.hang) return // never answer; the socket stays open until the proxy gives up
    if (delay > 0) setTimeout(answer, delay, res)
    else answer(res)
  })
})
function noop (): void {}

// Above undici's default keepAliveTimeout (4 s) so the proxy closes idle sockets first (A1.4).
server.keepAliveTimeout = 10_000
server.headersTimeout = 11_000
server.requestTimeout = 0 // the hanging mode must not be cut short by the server itself
server.maxRequestsPerSocket = 0
server.listen(0, '127.0.0.1', () => {
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  if (process.send !== undefined) process.send({ type: 'ready', port })
  else process.stdout.write(`${values.name} listening on 127.0.0.1:${port}\n`)
})
// The parent going away (even SIGKILL) closes the IPC channel: exit instead of lingering.
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
