// The comparison worker thread (see compare-worker.ts for the protocol and why it exists).
// Everything CPU-heavy about a comparison (inflating, UTF-8 decoding, JSON.parse of both bodies,
// the structural diff, the instance walk) happens here, off the event loop that serves clients.
import { readlinkSync } from 'node:fs'
import { setPriority } from 'node:os'
import { parentPort } from 'node:worker_threads'
import { Comparator, releasePrimaryCache } from './comparator.js'
import type { CapturedResponse, CompareResult } from './types.js'
import type { FromThread, ThreadJob, ThreadReply, ToThread, WireResponse } from './compare-worker.js'
import { digestAnswer, digestSpec, type DigestSpec } from '../drift/digest.js'

const port = parentPort
if (port === null) throw new Error('compare-thread.js must run as a worker thread')

/**
 * Comparisons get only the CPU nothing else wants: this thread runs at the lowest priority
 * (nice 19). Under CPU contention the event loop serving clients (and, on a shared box, the
 * model servers) go first and comparisons queue up until they are dropped and counted
 * (`queue_full`), rather than take CPU from the primary path (the first promise: the client path is never harmed; README). On Linux
 * a thread id is a valid setpriority(2) target and `/proc/thread-self` names it; elsewhere, or
 * when not permitted, the thread keeps the normal priority.
 */
function lowerPriority (): void {
  try {
    const link = readlinkSync('/proc/thread-self') // "<pid>/task/<tid>"
    const tid = Number(link.slice(link.lastIndexOf('/') + 1))
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 19)
  } catch {
    // not Linux, or not allowed
  }
}
lowerPriority()

const comparators = new Map<number, Comparator>()
const noisy = new Map<string, ReadonlySet<string>>()
/** Drift and assertions: what answers are digested with (null: not configured). */
let observe: DigestSpec | null = null

port.on('message', (msg: ToThread) => {
  switch (msg.type) {
    case 'config':
      comparators.set(msg.key, new Comparator(msg.compare))
      return
    case 'noisy':
      noisy.set(msg.shadow, new Set(msg.paths))
      return
    case 'reset':
      comparators.clear()
      return
    case 'observe':
      observe = msg.spec === null ? null : digestSpec(msg.spec.drift, msg.spec.paths, msg.spec.redact)
      return
    case 'jobs': {
      const replies: FromThread = []
      for (const job of msg.jobs) replies.push(run(job))
      port.postMessage(replies)
    }
  }
})

function run (job: ThreadJob): ThreadReply {
  const primary = captured(job.primary)
  const results: Array<CompareResult | null> = []
  let primaryDigested = false
  for (const item of job.items) {
    const comparator = comparators.get(item.key)
    if (comparator === undefined) { results.push(null); continue }
    const set = item.noiseShadow === null ? undefined : noisy.get(item.noiseShadow)
    const res = comparator.compare({
      shadow: item.noiseShadow ?? 'primary',
      requestId: job.requestId,
      method: job.method,
      url: job.url,
      requestHeaders: {},
      requestBody: null,
      primary,
      shadowResponse: captured(item.response)
    }, item.noiseShadow === null ? undefined : set === undefined ? never : (p) => set.has(p))
    // Drift and assertions get digests, not bodies (the primary's once per job).
    if (observe !== null && item.observe === true && !item.learn) {
      const digests: NonNullable<CompareResult['digests']> = {}
      if (!primaryDigested && res.primaryBody !== undefined) { digests.primary = digestAnswer(res.format, res.primaryBody, observe); primaryDigested = true }
      if (res.shadowBody !== undefined) digests.shadow = digestAnswer(res.format, res.shadowBody, observe)
      res.digests = digests
    }
    // Parsed bodies only travel back when the mismatch store will keep them.
    if (res.outcome !== 'mismatch' || item.learn) {
      delete res.primaryBody
      delete res.shadowBody
    }
    results.push(res)
  }
  releasePrimaryCache()
  return { id: job.id, results }
}

function captured (w: WireResponse): CapturedResponse {
  return { status: w.status, headers: w.headers, body: Buffer.from(w.body.buffer, w.body.byteOffset, w.body.byteLength), truncated: w.truncated, durationMs: w.durationMs }
}

function never (): boolean {
  return false
}
