import { parseArgs } from 'node:util'

/** Options of `npm run bench -- [options]`. Every field is validated before anything is started. */
export interface BenchOptions {
  quick: boolean
  /** Seconds per measured autocannon run. */
  duration: number
  /** Seconds of the discarded warm-up run per scenario. */
  warmup: number
  /** Seconds of load right before every measured run, discarded (0 = none). */
  rewarm: number
  connections: number
  rounds: number
  /** Artificial latency of the primary model server, ms. */
  modelDelay: number
  /** Scenario ids to run (empty: all). */
  only: string[]
  skip: string[]
  nginx: boolean
  outDir: string | null
  help: boolean
  list: boolean
}

export class UsageError extends Error {}

export const USAGE = `penumbra bench (issue #6): autocannon against penumbra, baselines and nginx on 127.0.0.1

Usage: npm run bench -- [options]

  --quick               about a minute: 1 round of 2 s per scenario, 1 s warm-up
  --duration S          seconds per measured run (default 4; quick 2)
  --warmup S            seconds of the discarded warm-up run per scenario (default 3; quick 1; 0 = none)
  --rewarm S            seconds of discarded load right before every measured run (default 2; quick 0)
  --connections N       autocannon connections, pipelining is always 1 (default 32)
  --rounds N            rounds; scenarios alternate within a round; ratios are per round, then the median (default 7; quick 1)
  --model-delay MS      latency of the fake primary model server (default 0)
  --only ID[,ID...]     run only these scenarios (repeatable); see --list
  --skip ID[,ID...]     leave these scenarios out (repeatable)
  --no-nginx            skip the nginx scenarios even if nginx is installed
  --out DIR             where to write latest.md / latest.json (default bench/results)
  --list                print the scenario ids and exit
  -h, --help            this help

Exit codes: 0 done (targets are reported, never asserted), 1 a process failed, 2 bad arguments.
`

function num (name: string, raw: string | undefined, min: number, max: number, integer: boolean): number | undefined {
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new UsageError(`--${name}: expected ${integer ? 'a whole number' : 'a number'} in ${min}..${max}, got "${raw}"`)
  }
  return n
}

function list (values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '')
}

/** Parses argv; throws UsageError (exit 2) on anything unknown or out of range. */
export function parseBenchArgs (argv: string[], scenarioIds: readonly string[]): BenchOptions {
  let values
  try {
    values = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        rewarm: { type: 'string' },
        connections: { type: 'string' },
        rounds: { type: 'string' },
        'model-delay': { type: 'string' },
        only: { type: 'string', multiple: true },
        skip: { type: 'string', multiple: true },
        'no-nginx': { type: 'boolean' },
        out: { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) {
    // parseArgs' messages already name the offending option ("Unknown option '--foo'").
    throw new UsageError((err as Error).message)
  }
  const quick = values.quick === true
  const only = list(values.only)
  const skip = list(values.skip)
  for (const id of [...only, ...skip]) {
    if (!scenarioIds.includes(id)) throw new UsageError(`unknown scenario "${id}"; known: ${scenarioIds.join(', ')}`)
  }
  // Full-run defaults: seven 4 s rounds. On a shared box, bursts of foreign load hit one or two
  // rounds, and the median of seven drops them. Each measured run follows 2 s of discarded load:
  // between its turns a process idles for minutes (the other scenarios' runs), and the first
  // seconds of load after an idle spell ramp up (JIT, sockets, heap sizing), which is the
  // rotation's artifact, not what a proxy under steady load does (README, Benchmarks).
  const opts: BenchOptions = {
    quick,
    duration: num('duration', values.duration, 1, 600, false) ?? (quick ? 2 : 4),
    warmup: num('warmup', values.warmup, 0, 120, false) ?? (quick ? 1 : 3),
    rewarm: num('rewarm', values.rewarm, 0, 60, false) ?? (quick ? 0 : 2),
    connections: num('connections', values.connections, 1, 1024, true) ?? 32,
    rounds: num('rounds', values.rounds, 1, 20, true) ?? (quick ? 1 : 7),
    modelDelay: num('model-delay', values['model-delay'], 0, 10_000, true) ?? 0,
    only,
    skip,
    nginx: values['no-nginx'] !== true,
    outDir: values.out ?? null,
    help: values.help === true,
    list: values.list === true
  }
  if (opts.outDir === '') throw new UsageError('--out: expected a directory')
  return opts
}
