// The scenarios of issue #6 and the penumbra configs they need. Config keys used here are the
// public contract (src/config/schema.ts, config/example.yaml); everything else stays default so
// the bench measures what a user gets out of the box.

/**
 * The fake model servers; each runs in its own process. Fast shadows are numbered: each scenario
 * that tees to one gets its own (a model server shared between scenarios carried connections and
 * state from one scenario's runs into the next's).
 */
export type ServerId = 'primary' | 'green' | `fast${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8}` | 'slow' | 'hang' | 'bigprimary' | 'bigshadow'

/** Response size of the big-response model servers (an embedding-style output). */
export const BIG_RESPONSE_KB = 256

export type TargetKind = 'direct' | 'penumbra' | 'undici-minimal' | 'http-proxy' | 'nginx' | 'nginx-mirror'

export interface ShadowSpec {
  name: string
  server: ServerId
  sampleRate: number
  compare: boolean
  timeoutMs?: number
  maxConcurrency?: number
  maxBodyBytes?: number
}

export interface Scenario {
  id: string
  title: string
  /**
   * 'small': ~300 B requests; '1mb': 1 MB requests; 'bigresp': ~300 B requests answered with
   * BIG_RESPONSE_KB responses. Each group is compared among itself.
   */
  body: 'small' | '1mb' | 'bigresp'
  /** The model server behind the primary (default 'primary'). */
  primaryServer?: ServerId
  /** Extra top-level `compare` keys for penumbra. */
  compare?: Record<string, unknown>
  target: TargetKind
  shadows: ShadowSpec[]
  workers?: number
  /** Pause after each run so that shadow work started by this run cannot leak into the next. */
  settleMs: number
  /**
   * The baseline this scenario's target ratios are taken against. Every round runs an extra
   * (anchor) run of it right next to this one (before it in even rounds, after it in odd ones),
   * so that each ratio pairs two runs seconds apart: this machine's speed drifts by up to 2x
   * within a minute, and a round of every scenario takes minutes.
   */
  anchor?: string
  /** Runs right after this scenario in every round (a pair compared by a target). */
  follows?: string
  /** For the undici-minimal baseline: also tee every request to this model server (`--shadow`). */
  baselineShadow?: ServerId
  /** For the undici-minimal tee: at most this many shadow requests in flight (`--shadow-cap`). */
  baselineShadowCap?: number
  /** For the undici-minimal baseline: read the body whole before sending it (`--buffer`). */
  baselineBuffer?: boolean
  /**
   * Blue/green (issue #14): penumbra gets two backends, `blue` (the primary model server) and
   * `green` (a second one), and a background loop switches the primary between them with
   * `PUT /primary` every this many ms during every run of the scenario.
   */
  switchEveryMs?: number
  /**
   * A/B experiment (issue #17) on every request: two variants, backends `a` and `b` on the same
   * model server, unit `header:x-user-id` (the load sends one fixed unit: the routing work per
   * request is the same whichever arm it lands in).
   */
  experiment?: boolean
}

const fast = (name: string, server: ServerId, sampleRate: number, compare: boolean, extra: Partial<ShadowSpec> = {}): ShadowSpec =>
  ({ name, server, sampleRate, compare, ...extra })

