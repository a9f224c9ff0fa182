import type { IncomingMessage } from 'node:http'
import type { RuntimeSnapshot } from '../runtime/runtime-state.js'
import { enrolment, type Route } from '../experiments/experiment.js'

/**
 * Decides, per request, which backend answers the client. The choice is made from the request
 * head alone (before the body is read, like shadow sampling), from the snapshot the request read
 * at its start: the first experiment whose method and path rules match and that enrols the
 * request's unit assigns its arm; otherwise the canary, when one runs and matches, sends its
 * weight to the candidate and the rest to the baseline; otherwise the active primary answers.
 */
export class Router {
  pick (req: IncomingMessage, snapshot: RuntimeSnapshot): Route {
    const list = snapshot.experiments
    if (list.length === 0 && snapshot.canary === null) return snapshot.primaryRoute
    const method = req.method ?? 'GET'
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    for (let i = 0; i < list.length; i++) {
      const entry = list[i]!
      const ex = entry.experiment
      if (!ex.matches(method, path)) continue
      // Switched off: everyone it matches goes to the control, unlabelled and uncounted.
      if (!entry.enabled) return ex.offRoute
      const unit = ex.unitOf(req)
      if (unit === undefined || unit === '') { ex.countNotEnrolled('no_unit'); continue }
      if (!ex.targets(req)) { ex.countNotEnrolled('targeting'); continue }
      const where = enrolment(entry, unit)
      if (where !== 'enrolled') { ex.countNotEnrolled(where); continue }
      const v = ex.variantOf(unit)
      ex.noteUnit(unit, v)
      v.exposures++
      v.metrics.exposures.inc()
      return v.route
    }
    const c = snapshot.canary
    if (c !== null) return c.pick(req, method, path) ?? snapshot.primaryRoute
    return snapshot.primaryRoute
  }
}
