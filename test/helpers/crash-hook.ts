// Registers, before the real comparison thread does, a listener that kills the thread on a job
// whose requestId is "crash" (see crashing-compare-thread.ts).
import { parentPort } from 'node:worker_threads'

parentPort?.on('message', (msg: { type: string, jobs?: Array<{ requestId: string }> }) => {
  if (msg.type === 'jobs' && msg.jobs!.some((j) => j.requestId === 'crash')) process.exit(3)
})
