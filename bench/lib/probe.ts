// Readiness probe: a target is "up" when a real predict request through it answers 200, which
// also proves a proxy can reach its primary (a listening socket alone would not).
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { indent, type Managed } from './processes.js'

export function postOnce (url: string, body: Buffer, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': body.length },
      timeout: timeoutMs
    }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(body)
  })
}

export async function getText (url: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let s = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { s += c })
      res.on('end', () => resolve(s))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end()
  })
}

/** Polls `url` until it answers 200; fails early (with the child's output) if `proc` exits. */
export async function waitForHttp (url: string, body: Buffer, proc: Managed, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    if (!proc.isRunning()) {
      const { code, signal } = await proc.exited
      throw new Error(`${proc.name} exited (code ${code}, signal ${signal}) before it answered on ${url}\n${indent(proc.output())}`)
    }
    try {
      const status = await postOnce(url, body)
      if (status === 200) return
      last = `HTTP ${status}`
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(100)
  }
  throw new Error(`${proc.name} did not answer 200 on ${url} within ${timeoutMs} ms (last: ${last})\n${indent(proc.output())}`)
}