export const SCENARIOS: readonly Scenario[] = [
  { id: 'direct', title: 'direct to the model server (no proxy)', body: 'small', target: 'direct', shadows: [], settleMs: 300 },
  { id: 'passthrough', title: 'penumbra, no shadows', body: 'small', target: 'penumbra', shadows: [], settleMs: 300 },
  { id: 'experiment', title: 'penumbra, no shadows, an A/B experiment (two variants) on every request', body: 'small', target: 'penumbra', shadows: [], experiment: true, settleMs: 300, anchor: 'passthrough' },
  { id: 'bluegreen-switching', title: 'penumbra, no shadows, primary switched blue ⇄ green every 100 ms (`PUT /primary`)', body: 'small', target: 'penumbra', shadows: [], switchEveryMs: 100, settleMs: 300, anchor: 'passthrough' },
  { id: 'undici-minimal', title: 'baseline: minimal undici proxy (Pool.stream)', body: 'small', target: 'undici-minimal', shadows: [], settleMs: 300, anchor: 'passthrough' },
  { id: 'undici-minimal-buffered', title: 'baseline: minimal undici proxy reading the body whole first (`--buffer`), as penumbra does for small bodies', body: 'small', target: 'undici-minimal', baselineBuffer: true, shadows: [], settleMs: 300, anchor: 'passthrough' },
  { id: 'undici-minimal-tee', title: 'baseline: minimal undici proxy (buffered) teeing 100% to a fast shadow (no cap, no capture, no comparison)', body: 'small', target: 'undici-minimal', baselineShadow: 'fast8', shadows: [], settleMs: 500, anchor: 'undici-minimal-buffered' },
  { id: 'undici-minimal-tee-100ms', title: 'baseline: minimal undici proxy (buffered) teeing 100% to the 100 ms shadow, at most 64 in flight', body: 'small', target: 'undici-minimal', baselineShadow: 'slow', baselineShadowCap: 64, shadows: [], settleMs: 1000, anchor: 'undici-minimal-buffered' },
  { id: 'http-proxy', title: 'baseline: http-proxy 1.18 + keep-alive agent', body: 'small', target: 'http-proxy', shadows: [], settleMs: 300, anchor: 'passthrough' },
  { id: 'nginx', title: 'baseline: nginx, 1 worker, upstream keep-alive', body: 'small', target: 'nginx', shadows: [], settleMs: 300 },
  { id: 'nginx-mirror', title: 'nginx + `mirror` to a 100 ms shadow', body: 'small', target: 'nginx-mirror', shadows: [], settleMs: 1000 },
  { id: 'tee-10', title: 'tee 10%, one fast shadow, comparisons on', body: 'small', target: 'penumbra', shadows: [fast('fast', 'fast2', 0.1, true)], settleMs: 500 },
  { id: 'tee-100', title: 'tee 100%, one fast shadow, comparisons OFF', body: 'small', target: 'penumbra', shadows: [fast('fast', 'fast1', 1, false)], settleMs: 500, anchor: 'passthrough' },
  { id: 'tee-100-compare', title: 'tee 100%, one fast shadow, comparisons on', body: 'small', target: 'penumbra', shadows: [fast('fast', 'fast3', 1, true)], settleMs: 500, anchor: 'passthrough', follows: 'tee-100' },
  { id: 'shadow-100ms', title: 'one shadow answering in 100 ms, 100%', body: 'small', target: 'penumbra', shadows: [fast('slow', 'slow', 1, true)], settleMs: 1000, anchor: 'passthrough' },
  {
    id: 'shadow-hang',
    title: 'hanging shadow, 100% (maxConcurrency 64, timeoutMs 2000)',
    body: 'small',
    target: 'penumbra',
    shadows: [fast('hang', 'hang', 1, true, { timeoutMs: 2000, maxConcurrency: 64 })],
    settleMs: 2500,
    anchor: 'passthrough'
  },
  {
    id: 'three-shadows',
    title: 'three fast shadows, 100% each, comparisons on',
    body: 'small',
    target: 'penumbra',
    shadows: [fast('a', 'fast4', 1, true), fast('b', 'fast5', 1, true), fast('c', 'fast6', 1, true)],
    settleMs: 500
  },
  { id: 'workers-2', title: 'penumbra --workers 2, no shadows', body: 'small', target: 'penumbra', shadows: [], workers: 2, settleMs: 300 },
  { id: 'direct-1mb', title: '1 MB requests, direct', body: '1mb', target: 'direct', shadows: [], settleMs: 500 },
  { id: 'passthrough-1mb', title: '1 MB requests, penumbra, no shadows', body: '1mb', target: 'penumbra', shadows: [], settleMs: 500 },
  {
    id: 'tee-1mb',
    title: '1 MB requests, tee 100% to a fast shadow (maxBodyBytes 2 MB)',
    body: '1mb',
    target: 'penumbra',
    shadows: [fast('fast', 'fast7', 1, true, { maxBodyBytes: 2 * 1024 * 1024 })],
    settleMs: 1000
  },
  { id: 'passthrough-bigresp', title: `${BIG_RESPONSE_KB} KB responses, penumbra, no shadows`, body: 'bigresp', primaryServer: 'bigprimary', target: 'penumbra', shadows: [], settleMs: 500 },
  {
    id: 'tee-bigresp',
    title: `${BIG_RESPONSE_KB} KB responses, tee 100%, comparisons on the worker thread (default)`,
    body: 'bigresp',
    primaryServer: 'bigprimary',
    target: 'penumbra',
    shadows: [fast('big', 'bigshadow', 1, true)],
    settleMs: 1500
  },
  {
    id: 'tee-bigresp-inline',
    title: `${BIG_RESPONSE_KB} KB responses, tee 100%, comparisons on the event loop (\`workerMinBytes: null\`)`,
    body: 'bigresp',
    primaryServer: 'bigprimary',
    target: 'penumbra',
    shadows: [fast('big', 'bigshadow', 1, true)],
    compare: { workerMinBytes: null },
    settleMs: 1500
  }
]

