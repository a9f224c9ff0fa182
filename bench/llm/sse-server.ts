// A fake OpenAI-compatible streaming server for the LLM bench: `POST …/chat/completions` with
// `stream: true` answers 20 chat.completion.chunk events of ~20 bytes of content each, 5 ms apart
// (the first right with the head), then `data: [DONE]`. Reports its port over IPC.
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { events: { type: 'string', default: '20' }, gap: { type: 'string', default: '5' } } })
const EVENTS = Number(values.events)
const GAP = Number(values.gap)

const frames: Buffer[] = []
for (let i = 0; i < EVENTS; i++) {
  const delta = i === 0 ? { role: 'assistant', content: 'tok00 tok01 tok02 ' } : { content: `tok${String(i).padStart(2, '0')} word${String(i).padStart(2, '0')} ab ` }
  frames.push(Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-b', object: 'chat.completion.chunk', created: 1, model: 'bench', choices: [{ index: 0, delta, finish_reason: i === EVENTS - 1 ? 'stop' : null }] })}\n\n`))
}
frames.push(Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-b', object: 'chat.completion.chunk', created: 1, model: 'bench', choices: [], usage: { prompt_tokens: 10, completion_tokens: EVENTS, total_tokens: 10 + EVENTS } })}\n\ndata: [DONE]\n\n`))

const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    if (req.method !== 'POST') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); return }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    let i = 0
    const next = (): void => {
      if (res.destroyed) return
      res.write(frames[i++]!)
      if (i === frames.length - 1) { res.end(frames[i]!); return }
      setTimeout(next, GAP)
    }
    next()
  })
})
server.keepAliveTimeout = 10_000
server.listen(0, '127.0.0.1', () => {
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  if (process.send !== undefined) process.send({ type: 'ready', port })
  else process.stdout.write(`listening on 127.0.0.1:${port}\n`)
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
