import type { IncomingMessage } from 'node:http'
import type { Backend } from '../upstream/backend.js'
import type { RuntimeSnapshot } from '../runtime/runtime-state.js'

/**
 * Decides, per request, which backend answers the client. The choice is made from the request
 * head alone (before the body is read, like shadow sampling), from the snapshot the request read
 * at its start. Today the active primary answers every request; experiment arms and canary
 * weights plug in here.
 */
export class Router {
  pick (_req: IncomingMessage, snapshot: RuntimeSnapshot): Backend {
    return snapshot.primary
  }
}