export const SCENARIO_IDS: readonly string[] = SCENARIOS.map((s) => s.id)

/** Fake model servers: artificial delay and behaviour per server id. */
export function serverArgs (id: ServerId, primaryDelayMs: number): string[] {
  switch (id) {
    case 'primary':
    case 'green': return ['--name', id, '--delay', String(primaryDelayMs)]
    case 'slow': return ['--name', id, '--delay', '100', '--disagree-rate', '0.02']
    case 'hang': return ['--name', id, '--hang']
    case 'bigprimary': return ['--name', id, '--delay', String(primaryDelayMs), '--response-kb', String(BIG_RESPONSE_KB)]
    case 'bigshadow': return ['--name', id, '--delay', '0', '--response-kb', String(BIG_RESPONSE_KB), '--disagree-rate', '0.02']
    default: return ['--name', id, '--delay', '0', '--disagree-rate', '0.02'] // fast1..fast8
  }
}

export function serversFor (s: Scenario): ServerId[] {
  const ids = new Set<ServerId>([s.primaryServer ?? 'primary'])
  for (const sh of s.shadows) ids.add(sh.server)
  if (s.baselineShadow !== undefined) ids.add(s.baselineShadow)
  if (s.target === 'nginx-mirror') ids.add('slow')
  if (s.switchEveryMs !== undefined) ids.add('green')
  return [...ids]
}

export interface PenumbraPorts { listen: number, admin: number }

/** A penumbra config (JSON is valid input for --config) for one scenario. */
export function penumbraConfig (s: Scenario, ports: PenumbraPorts, serverPorts: Map<ServerId, number>): Record<string, unknown> {
  const url = (id: ServerId): string => {
    const p = serverPorts.get(id)
    if (p === undefined) throw new Error(`model server ${id} is not running`)
    return `http://127.0.0.1:${p}`
  }
  return {
    listen: { host: '127.0.0.1', port: ports.listen },
    admin: { enabled: true, host: '127.0.0.1', port: ports.admin },
    ...(s.switchEveryMs !== undefined
      ? {
          backends: {
            blue: { url: url(s.primaryServer ?? 'primary'), timeoutMs: 30_000, connections: 128 },
            green: { url: url('green'), timeoutMs: 30_000, connections: 128 }
          },
          primary: 'blue'
        }
      : s.experiment === true
        ? {
            backends: {
              a: { url: url(s.primaryServer ?? 'primary'), timeoutMs: 30_000, connections: 128 },
              b: { url: url(s.primaryServer ?? 'primary'), timeoutMs: 30_000, connections: 128 }
            },
            primary: 'a',
            experiments: [{
              name: 'bench-ab',
              unit: 'header:x-user-id',
              match: { methods: ['POST'], paths: ['/v1/models/*'] },
              variants: [{ name: 'control', backend: 'a' }, { name: 'treatment', backend: 'b' }]
            }]
          }
        : { primary: { url: url(s.primaryServer ?? 'primary'), timeoutMs: 30_000, connections: 128 } }),
    shadows: s.shadows.map((sh) => ({
      name: sh.name,
      url: url(sh.server),
      sampleRate: sh.sampleRate,
      match: { methods: ['POST'], paths: ['/v1/models/*'] },
      timeoutMs: sh.timeoutMs ?? 5000,
      maxConcurrency: sh.maxConcurrency ?? 64,
      maxBodyBytes: sh.maxBodyBytes ?? 1024 * 1024,
      maxResponseBytes: 4 * 1024 * 1024,
      ...(sh.compare ? {} : { compare: { enabled: false } })
    })),
    compare: { enabled: true, format: 'auto', ...s.compare },
    // Logging off the hot path: an access line per request would measure pino, not the proxy.
    log: { level: 'warn', access: false }
  }
}
