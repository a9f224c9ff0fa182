import { request } from 'undici'
import type { Handler } from './servers.js'
import { startPenumbra, startUpstream, urls, type Upstream } from './servers.js'
import { metricValue, scrape } from './shadow-util.js'
import { waitFor } from './common.js'
import type { Penumbra } from '../../src/index.js'

/**
 * A model server for feedback tests: the request `{instances: [{p, s}, …]}` says what each model
 * predicts per instance; this model answers field `field` (`p` for the primary, `s` for the
 * shadow): a string is a class label (with a two-class score vector), a number a regression value.
 */
export function scriptedModel (field: 'p' | 's'): Handler {
  return (_req, res, body) => {
    let instances: Array<Record<string, unknown>> = []
    try { instances = (JSON.parse(body.toString('utf8')) as { instances: Array<Record<string, unknown>> }).instances } catch {}
    const predictions = instances.map((i) => {
      const v = i[field]
      return typeof v === 'number' ? v : { label: v, scores: [0.3, 0.7], latency_ms: 3 }
    })
    const text = JSON.stringify({ predictions })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
}

export interface FeedbackRig {
  app: Penumbra
  primary: Upstream
  shadow: Upstream
  proxy: string
  admin: string
  /** Sends one scored request with this id (its instances as `{p, s}`) through the proxy. */
  predict: (requestId: string, instances: Array<{ p: unknown, s: unknown }>) => Promise<void>
  /** Resolves once `n` predictions of the primary have been logged in total. */
  logged: (n: number) => Promise<void>
  post: (body: unknown, contentType?: string) => Promise<{ status: number, json: any }>
  quality: () => Promise<any>
  metrics: () => Promise<string>
}

/** penumbra in-process with a primary and a shadow `cand` of scripted models. */
export async function feedbackRig (t: { after: (fn: () => Promise<void>) => void }, extra: Record<string, unknown> = {}): Promise<FeedbackRig> {
  const primary = await startUpstream(scriptedModel('p'))
  const shadow = await startUpstream(scriptedModel('s'))
  const app = await startPenumbra({
    backends: { primary: { url: primary.url } },
    primary: 'primary',
    shadows: [{ name: 'cand', url: shadow.url }],
    ...extra
  })
  t.after(async () => { await app.stop(); await primary.close(); await shadow.close() })
  const { proxy, admin } = urls(app)
  const token = app.config.admin.token
  const auth: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` }
  return {
    app,
    primary,
    shadow,
    proxy,
    admin,
    predict: async (requestId, instances) => {
      const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: JSON.stringify({ instances }), headers: { 'x-request-id': requestId, 'content-type': 'application/json' } })
      await r.body.text()
    },
    logged: async (n) => {
      await waitFor(async () => metricValue(await scrape(app), 'penumbra_feedback_predictions_total', { model: 'primary' }) >= n, 10_000, `${n} predictions logged`)
    },
    post: async (body, contentType = 'application/json') => {
      const r = await request(`${admin}/feedback`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': contentType, ...auth } })
      const text = await r.body.text()
      return { status: r.statusCode, json: JSON.parse(text) }
    },
    quality: async () => {
      const r = await request(`${admin}/quality`, { headers: auth })
      return await r.body.json()
    },
    metrics: async () => scrape(app)
  }
}
