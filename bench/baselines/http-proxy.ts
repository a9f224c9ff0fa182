// Baseline: node-http-proxy 1.18.1 as people deploy it when they do it right, run as a child
// process: `node http-proxy.js --target http://127.0.0.1:PORT`. Without an agent http-proxy
// sends `connection: close` and opens a socket per request (research A2), which would make the
// comparison meaningless; so it gets a keep-alive agent with the same socket bound as penumbra.
import { Agent, createServer } from 'node:http'
import { parseArgs } from 'node:util'
import httpProxy from 'http-proxy'

const { values } = parseArgs({ options: { target: { type: 'string' } }, strict: true })
if (values.target === undefined) { process.stderr.write('http-proxy: --target URL is required\n'); process.exit(2) }
const agent = new Agent({ keepAlive: true, maxSockets: 128, keepAliveMsecs: 1000 })
const proxy = httpProxy.createProxyServer({ target: values.target, agent, xfwd: true })
// Without an 'error' listener http-proxy rethrows and the process dies (A2).
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) { res.writeHead(502, { 'content-type': 'text/plain' }); res.end('bad gateway') } else res.destroy()
})
const server = createServer((req, res) => { proxy.web(req, res) })
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => {
  const a = server.address()
  process.send?.({ type: 'ready', port: typeof a === 'object' && a !== null ? a.port : 0 })
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
