import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { stickyUniform } from '../index.js'

/** Options of a demo model server (KServe v1 protocol). */
export interface DemoModelOptions {
  /** `primary` answers with model v1; `shadow` with v2, which disagrees on `disagreeRate` of inputs. */
  role: 'primary' | 'shadow'
  /** Share of inputs (0..1, chosen by a hash of the instance, so the same input always gets the same answer) where the shadow's label differs. */
  disagreeRate?: number
  /** Added latency per request in milliseconds. */
  delayMs?: number
}

const LABELS = ['setosa', 'versicolor', 'virginica']
// A fixed linear "iris" classifier: class scores = W·x + b, then softmax.
const W = [[0.4, 1.0, -1.6, -0.8], [0.3, -0.4, 0.3, -0.6], [-0.7, -0.6, 1.2, 1.8]]
const B = [0.8, 1.2, -2.1]

function softmax (z: number[]): number[] {
  const m = Math.max(...z)
  const e = z.map((v) => Math.exp(v - m))
  const s = e.reduce((a, b) => a + b, 0)
  return e.map((v) => v / s)
}

/**
 * One prediction for one instance (four numbers). The shadow adds float noise far inside the
 * default tolerance, and on `disagreeRate` of inputs moves the probability mass to another class:
 * so the demo shows both "equal within tolerance" and real disagreements.
 */
export function predict (x: number[], opts: DemoModelOptions): { label: string, scores: number[], latency_ms: number } {
  let scores = softmax(W.map((w, k) => w.reduce((acc, wi, i) => acc + wi * (Number(x[i]) || 0), B[k]!)))
  if (opts.role === 'shadow') {
    const u = stickyUniform('demo', JSON.stringify(x))
    if (u < (opts.disagreeRate ?? 0.1)) {
      const top = scores.indexOf(Math.max(...scores))
      const other = (top + 1) % scores.length
      scores = scores.map((s, k) => k === other ? Math.max(...scores) + 0.1 : k === top ? s / 4 : s)
      const sum = scores.reduce((a, b) => a + b, 0)
      scores = scores.map((s) => s / sum)
    } else {
      scores = scores.map((s) => s * (1 + 1e-5))
    }
  }
  const label = LABELS[scores.indexOf(Math.max(...scores))]!
  return { label, scores: scores.map((s) => Math.round(s * 1e6) / 1e6), latency_ms: Math.round(Math.random() * 100) / 100 }
}

/**
 * The demo's ground truth for an input (what `npm run demo:traffic -- --feedback` posts): v1's
 * label, except on the 14% of inputs (by the same hash as the shadow's changes) where the truth
 * is the class the shadow moves to. So with the default disagreeRate 0.1 the shadow is right on
 * every input where it changes its answer, and v2 is ~10 points more accurate than v1 (about 96%
 * against 86%): the demo's quality panel has a better shadow to find.
 */
export function truth (x: number[]): string {
  const scores = softmax(W.map((w, k) => w.reduce((acc, wi, i) => acc + wi * (Number(x[i]) || 0), B[k]!)))
  const top = scores.indexOf(Math.max(...scores))
  const u = stickyUniform('demo', JSON.stringify(x))
  return LABELS[u < TRUTH_FLIP ? (top + 1) % LABELS.length : top]!
}

/** Share of inputs whose true class is not v1's (see {@link truth}). */
const TRUTH_FLIP = 0.14

function send (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function handle (opts: DemoModelOptions, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const url = req.url ?? '/'
  const version = opts.role === 'primary' ? 'v1' : 'v2'
  if (req.method === 'GET' && (url === '/healthz' || url === '/v1/models/demo')) {
    send(res, 200, { name: 'demo', ready: true, version })
    return
  }
  const m = /^\/v1\/models\/([^/:]+):predict$/.exec(url)
  if (req.method !== 'POST' || m === null) {
    send(res, 404, { error: `no route ${req.method} ${url}` })
    return
  }
  let doc: { instances?: unknown }
  try {
    doc = JSON.parse(body.toString('utf8')) as { instances?: unknown }
  } catch {
    send(res, 400, { error: 'body must be JSON' })
    return
  }
  if (!Array.isArray(doc.instances)) {
    send(res, 400, { error: 'body must be {"instances": [[f1, f2, f3, f4], ...]}' })
    return
  }
  const predictions = doc.instances.map((x) => predict(Array.isArray(x) ? x as number[] : [], opts))
  send(res, 200, { model_name: m[1], model_version: version, predictions })
}

/** Starts a demo model server on 127.0.0.1:port (0 picks a free port). */
export function startDemoModel (port: number, opts: DemoModelOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      if (opts.delayMs !== undefined && opts.delayMs > 0) setTimeout(() => handle(opts, req, res, body), opts.delayMs)
      else handle(opts, req, res, body)
    })
  })
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new Error(`demo ${opts.role} model: 127.0.0.1:${port} is already in use (EADDRINUSE)`) : err)
    })
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}
